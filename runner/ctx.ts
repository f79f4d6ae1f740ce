import { ForgeError } from '../domain/errors.ts';
import type { Permissions, ToolContext, ToolLogger } from '../domain/tool.ts';
import type { LogEntry } from './protocol.ts';

/**
 * The capability object a tool receives inside the sandbox. This is the first of the
 * two containment layers (the container is the second): a tool sees only the
 * network domains and environment variables its manifest declares.
 */
export class PermissionDeniedError extends ForgeError {
  constructor(kind: 'network' | 'env', requested: string, declared: readonly string[]) {
    super(
      `permission denied: ${kind} access to ${JSON.stringify(requested)} is not declared ` +
        `(declared ${kind}: ${declared.length ? declared.join(', ') : 'none'})`,
      'PERMISSION_DENIED',
      `add ${JSON.stringify(requested)} to the manifest's permissions.${kind} if the tool really needs it`,
      { kind, requested, declared: [...declared] },
    );
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
    // Combine the job's budget with the caller's own signal, so a timed-out job stops its requests.
    const signal = init?.signal ? AbortSignal.any([opts.signal, init.signal]) : opts.signal;
    // Redirects are not followed: one could lead to an undeclared domain. The tool sees the
    // 3xx and may follow it through ctx.fetch, which checks the new host again.
    return fetchImpl(target, { ...init, signal, redirect: 'manual' });
  };
  return {
    fetch: guardedFetch,
    env: restrictEnv(opts.env, opts.permissions.env ?? []),
    log: createLogger(opts.logSink),
    signal: opts.signal,
  };
}
