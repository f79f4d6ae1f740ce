import dns from 'node:dns/promises';
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { domainAllowed } from './ctx.ts';

/**
 * The egress proxy for the live smoke stage. It runs in its own container (same sandbox
 * image), attached to the tool's internal network and to a normal bridge; it is the tool
 * container's only way out. It forwards CONNECT (https) and plain http requests, and only
 * to the tool's declared domains, on ports 80/443. It resolves names itself and connects
 * to the resolved address, refusing private, loopback and link-local destinations, so a
 * declared name that points inside (or is re-pointed by DNS) cannot reach the host or
 * other services. Every decision is logged as one JSON line on stdout.
 */

export const PROXY_READY_MARKER = 'FORGE_PROXY_READY';
export const PROXY_PORT = 3128;
export const PROXY_REASON_HEADER = 'x-forge-proxy-reason';
const ALLOWED_PORTS = new Set([80, 443]);
const IDLE_TIMEOUT_MS = 60_000;
const CONNECT_TIMEOUT_MS = 5_000;

export interface ProxyDecision {
  t: string;
  decision: 'allow' | 'deny' | 'error';
  method: 'CONNECT' | 'HTTP';
  host: string;
  port: number;
  address?: string;
  reason?: string;
}

// ---------------------------------------------------------------------------
// Address classification

interface Range {
  name: string;
  /** network bytes and prefix length */
  net: number[];
  bits: number;
}

const V4_RANGES: Range[] = [
  { name: '0.0.0.0/8 (this network)', net: [0, 0, 0, 0], bits: 8 },
  { name: '10.0.0.0/8 (private)', net: [10, 0, 0, 0], bits: 8 },
  { name: '100.64.0.0/10 (carrier-grade NAT)', net: [100, 64, 0, 0], bits: 10 },
  { name: '127.0.0.0/8 (loopback)', net: [127, 0, 0, 0], bits: 8 },
  { name: '169.254.0.0/16 (link-local, cloud metadata)', net: [169, 254, 0, 0], bits: 16 },
  { name: '172.16.0.0/12 (private)', net: [172, 16, 0, 0], bits: 12 },
  { name: '192.0.0.0/24 (IETF protocol assignments)', net: [192, 0, 0, 0], bits: 24 },
  { name: '192.168.0.0/16 (private)', net: [192, 168, 0, 0], bits: 16 },
  { name: '198.18.0.0/15 (benchmarking)', net: [198, 18, 0, 0], bits: 15 },
  { name: '224.0.0.0/4 (multicast)', net: [224, 0, 0, 0], bits: 4 },
  { name: '240.0.0.0/4 (reserved, broadcast)', net: [240, 0, 0, 0], bits: 4 },
];

const V6_RANGES: Range[] = [
  { name: '::/128 (unspecified)', net: new Array(16).fill(0), bits: 128 },
  { name: '::1/128 (loopback)', net: [...new Array(15).fill(0), 1], bits: 128 },
  { name: 'fc00::/7 (unique local)', net: [0xfc, ...new Array(15).fill(0)], bits: 7 },
  { name: 'fe80::/10 (link-local)', net: [0xfe, 0x80, ...new Array(14).fill(0)], bits: 10 },
  { name: 'ff00::/8 (multicast)', net: [0xff, ...new Array(15).fill(0)], bits: 8 },
];

function inRange(bytes: number[], range: Range): boolean {
  for (let bit = 0; bit < range.bits; bit++) {
    const byte = bit >> 3;
    const mask = 0x80 >> (bit & 7);
    if ((bytes[byte]! & mask) !== (range.net[byte]! & mask)) return false;
  }
  return true;
}

function v4Bytes(ip: string): number[] {
  return ip.split('.').map(Number);
}

/** 16 bytes of an IPv6 address (handles :: and an embedded dotted IPv4 tail). */
function v6Bytes(ip: string): number[] {
  let text = ip.replace(/%.*$/, '');
  let tail: number[] = [];
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    tail = v4Bytes(dotted[1]!);
    text = text.slice(0, -dotted[1]!.length) + '0:0';
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const groups = (s: string) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const h = groups(head);
  const r = rest === undefined ? [] : groups(rest);
  const fill = rest === undefined ? [] : new Array(8 - h.length - r.length).fill(0);
  const words = [...h, ...fill, ...r];
  const bytes = words.flatMap((w) => [(w >> 8) & 0xff, w & 0xff]);
  if (tail.length) bytes.splice(12, 4, ...tail);
  return bytes;
}

