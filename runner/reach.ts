import dns from 'node:dns/promises';
import net from 'node:net';
import tls from 'node:tls';
import { decide, type Lookup } from './proxy.ts';

/**
 * Forge's own check that the API can be reached, for the live stage. It runs in the egress
 * proxy's container (docker exec), so it sees the network exactly as the proxy does, and it runs
 * none of the judged tool's code: "this machine cannot reach the API" (the name does not resolve,
 * the address does not answer, its TLS fails) is established by the judge, never taken from the tool.
 */
export const REACH_MARKER = '\u001eFORGE_REACH\u001f';
const CONNECT_TIMEOUT_MS = 5_000;
/** dns.lookup has no timeout of its own (getaddrinfo follows resolv.conf): the whole check gets one. */
export const REACH_BUDGET_MS = 10_000;

export type Reach =
  /** the proxy would forward a call there */
  | { status: 'reachable'; address: string }
  /** the environment cannot reach it: offline, DNS down, refused, no answer, TLS intercepted or broken; says nothing about the tool */
  | { status: 'unreachable'; reason: string }
  /** the proxy refuses it (undeclared, private address, port): a verdict on the tool's declarations, not on the environment */
  | { status: 'refused'; reason: string };

export interface ReachOptions {
  /** also complete a TLS handshake (an https API), with the CAs the proxy trusts */
  tls?: boolean;
  lookup?: Lookup;
  connectTimeoutMs?: number;
  /** test hook, as in the proxy: where to connect for an address */
  connectTo?: (address: string, port: number) => { host: string; port: number };
}

const systemLookup: Lookup = (host) => dns.lookup(host, { all: true, verbatim: true });

function errorCode(err: unknown): string {
  return (err as NodeJS.ErrnoException)?.code ?? (err instanceof Error ? err.message : String(err));
}

/** Whether host:port can be reached the way the proxy would reach it (same decision, same connect). */
export async function checkReach(host: string, port: number, allow: readonly string[], opts: ReachOptions = {}): Promise<Reach> {
  const lookup = opts.lookup ?? systemLookup;
  let lookupError: unknown;
  const verdict = await decide(host, port, allow, async (name) => {
    try {
      return await lookup(name);
    } catch (err) {
      lookupError = err;
      throw err;
    }
  });
  if (!verdict.ok) {
    if (verdict.status === 403) return { status: 'refused', reason: verdict.reason };
    const why = lookupError === undefined ? 'no addresses' : errorCode(lookupError);
    return { status: 'unreachable', reason: `${host} could not be resolved from this machine (offline? DNS: ${why})` };
  }
  const to = (opts.connectTo ?? ((address, p) => ({ host: address, port: p })))(verdict.address, port);
  const timeoutMs = opts.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
  return new Promise<Reach>((resolve) => {
    const socket = net.connect({ host: to.host, port: to.port });
    let secure: tls.TLSSocket | undefined;
    const done = (reach: Reach) => {
      secure?.destroy();
      socket.destroy();
      resolve(reach);
    };
    const unreachable = (what: string) =>
      done({ status: 'unreachable', reason: `${host}:${port} (${verdict.address}) could not be reached from this machine: ${what}` });
    const reachable = () => done({ status: 'reachable', address: verdict.address });
    socket.setTimeout(timeoutMs, () => unreachable(`no answer within ${timeoutMs} ms`));
    socket.on('error', (err) => unreachable(errorCode(err)));
    socket.once('connect', () => {
      if (!opts.tls) return reachable();
      // Something answers; the API is reached only when its TLS holds (not a captive portal or an interceptor).
      secure = tls.connect({ socket, servername: net.isIP(host) ? undefined : host });
      secure.once('secureConnect', reachable);
      secure.on('error', (err) =>
        done({
          status: 'unreachable',
          reason: `${host}:${port} (${verdict.address}) answered, but not with the API's TLS: ${err.message}`,
        }),
      );
    });
  });
}

/** Container entry (docker exec in the proxy's container): FORGE_REACH_HOST, FORGE_REACH_PORT, FORGE_REACH_TLS=1, FORGE_PROXY_ALLOW. */
export async function runReachFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const host = env.FORGE_REACH_HOST ?? '';
  const port = Number(env.FORGE_REACH_PORT ?? 443);
  const secure = env.FORGE_REACH_TLS === '1';
  const allow = (env.FORGE_PROXY_ALLOW ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const budget = new Promise<Reach>((resolve) =>
    setTimeout(
      () =>
        resolve({
          status: 'unreachable',
          reason: `${host} could not be resolved or reached from this machine within ${REACH_BUDGET_MS} ms`,
        }),
      REACH_BUDGET_MS,
    ),
  );
  const reach = await Promise.race([checkReach(host, port, allow, { tls: secure }), budget]);
  process.stdout.write(`${REACH_MARKER}${JSON.stringify(reach)}\n`, () => process.exit(0));
}
