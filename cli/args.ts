/**
 * `--env NAME=VALUE` passes a value; `--env NAME` passes the host's own NAME (when set). Secrets thus
 * reach a sandboxed tool only when a person names them.
 */
export function envAssignment(spec: string, hostEnv: Record<string, string | undefined>): [string, string | undefined] {
  const eq = spec.indexOf('=');
  return eq < 0 ? [spec, hostEnv[spec]] : [spec.slice(0, eq), spec.slice(eq + 1)];
}
