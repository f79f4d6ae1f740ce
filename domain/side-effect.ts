import type { SideEffect } from './tool.ts';

/**
 * What a tool's declared side effect lets it send. A `read` tool runs without approval, so its
 * requests must be unable to change anything: only the methods HTTP defines as safe. The same
 * rule is applied by ctx.fetch, the testkit, the egress proxy and the static stage.
 */
export const READ_METHODS: readonly string[] = Object.freeze(['GET', 'HEAD', 'OPTIONS']);

/**
 * Headers many frameworks honour to turn a POST (or a GET) into another method (Rails, Google
 * APIs, ASP.NET...): a read tool could send `GET` with `X-HTTP-Method-Override: DELETE`.
 */
export const METHOD_OVERRIDE_HEADERS: readonly string[] = Object.freeze(['x-http-method-override', 'x-http-method', 'x-method-override']);

/** The methods a tool with this side effect may send; null when any method is allowed. */
export function allowedMethods(sideEffect: SideEffect | undefined): readonly string[] | null {
  return sideEffect === 'read' ? READ_METHODS : null;
}

export function methodAllowed(method: string, sideEffect: SideEffect | undefined): boolean {
  const allowed = allowedMethods(sideEffect);
  return allowed === null || allowed.includes(method.toUpperCase());
}

/**
 * One sentence naming the method and the declared side effect, for errors and proxy refusals.
 * `via` names an override header when that is how the method was asked for.
 */
export function methodRefusal(method: string, sideEffect: SideEffect | undefined, where: { host?: string; via?: string } = {}): string {
  const how = where.via ? ` (through the ${where.via} header)` : '';
  const to = where.host ? ` to ${where.host}` : '';
  return `${method.toUpperCase()}${how}${to} is not allowed: the tool declares sideEffect '${sideEffect ?? 'unknown'}', and a read tool may send only ${READ_METHODS.join(', ')}`;
}

/** The fix, for people and the repair loop. */
export const METHOD_FIX =
  "send only GET, HEAD or OPTIONS, or declare sideEffect: 'write' if the tool changes data (its calls then need approval)";
