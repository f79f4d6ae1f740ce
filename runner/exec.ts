import { spawn } from 'node:child_process';
import { JOB_DIR, type RunnerResult, SANDBOX_PATH_ENV } from './protocol.ts';

/**
 * exec mode: run an argv inside the container. The child writes straight to the
 * container's stdout/stderr (the host captures and caps them); we only add the exit code.
 */
export function execCommand(command: string[], env: Record<string, string>, timeoutMs: number): Promise<RunnerResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  return new Promise((resolve) => {
    const [file, ...args] = command as [string, ...string[]];
    const child = spawn(file, args, {
      cwd: JOB_DIR,
      // A fresh environment: nothing of the runner's own leaks into the command.
      env: { PATH: SANDBOX_PATH_ENV, HOME: '/tmp', ...env },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({
        ok: false,
        exitCode: null,
        durationMs: elapsed(),
        logs: [],
        error: { code: 'EXEC_FAILED', message: `could not start ${JSON.stringify(file)}: ${err.message}` },
      });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const timedOut = signal === 'SIGKILL' && elapsed() >= timeoutMs;
      resolve({
        ok: code === 0,
        exitCode: code,
        durationMs: elapsed(),
        logs: [],
        ...(code === 0
          ? {}
          : {
              error: timedOut
                ? { code: 'TIMEOUT', message: `the command did not finish within ${timeoutMs} ms` }
                : {
                    code: 'EXIT_NONZERO',
                    message: signal ? `the command was killed by ${signal}` : `the command exited with code ${code}`,
                  },
            }),
      });
    });
  });
}
