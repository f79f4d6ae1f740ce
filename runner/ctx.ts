import { ForgeError } from '../domain/errors.ts';
import { allowedMethods, METHOD_FIX, METHOD_OVERRIDE_HEADERS, methodAllowed, methodRefusal } from '../domain/side-effect.ts';
import type { Permissions, SideEffect, ToolContext, ToolLogger } from '../domain/tool.ts';
import type { LogEntry } from './protocol.ts';

/**
 * The capability object a tool receives inside the sandbox. This is the first of the
 * two containment layers (the container is the second): a tool sees only the
 * network domains and environment variables its manifest declares, and a `read` tool may
 * send only the methods that cannot change anything (domain/side-effect.ts).
 */
export class PermissionDeniedError extends ForgeError {
  constructor(kind: 'network' | 'env', requested: string, declared: readonly string[]);
  /** a method the declared side effect does not allow: `requested` is the method, `declared` the allowed ones */
  constructor(kind: 'method', requested: string, declared: readonly string[], refusal: MethodRefusal);
  constructor(kind: 'network' | 'env' | 'method', requested: string, declared: readonly string[], refusal?: MethodRefusal) {
    if (kind === 'method' && refusal) {
      super(`permission denied: ${methodRefusal(requested, refusal.sideEffect, refusal)}`, 'PERMISSION_DENIED', METHOD_FIX, {
        kind,
        requested,
        declared: [...declared],
        sideEffect: refusal.sideEffect,
        host: refusal.host,
      });
      return;
    }
    super(
      `permission denied: ${kind} access to ${JSON.stringify(requested)} is not declared ` +
        `(declared ${kind}: ${declared.length ? declared.join(', ') : 'none'})`,
      'PERMISSION_DENIED',
      `add ${JSON.stringify(requested)} to the manifest's permissions.${kind} if the tool really needs it`,
      { kind, requested, declared: [...declared] },
    );
  }
}

export interface MethodRefusal {
  sideEffect: SideEffect | undefined;
  host: string;
  /** the override header that asked for the method, when it was not the request's own */
  via?: string;
}

/**
 * The method a request really sends, read once (a getter on `init` could answer the check and
 * the transport differently), and refused when the declared side effect does not allow it;
 * so is a method-override header asking for one.
 */
export function checkMethod(method: string, headers: Headers, sideEffect: SideEffect | undefined, host: string): void {
  const allowed = allowedMethods(sideEffect);
  if (allowed === null) return;
  if (!methodAllowed(method, sideEffect)) throw new PermissionDeniedError('method', method, allowed, { sideEffect, host });
  for (const header of METHOD_OVERRIDE_HEADERS) {
    const asked = headers.get(header);
    if (asked !== null && !methodAllowed(asked.trim(), sideEffect))
      throw new PermissionDeniedError('method', asked.trim(), allowed, { sideEffect, host, via: header });
  }
}

/** true when `host` is one of the declared domains: an exact name, or `*.suffix` for any sub-domain. */
export function domainAllowed(host: string, declared: readonly string[]): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return declared.some((d) => {
    const pattern = d.toLowerCase();
    if (pattern.startsWith('*.')) return h.endsWith(pattern.slice(1)) && h.length > pattern.length - 1;
    return h === pattern;
  });
}

export interface CreateToolContextOptions {
  permissions: Pick<Permissions, 'network' | 'env'>;
  /** the declared side effect: `read` limits ctx.fetch to GET, HEAD and OPTIONS; undefined limits nothing */
  sideEffect?: SideEffect;
  /** the variables the job was given; only the declared ones reach the tool */
  env: Readonly<Record<string, string | undefined>>;
  fetchImpl?: typeof fetch;
  signal: AbortSignal;
  logSink: (entry: LogEntry) => void;
}

function restrictEnv(env: CreateToolContextOptions['env'], declared: readonly string[]) {
  const visible: Record<string, string | undefined> = {};
  for (const name of declared) if (env[name] !== undefined) visible[name] = env[name];
  return Object.freeze(visible);
}

function createLogger(sink: CreateToolContextOptions['logSink']): ToolLogger {
  const at = (level: LogEntry['level']) => (msg: string, fields?: Record<string, unknown>) =>
    sink({ t: new Date().toISOString(), level, msg: String(msg), ...(fields ? { fields } : {}) });
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export function createToolContext(opts: CreateToolContextOptions): ToolContext {
  const declaredNet = opts.permissions.network ?? [];
  const fetchImpl = opts.fetchImpl ?? globalThis.fetch;
  const guardedFetch = async (url: string | URL, init?: RequestInit): Promise<Response> => {
    const target = new URL(String(url));
    if (target.protocol !== 'http:' && target.protocol !== 'https:') {
      throw new PermissionDeniedError('network', target.href, declaredNet);
    }
    if (!domainAllowed(target.hostname, declaredNet)) {
      throw new PermissionDeniedError('network', target.hostname, declaredNet);
    }
    // Method and headers are read once and sent as checked, whatever getters `init` has.
    const rawMethod = init?.method;
    const method = rawMethod === undefined ? 'GET' : String(rawMethod);
    const headers = new Headers(init?.headers);
    checkMethod(method, headers, opts.sideEffect, target.host);
    // Combine the job's budget with the caller's own signal, so a timed-out job stops its requests.
    const signal = init?.signal ? AbortSignal.any([opts.signal, init.signal]) : opts.signal;
    // Redirects are not followed: one could lead to an undeclared domain. The tool sees the
    // 3xx and may follow it through ctx.fetch, which checks the new host again.
    return fetchImpl(target, { ...init, method, headers, signal, redirect: 'manual' });
  };
  return {
    fetch: guardedFetch,
    env: restrictEnv(opts.env, opts.permissions.env ?? []),
    log: createLogger(opts.logSink),
    signal: opts.signal,
  };
}