/** The name of the non-public range an address is in, or null when it is a public address. */
export function nonPublicRange(ip: string): string | null {
  const family = net.isIP(ip);
  if (family === 4) return V4_RANGES.find((r) => inRange(v4Bytes(ip), r))?.name ?? null;
  if (family === 6) {
    const bytes = v6Bytes(ip);
    // ::ffff:a.b.c.d (IPv4-mapped) and 64:ff9b::a.b.c.d (NAT64) reach the IPv4 address inside.
    const mapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
    const nat64 =
      bytes[0] === 0x00 && bytes[1] === 0x64 && bytes[2] === 0xff && bytes[3] === 0x9b && bytes.slice(4, 12).every((b) => b === 0);
    if (mapped || nat64) {
      const inner = V4_RANGES.find((r) => inRange(bytes.slice(12), r));
      return inner ? `${inner.name} via ${mapped ? 'IPv4-mapped' : 'NAT64'} IPv6` : null;
    }
    return V6_RANGES.find((r) => inRange(bytes, r))?.name ?? null;
  }
  return 'not an IP address';
}

// ---------------------------------------------------------------------------
// Decisions

export type Lookup = (host: string) => Promise<Array<{ address: string; family: number }>>;

const systemLookup: Lookup = (host) => dns.lookup(host, { all: true, verbatim: true });

export type Verdict = { ok: true; address: string } | { ok: false; status: 403 | 502; reason: string };

/**
 * Whether host:port may be reached, and at which address. Every resolved address must be
 * public: if any is not, the name is treated as pointing inside and refused.
 */
