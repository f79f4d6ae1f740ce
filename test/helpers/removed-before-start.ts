/**
 * Run as its own process by test/integration/sandbox.test.ts: starts one sandbox container that
 * someone else removes after it was attached and before it starts (what a freeze killing sandboxes
 * does to a container the pool is refilling), prints the error, and must then exit by itself.
 */
import type Docker from 'dockerode';
import { dockerClient } from '../../infra/docker.ts';
import { config } from '../../services/config.ts';
import { RunnerContainer } from '../../services/sandbox/container.ts';
import { DEFAULT_LIMITS } from '../../services/sandbox/types.ts';

const cfg = config();
const docker = dockerClient(cfg);
const racing = Object.create(docker) as Docker;
racing.createContainer = async (spec) => {
  const container = await docker.createContainer(spec);
  const start = container.start.bind(container);
  container.start = (async () => {
    await container.remove({ force: true });
    return start();
  }) as typeof container.start;
  return container;
};

await RunnerContainer.start(racing, {
  image: cfg.FORGE_SANDBOX_IMAGE,
  limits: DEFAULT_LIMITS,
  jobId: process.argv[2] ?? 'removed-before-start',
}).then(
  () => console.log('started'),
  (err: Error) => console.log(`start failed: ${err.message}`),
);
