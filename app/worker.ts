import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ForgeConfig } from '../domain/config.ts';
import { connectTemporal } from '../infra/temporal.ts';

const entry = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'workers', 'main.ts');

/**
 * `forge worker`: the worker process in the foreground, started from its own entry point (as
 * `forge up` starts it in the background), so no surface links the worker code. It reads the same
 * environment; SIGINT and SIGTERM are passed on and it drains before it exits. Resolves to its exit code.
 * Temporal is checked here first, so its usual failure reads as an error with a fix, not a stack.
 */
export async function runWorkerInForeground(cfg: ForgeConfig): Promise<number> {
  await (await connectTemporal(cfg)).close();
  const child = spawn(process.execPath, ['--import', 'tsx', entry], { stdio: 'inherit', env: process.env });
  const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
  const onInt = forward('SIGINT');
  const onTerm = forward('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(code ?? (signal ? 1 : 0));
    });
  });
}
