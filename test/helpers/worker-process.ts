import { type ChildProcess, spawn } from 'node:child_process';
import type { ForgeConfig } from '../../domain/config.ts';

/**
 * A Forge worker as its own OS process, so a test can SIGKILL it mid-activity and start another —
 * the crash a person would see, not a simulated one.
 */
export function workerProcessEnv(cfg: ForgeConfig, opts: { databaseUrl: string; modelUrl: string; home?: string }): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...(opts.home ? { FORGE_HOME: opts.home } : {}),
    DATABASE_URL: opts.databaseUrl,
    ANTHROPIC_BASE_URL: opts.modelUrl,
    ANTHROPIC_API_KEY: '',
    FORGE_TASK_QUEUE: cfg.FORGE_TASK_QUEUE,
    FORGE_SANDBOX_QUEUE: cfg.FORGE_SANDBOX_QUEUE,
    FORGE_POOL_SIZE: '0',
  };
}

export function startWorkerProcess(env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', 'workers/main.ts'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
}

export async function stopWorkerProcess(worker: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (worker.exitCode !== null) return;
  const exited = new Promise((r) => worker.once('exit', r));
  worker.kill(signal);
  await exited;
}
