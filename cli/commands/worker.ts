import type { ForgeConfig } from '../../app/context.ts';
import { usageError } from '../output.ts';

/** forge worker: a worker in the foreground, started from its own entry point (app/worker.ts). */
export async function workerCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  // A server in the foreground has no result to print: its logs already are JSON lines on stderr.
  if (args.length) throw usageError(`forge worker takes no arguments (got ${args.join(' ')}); it runs until stopped`, 'forge worker');
  return (await import('../../app/worker.ts')).runWorkerInForeground(cfg);
}
