import { ProxyAgent, fetch as undiciFetch } from 'undici';

/**
 * fetch through the egress proxy, for ctx.fetch inside a sandbox container on an egress
 * network. Node 20's own fetch ignores HTTPS_PROXY, so this is undici's fetch with a
 * ProxyAgent (it tunnels every request with CONNECT). It is only the transport: the
 * declared-domain check stays in ctx (runner/ctx.ts), and the proxy checks again on its side.
 */
export function proxiedFetch(proxyUrl: string): typeof fetch {
  const agent = new ProxyAgent(proxyUrl);
  return (async (url: string | URL | Request, init?: RequestInit) => {
    try {
      return (await undiciFetch(url as Parameters<typeof undiciFetch>[0], {
        ...(init as object),
        dispatcher: agent,
      })) as unknown as Response;
    } catch (err) {
      throw explain(err, url);
    }
  }) as typeof fetch;
}

/** The innermost error: undici wraps the useful one ("Proxy response (403) …") two levels deep. */
function rootCause(err: Error): Error {
  let at = err;
  for (let depth = 0; depth < 5 && at.cause instanceof Error; depth++) at = at.cause;
  return at;
}

const PROXY_STATUS = /Proxy response \((\d{3})\)/;

/**
 * "fetch failed" says nothing; the root cause says what happened, and a proxy refusal is
 * worded so the tool's author (or the repair loop) knows it was the egress policy.
 */
function explain(err: unknown, url: string | URL | Request): unknown {
  if (!(err instanceof TypeError) || !(err.cause instanceof Error)) return err;
  const root = rootCause(err);
  const status = PROXY_STATUS.exec(root.message)?.[1];
  if (!status) return new TypeError(`${err.message}: ${root.message}`, { cause: root });
  const host = new URL(url instanceof Request ? url.url : String(url)).host;
  const what =
    status === '403' ? 'refused it: only declared domains with public addresses are reachable' : `could not reach it (HTTP ${status})`;
  return new TypeError(`${err.message}: the egress proxy ${what} (${host})`, { cause: root });
}
