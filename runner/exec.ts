import { spawn } from 'node:child_process';
import { JudgedLogs } from './logs.ts';
import { JOB_DIR, type RunnerResult, SANDBOX_PATH_ENV } from './protocol.ts';

/**
 * exec mode: run an argv inside the container. Not a judged mode (no verdict on a tool rests on it):
 * the command's stdout/stderr are piped to the runner, never inherited, so what it prints is data in
 * the result and cannot pass for the runner's own frame; they are held to the output limit and
 * flagged when cut. The command itself runs without Node's permission model (containment tests need
 * a plain process); the container is its boundary.
 */
export function execCommand(command: string[], env: Record<string, string>, timeoutMs: number, outputBytes: number): Promise<RunnerResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  return new Promise((resolve) => {
    const [file, ...args] = command as [string, ...string[]];
    const child = spawn(file, args, {
      cwd: JOB_DIR,
      // A fresh environment: nothing of the runner's own leaks into the command.
      env: { PATH: SANDBOX_PATH_ENV, HOME: '/tmp', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stoppedFor: 'timeout' | 'output' | undefined;
    const stop = (why: 'timeout' | 'output') => {
      stoppedFor ??= why;
      child.kill('SIGKILL');
    };
    const logs = new JudgedLogs(outputBytes, () => stop('output'));
    child.stdout.on('data', (c: Buffer) => logs.take('stdout', c));
    child.stderr.on('data', (c: Buffer) => logs.take('stderr', c));
    const timer = setTimeout(() => stop('timeout'), timeoutMs);
    let settled = false;
    const settle = (r: Omit<RunnerResult, 'durationMs' | 'logs'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...r, durationMs: elapsed(), logs: [], ...logs.report() });
    };
    child.on('error', (err) =>
      settle({
        ok: false,
        exitCode: null,
        error: { code: 'EXEC_FAILED', message: `could not start ${JSON.stringify(file)}: ${err.message}` },
      }),
    );
    child.on('exit', (code, signal) => {
      const result = (): Omit<RunnerResult, 'durationMs' | 'logs'> => {
        if (stoppedFor === 'output') {
          return {
            ok: false,
            exitCode: code,
            error: { code: 'OUTPUT_LIMIT', message: `the command wrote more than ${outputBytes} bytes to stdout/stderr and was stopped` },
          };
        }
        if (stoppedFor === 'timeout') {
          return { ok: false, exitCode: code, error: { code: 'TIMEOUT', message: `the command did not finish within ${timeoutMs} ms` } };
        }
        if (code === 0) return { ok: true, exitCode: 0 };
        return {
          ok: false,
          exitCode: code,
          error: { code: 'EXIT_NONZERO', message: signal ? `the command was killed by ${signal}` : `the command exited with code ${code}` },
        };
      };
      // Its output is in the pipes until they close; a process it left behind may hold them open, so wait only briefly.
      const close = setTimeout(() => settle(result()), 300);
      child.once('close', () => {
        clearTimeout(close);
        settle(result());
      });
    });
  });
}
