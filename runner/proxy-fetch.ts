import { Agent, type Dispatcher, fetch as undiciFetch } from 'undici';
import { PROXY_REASON_HEADER, PROXY_RULE_HEADER } from './proxy.ts';

/**
 * fetch through the egress proxy, for ctx.fetch inside a sandbox container on an egress
 * network. Every request goes to the proxy in the clear and in absolute form
 * (`GET https://api.example.com/x HTTP/1.1`), never as a CONNECT tunnel: the proxy opens the
 * TLS connection upstream itself, so it sees each request's method and can hold a `read` tool
 * to GET, HEAD and OPTIONS (runner/proxy.ts). The hop in the clear is the internal network,
 * whose only other member is the proxy. Node 20's own fetch ignores HTTPS_PROXY, so this is
 * undici's fetch with a dispatcher that rewrites each request for the proxy. It is only the
 * transport: the declared-domain and method checks stay in ctx (runner/ctx.ts), and the proxy
 * checks again on its side.
 */
export function proxiedFetch(proxyUrl: string): typeof fetch {
  const proxy = new URL(proxyUrl).origin;
  const dispatcher = new Agent().compose((dispatch: Dispatcher['dispatch']): Dispatcher['dispatch'] => (opts, handler) => {
    const target = new URL(opts.path, opts.origin);
    return dispatch({ ...opts, origin: proxy, path: target.href, headers: withHost(opts.headers, target.host) }, handler);
  });
  return (async (url: string | URL | Request, init?: RequestInit) => {
    let response: Response;
    try {
      response = (await undiciFetch(url as Parameters<typeof undiciFetch>[0], {
        ...(init as object),
        dispatcher,
      })) as unknown as Response;
    } catch (err) {
      throw explain(err, url);
    }
    // The proxy's own answer (a refusal, or an upstream it could not reach) is not the API's: it
    // rejects as a tunnel refusal would, saying why.
    const reason = response.headers.get(PROXY_REASON_HEADER);
    if (reason !== null) {
      await response.body?.cancel().catch(() => undefined);
      throw refusal(response.status, reason, response.headers.get(PROXY_RULE_HEADER), hostOf(url));
    }
    return response;
  }) as typeof fetch;
}

type Headers = Dispatcher.DispatchOptions['headers'];

/** The origin's Host header: the proxy forwards it upstream (undici would otherwise name the proxy). */
function withHost(headers: Headers, host: string): Headers {
  if (Array.isArray(headers)) return [...headers, 'host', host];
  if (headers && typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
    return [...(headers as Iterable<[string, string | string[] | undefined]>), ['host', host]] as Headers;
  }
  return { ...(headers as Record<string, string | string[] | undefined>), host };
}

function hostOf(url: string | URL | Request): string {
  return new URL(url instanceof Request ? url.url : String(url)).host;
}

/** Worded so the tool's author (or the repair loop) knows it was the egress policy, and which rule. */
function refusal(status: number, reason: string, rule: string | null, host: string): TypeError {
  if (rule === 'method') return new TypeError(`fetch failed: the egress proxy refused it: ${reason}`);
  if (status === 403)
    return new TypeError(
      `fetch failed: the egress proxy refused it: only declared domains with public addresses are reachable (${host}): ${reason}`,
    );
  return new TypeError(`fetch failed: the egress proxy could not reach it (HTTP ${status}) (${host}): ${reason}`);
}

/** The innermost error: undici wraps the useful one two levels deep. */
function rootCause(err: Error): Error {
  let at = err;
  for (let depth = 0; depth < 5 && at.cause instanceof Error; depth++) at = at.cause;
  return at;
}

/** "fetch failed" says nothing; the root cause (the proxy unreachable, a reset) says what happened. */
function explain(err: unknown, url: string | URL | Request): unknown {
  if (!(err instanceof TypeError) || !(err.cause instanceof Error)) return err;
  const root = rootCause(err);
  return new TypeError(`${err.message}: ${root.message} (${hostOf(url)})`, { cause: root });
}