export async function decide(host: string, port: number, allow: readonly string[], lookup: Lookup = systemLookup): Promise<Verdict> {
  const name = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (!ALLOWED_PORTS.has(port)) return { ok: false, status: 403, reason: `port ${port} is not allowed (only 80 and 443)` };
  if (net.isIP(name)) {
    const range = nonPublicRange(name);
    if (range)
      return { ok: false, status: 403, reason: `${name} is in ${range}: private, loopback and link-local destinations are refused` };
    return { ok: false, status: 403, reason: `${name} is an IP address, not a declared domain (declared: ${allow.join(', ') || 'none'})` };
  }
  if (!domainAllowed(name, allow)) {
    return { ok: false, status: 403, reason: `${name} is not a declared domain of this tool (declared: ${allow.join(', ') || 'none'})` };
  }
  let addresses: Array<{ address: string; family: number }>;
  try {
    addresses = await lookup(name);
  } catch (err) {
    return { ok: false, status: 502, reason: `could not resolve ${name}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
  }
  if (addresses.length === 0) return { ok: false, status: 502, reason: `${name} has no addresses` };
  for (const a of addresses) {
    const range = nonPublicRange(a.address);
    if (range)
      return {
        ok: false,
        status: 403,
        reason: `${name} resolves to ${a.address} in ${range}: private, loopback and link-local destinations are refused`,
      };
  }
  const chosen = addresses.find((a) => a.family === 4) ?? addresses[0]!;
  return { ok: true, address: chosen.address };
}

// ---------------------------------------------------------------------------
// The server

export interface ProxyOptions {
  allow: readonly string[];
  lookup?: Lookup;
  log?: (d: ProxyDecision) => void;
  /** test hook: where to actually connect for an allowed destination (default: the resolved address and port) */
  connectTo?: (address: string, port: number) => { host: string; port: number };
}

/** Header values must be one line of latin-1; reasons are ASCII already, this is a guard. */
const headerSafe = (s: string) => s.replace(/[^\x20-\x7e]/g, '?');

function refuseSocket(socket: Duplex, status: number, reason: string): void {
  const text = status === 403 ? 'Forbidden' : 'Bad Gateway';
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain\r\n${PROXY_REASON_HEADER}: ${headerSafe(reason)}\r\nConnection: close\r\n\r\nforge egress proxy: ${reason}\n`,
  );
}

function parseAuthority(authority: string): { host: string; port: number } | null {
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(authority);
  return m ? { host: m[1]!, port: Number(m[2]) } : null;
}

const HOP_BY_HOP = ['connection', 'proxy-connection', 'proxy-authorization', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade'];

export function createProxyServer(opts: ProxyOptions): http.Server {
  const log = opts.log ?? ((d) => process.stdout.write(JSON.stringify(d) + '\n'));
  const target = opts.connectTo ?? ((address, port) => ({ host: address, port }));
  const record = (d: Omit<ProxyDecision, 't'>) => log({ t: new Date().toISOString(), ...d });

  const server = http.createServer(async (req, res) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '');
      if (url.protocol !== 'http:') throw new Error('not http');
    } catch {
      res
        .writeHead(400, { 'content-type': 'text/plain', [PROXY_REASON_HEADER]: 'not a proxy request' })
        .end('forge egress proxy: send absolute http:// URLs or CONNECT\n');
      return;
    }
    const port = Number(url.port || 80);
    const verdict = await decide(url.hostname, port, opts.allow, opts.lookup);
    if (!verdict.ok) {
      record({ decision: verdict.status === 403 ? 'deny' : 'error', method: 'HTTP', host: url.hostname, port, reason: verdict.reason });
      res
        .writeHead(verdict.status, { 'content-type': 'text/plain', [PROXY_REASON_HEADER]: headerSafe(verdict.reason) })
        .end(`forge egress proxy: ${verdict.reason}\n`);
      return;
    }
    record({ decision: 'allow', method: 'HTTP', host: url.hostname, port, address: verdict.address });
    const headers: http.OutgoingHttpHeaders = { ...req.headers, host: url.host };
    for (const h of HOP_BY_HOP) delete headers[h];
    const to = target(verdict.address, port);
    const upstream = http.request(
      { host: to.host, port: to.port, method: req.method, path: url.pathname + url.search, headers, timeout: CONNECT_TIMEOUT_MS },
      (up) => {
        upstream.setTimeout(IDLE_TIMEOUT_MS);
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('timeout', () => upstream.destroy(new Error(`no answer within ${CONNECT_TIMEOUT_MS} ms`)));
    upstream.on('error', (err) => {
      record({ decision: 'error', method: 'HTTP', host: url.hostname, port, address: verdict.address, reason: err.message });
      if (!res.headersSent)
        res.writeHead(502, { 'content-type': 'text/plain', [PROXY_REASON_HEADER]: headerSafe(`upstream: ${err.message}`) });
      res.end(`forge egress proxy: upstream ${url.hostname} failed: ${err.message}\n`);
    });
    req.pipe(upstream);
  });

  server.on('connect', async (req, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const authority = parseAuthority(req.url ?? '');
    if (!authority) return refuseSocket(socket, 403, `bad CONNECT target ${JSON.stringify(req.url)}`);
    const verdict = await decide(authority.host, authority.port, opts.allow, opts.lookup);
    if (!verdict.ok) {
      record({
        decision: verdict.status === 403 ? 'deny' : 'error',
        method: 'CONNECT',
        host: authority.host,
        port: authority.port,
        reason: verdict.reason,
      });
      return refuseSocket(socket, verdict.status, verdict.reason);
    }
    const to = target(verdict.address, authority.port);
    const upstream = net.connect({ host: to.host, port: to.port });
    let connected = false;
    // A black-holed address would otherwise hold the tool until its own budget runs out.
    upstream.setTimeout(CONNECT_TIMEOUT_MS, () =>
      upstream.destroy(new Error(connected ? 'idle timeout' : `no answer within ${CONNECT_TIMEOUT_MS} ms`)),
    );
    upstream.once('connect', () => {
      connected = true;
      upstream.setTimeout(IDLE_TIMEOUT_MS);
      record({ decision: 'allow', method: 'CONNECT', host: authority.host, port: authority.port, address: verdict.address });
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.once('error', (err) => {
      if (!connected) {
        record({
          decision: 'error',
          method: 'CONNECT',
          host: authority.host,
          port: authority.port,
          address: verdict.address,
          reason: err.message,
        });
        refuseSocket(socket, 502, `could not reach ${authority.host} (${verdict.address}): ${err.message}`);
      } else socket.destroy();
    });
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  return server;
}

/** Container entry: allowlist from FORGE_PROXY_ALLOW (comma-separated), prints the ready marker. */
export function startProxyFromEnv(env: NodeJS.ProcessEnv = process.env): http.Server {
  const allow = (env.FORGE_PROXY_ALLOW ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const port = Number(env.FORGE_PROXY_PORT ?? PROXY_PORT);
  const server = createProxyServer({ allow });
  server.listen(port, '0.0.0.0', () => process.stdout.write(`${PROXY_READY_MARKER} ${JSON.stringify({ port, allow })}\n`));
  return server;
}
