import { ForgeError, InvalidInputError } from '../app/errors.ts';

/**
 * `--env NAME=VALUE` passes a value; `--env NAME` passes the host's own NAME (when set). Secrets thus
 * reach a sandboxed tool only when a person names them.
 */
export function envAssignment(spec: string, hostEnv: Record<string, string | undefined>): [string, string | undefined] {
  const eq = spec.indexOf('=');
  return eq < 0 ? [spec, hostEnv[spec]] : [spec.slice(0, eq), spec.slice(eq + 1)];
}

/**
 * Adds a command's usage to an input error a use case raised, so a person sees how to call it
 * (the use case itself knows nothing of the command line).
 */
export function withUsage<T>(pending: Promise<T>, usage: string): Promise<T> {
  return pending.catch((err: unknown) => {
    throw err instanceof InvalidInputError ? new ForgeError(`${err.message} (${usage})`, err.code, err.fix, err.details) : err;
  });
}
