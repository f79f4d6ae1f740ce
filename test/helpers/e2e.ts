import { spawnSync } from 'node:child_process';
import { dockerClient } from '../../infra/docker.ts';
import { freePort } from '../../infra/processes.ts';
import { controlDeploymentName } from '../../services/config.ts';
import { controlWorkers } from '../../services/evolution/control-worker.ts';
import { testConfig } from './env.ts';

/**
 * A Forge as a new user brings it up (`forge up` on embedded defaults), in its own FORGE_HOME, on
 * free ports and task queues of its own: nothing of the suite's shared Temporal, database or model.
 */
export async function e2eEnv(home: string, queues: string): Promise<NodeJS.ProcessEnv> {
  const { TEMPORAL_ADDRESS: _t, DATABASE_URL: _d, ANTHROPIC_BASE_URL: _a, ANTHROPIC_API_KEY: _k, ...rest } = process.env;
  return {
    ...rest,
    FORGE_HOME: home,
    TEMPORAL_PORT: String(await freePort()),
    TEMPORAL_UI_PORT: String(await freePort()),
    FORGE_PGLITE_PORT: String(await freePort()),
    FORGE_SCRIPTED_MODEL_PORT: String(await freePort()),
    FORGE_MCP_PORT: String(await freePort()),
    FORGE_DASHBOARD_PORT: String(await freePort()),
    FORGE_TASK_QUEUE: `${queues}-control`,
    FORGE_SANDBOX_QUEUE: `${queues}-sandbox`,
    FORGE_POOL_SIZE: '1',
  };
}

/** forge down, then the control worker's containers (they stay after forge down, stopped) go with the test. */
export async function e2eDown(env: NodeJS.ProcessEnv): Promise<void> {
  spawnSync(process.execPath, ['bin/forge.mjs', 'down'], { env, encoding: 'utf8', timeout: 120_000 });
  const deployment = controlDeploymentName({ FORGE_DEPLOYMENT: env.FORGE_DEPLOYMENT, FORGE_TASK_QUEUE: env.FORGE_TASK_QUEUE ?? '' });
  const workers = controlWorkers(dockerClient(testConfig()), env.FORGE_HOME!);
  for (const w of await workers.list(deployment)) await workers.remove(deployment, w.buildId);
}
