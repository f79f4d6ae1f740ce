import dns from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type tls from 'node:tls';
import { allowedMethods, METHOD_OVERRIDE_HEADERS, methodAllowed, methodRefusal } from '../domain/side-effect.ts';
// Types only: the proxy is passed to `node -e` whole, and zod (domain/tool.ts) would not fit in argv.
import type { SideEffect } from '../domain/tool.ts';
import { domainAllowed } from './ctx.ts';

/**
 * The egress proxy for the live smoke stage. It runs in its own container (same sandbox
 * image), attached to the tool's internal network and to a normal bridge; it is the tool
 * container's only way out. It forwards requests, only to the tool's declared domains, on
 * ports 80/443 (and, for a write tool, CONNECT tunnels). It resolves names itself and connects
 * to the resolved address, refusing every IANA special-purpose range (private, loopback,
 * link-local, documentation, NAT64, 6to4...), so a declared name that points inside (or is
 * re-pointed by DNS) cannot reach the host or other services. Every decision is logged as
 * one JSON line on stdout.
 *
 * It also holds a tool to its declared side effect. ctx.fetch sends every request to it in the
 * clear, in absolute form (`GET https://api.example.com/x`), and the proxy opens the TLS
 * connection upstream itself, verifying the certificate: so it sees each method, and for a
 * `read` tool refuses any but GET, HEAD and OPTIONS, and refuses CONNECT, whose tunnel would
 * hide them. The clear-text hop is the internal network, whose only members are the tool
 * container and this proxy.
 */

export const PROXY_READY_MARKER = 'FORGE_PROXY_READY';
export const PROXY_PORT = 3128;
export const PROXY_REASON_HEADER = 'x-forge-proxy-reason';
/** On a refusal: which rule refused it ('method' for the side effect, 'destination' otherwise). */
export const PROXY_RULE_HEADER = 'x-forge-proxy-rule';
const ALLOWED_PORTS = new Set([80, 443]);
const IDLE_TIMEOUT_MS = 60_000;
const CONNECT_TIMEOUT_MS = 5_000;

export interface ProxyDecision {
  t: string;
  decision: 'allow' | 'deny' | 'error';
  method: 'CONNECT' | 'HTTP';
  /** HTTP: the request's method (the proxy sees it: requests come in the clear) */
  httpMethod?: string;
  host: string;
  port: number;
  address?: string;
  reason?: string;
  /**
   * The client's address on the internal network. A proxy serves every call of one tool version
   * (services/sandbox/egress-pool.ts) and each call's container has its own address there, which
   * the tool cannot change (no NET_ADMIN): so the host attributes each decision to its call.
   */
  client?: string;
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
  { name: '192.0.2.0/24 (documentation, TEST-NET-1)', net: [192, 0, 2, 0], bits: 24 },
  { name: '192.88.99.0/24 (6to4 relay anycast, deprecated)', net: [192, 88, 99, 0], bits: 24 },
  { name: '192.168.0.0/16 (private)', net: [192, 168, 0, 0], bits: 16 },
  { name: '198.18.0.0/15 (benchmarking)', net: [198, 18, 0, 0], bits: 15 },
  { name: '198.51.100.0/24 (documentation, TEST-NET-2)', net: [198, 51, 100, 0], bits: 24 },
  { name: '203.0.113.0/24 (documentation, TEST-NET-3)', net: [203, 0, 113, 0], bits: 24 },
  { name: '224.0.0.0/4 (multicast)', net: [224, 0, 0, 0], bits: 4 },
  { name: '255.255.255.255/32 (limited broadcast)', net: [255, 255, 255, 255], bits: 32 },
  { name: '240.0.0.0/4 (reserved)', net: [240, 0, 0, 0], bits: 4 },
];

/** 16 bytes from leading bytes (the rest zero). */
const v6 = (...lead: number[]) => [...lead, ...new Array(16 - lead.length).fill(0)];

/** Checked in order: the first match names the range (:: and ::1 before the rest of ::/96). */
const V6_RANGES: Range[] = [
  { name: '::/128 (unspecified)', net: v6(), bits: 128 },
  { name: '::1/128 (loopback)', net: v6(...new Array(15).fill(0), 1), bits: 128 },
  { name: '::/96 (IPv4-compatible, deprecated)', net: v6(), bits: 96 },
  { name: '64:ff9b:1::/48 (local-use NAT64)', net: v6(0x00, 0x64, 0xff, 0x9b, 0x00, 0x01), bits: 48 },
  { name: '100::/64 (discard-only)', net: v6(0x01, 0x00), bits: 64 },
  { name: '100:0:0:1::/64 (dummy prefix)', net: v6(0x01, 0x00, 0, 0, 0, 0, 0, 1), bits: 64 },
  { name: '2001::/23 (IETF protocol assignments: Teredo, benchmarking, ORCHID...)', net: v6(0x20, 0x01), bits: 23 },
  { name: '2001:db8::/32 (documentation)', net: v6(0x20, 0x01, 0x0d, 0xb8), bits: 32 },
  { name: '2002::/16 (6to4)', net: v6(0x20, 0x02), bits: 16 },
  { name: '3fff::/20 (documentation)', net: v6(0x3f, 0xff), bits: 20 },
  { name: '5f00::/16 (segment routing SIDs)', net: v6(0x5f, 0x00), bits: 16 },
  { name: 'fc00::/7 (unique local)', net: v6(0xfc), bits: 7 },
  { name: 'fe80::/10 (link-local)', net: v6(0xfe, 0x80), bits: 10 },
  { name: 'ff00::/8 (multicast)', net: v6(0xff), bits: 8 },
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

/** The end of every range refusal (the range's own name comes before it: documentation, NAT64, 6to4...). */
const REFUSED_RANGES = 'private, loopback and link-local destinations are refused';

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
    if (range) return { ok: false, status: 403, reason: `${name} is in ${range}: ${REFUSED_RANGES}` };
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
        reason: `${name} resolves to ${a.address} in ${range}: ${REFUSED_RANGES}`,
      };
  }
  const chosen = addresses.find((a) => a.family === 4) ?? addresses[0]!;
  return { ok: true, address: chosen.address };
}

// ---------------------------------------------------------------------------
// The server

export interface ProxyOptions {
  allow: readonly string[];
  /** the tool's declared side effect: `read` admits only GET, HEAD and OPTIONS, and no CONNECT; undefined admits any method */
  sideEffect?: SideEffect;
  lookup?: Lookup;
  log?: (d: ProxyDecision) => void;
  /** test hook: where to actually connect for an allowed destination (default: the resolved address and port) */
  connectTo?: (address: string, port: number) => { host: string; port: number };
  /** test hook: TLS options for the upstream connection of an https request (e.g. a test CA) */
  upstreamTls?: tls.ConnectionOptions;
}

/** Header values must be one line of latin-1; reasons are ASCII already, this is a guard. */
const headerSafe = (s: string) => s.replace(/[^\x20-\x7e]/g, '?');

type Rule = 'method' | 'destination';

function refuseSocket(socket: Duplex, status: number, reason: string, rule: Rule = 'destination'): void {
  const text = status === 403 ? 'Forbidden' : 'Bad Gateway';
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain\r\n${PROXY_REASON_HEADER}: ${headerSafe(reason)}\r\n${PROXY_RULE_HEADER}: ${rule}\r\nConnection: close\r\n\r\nforge egress proxy: ${reason}\n`,
  );
}

function refuse(res: http.ServerResponse, status: number, reason: string, rule: Rule = 'destination'): void {
  res
    .writeHead(status, { 'content-type': 'text/plain', [PROXY_REASON_HEADER]: headerSafe(reason), [PROXY_RULE_HEADER]: rule })
    .end(`forge egress proxy: ${reason}\n`);
}

/** Why a request's method breaks the declared side effect (its own, or one an override header asks for), or null. */
export function methodProblem(
  method: string,
  headers: http.IncomingHttpHeaders,
  host: string,
  sideEffect: SideEffect | undefined,
): string | null {
  if (allowedMethods(sideEffect) === null) return null;
  if (!methodAllowed(method, sideEffect)) return methodRefusal(method, sideEffect, { host });
  for (const header of METHOD_OVERRIDE_HEADERS) {
    const raw = headers[header];
    for (const asked of Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]) {
      if (!methodAllowed(asked.trim(), sideEffect)) return methodRefusal(asked.trim(), sideEffect, { host, via: header });
    }
  }
  return null;
}

function parseAuthority(authority: string): { host: string; port: number } | null {
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(authority);
  return m ? { host: m[1]!, port: Number(m[2]) } : null;
}

/** An IPv4 client on a dual-stack listener shows as ::ffff:a.b.c.d; Docker reports it as a.b.c.d. */
export function clientAddress(remote: string): string {
  return remote.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
}

const HOP_BY_HOP = ['connection', 'proxy-connection', 'proxy-authorization', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade'];
/** An upstream must not be able to pass its answer off as the proxy's refusal. */
const PROXY_HEADERS = [PROXY_REASON_HEADER, PROXY_RULE_HEADER];

export function createProxyServer(opts: ProxyOptions): http.Server {
  const log = opts.log ?? ((d) => process.stdout.write(JSON.stringify(d) + '\n'));
  const target = opts.connectTo ?? ((address, port) => ({ host: address, port }));
  // The peer's address is read when the request arrives: a socket already destroyed no longer knows it.
  const record = (d: Omit<ProxyDecision, 't' | 'client'>, remote: string | undefined) =>
    log({ t: new Date().toISOString(), ...d, ...(remote ? { client: clientAddress(remote) } : {}) });

  const server = http.createServer(async (req, res) => {
    const remote = req.socket.remoteAddress;
    let url: URL;
    try {
      url = new URL(req.url ?? '');
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http');
    } catch {
      res
        .writeHead(400, { 'content-type': 'text/plain', [PROXY_REASON_HEADER]: 'not a proxy request' })
        .end('forge egress proxy: send absolute http:// or https:// URLs, or CONNECT\n');
      return;
    }
    const secure = url.protocol === 'https:';
    const port = Number(url.port || (secure ? 443 : 80));
    const httpMethod = req.method ?? 'GET';
    const seen = { method: 'HTTP' as const, httpMethod, host: url.hostname, port };
    const wrongMethod = methodProblem(httpMethod, req.headers, url.host, opts.sideEffect);
    if (wrongMethod) {
      record({ decision: 'deny', ...seen, reason: wrongMethod }, remote);
      return refuse(res, 403, wrongMethod, 'method');
    }
    const verdict = await decide(url.hostname, port, opts.allow, opts.lookup);
    if (!verdict.ok) {
      record({ decision: verdict.status === 403 ? 'deny' : 'error', ...seen, reason: verdict.reason }, remote);
      return refuse(res, verdict.status, verdict.reason);
    }
    record({ decision: 'allow', ...seen, address: verdict.address }, remote);
    const headers: http.OutgoingHttpHeaders = { ...req.headers, host: url.host };
    for (const h of HOP_BY_HOP) delete headers[h];
    const to = target(verdict.address, port);
    const request = {
      host: to.host,
      port: to.port,
      method: httpMethod,
      path: url.pathname + url.search,
      headers,
      timeout: CONNECT_TIMEOUT_MS,
    };
    const onResponse = (up: http.IncomingMessage) => {
      upstream.setTimeout(IDLE_TIMEOUT_MS);
      const upHeaders = { ...up.headers };
      for (const h of PROXY_HEADERS) delete upHeaders[h];
      res.writeHead(up.statusCode ?? 502, upHeaders);
      up.pipe(res);
    };
    // https: the proxy is the TLS client, verifying the certificate against the declared name.
    const name = url.hostname.replace(/^\[|\]$/g, '');
    const upstream = secure
      ? https.request({ ...request, ...(net.isIP(name) ? {} : { servername: name }), agent: false, ...opts.upstreamTls }, onResponse)
      : http.request(request, onResponse);
    upstream.on('timeout', () => upstream.destroy(new Error(`no answer within ${CONNECT_TIMEOUT_MS} ms`)));
    upstream.on('error', (err) => {
      record({ decision: 'error', ...seen, address: verdict.address, reason: err.message }, remote);
      if (!res.headersSent)
        res.writeHead(502, {
          'content-type': 'text/plain',
          [PROXY_REASON_HEADER]: headerSafe(`upstream: ${err.message}`),
          [PROXY_RULE_HEADER]: 'destination',
        });
      res.end(`forge egress proxy: upstream ${url.hostname} failed: ${err.message}\n`);
    });
    req.pipe(upstream);
  });

  server.on('connect', async (req, socket: Duplex, head: Buffer) => {
    const remote = req.socket.remoteAddress;
    socket.on('error', () => socket.destroy());
    const authority = parseAuthority(req.url ?? '');
    if (!authority) return refuseSocket(socket, 403, `bad CONNECT target ${JSON.stringify(req.url)}`);
    if (allowedMethods(opts.sideEffect) !== null) {
      // A tunnel hides every method inside it: a tool held to some methods must show them.
      const reason = `CONNECT tunnels are refused for a tool that declares sideEffect '${opts.sideEffect}': its requests must come in the clear so their methods can be checked (ctx.fetch sends them so)`;
      record({ decision: 'deny', method: 'CONNECT', host: authority.host, port: authority.port, reason }, remote);
      return refuseSocket(socket, 403, reason, 'method');
    }
    const verdict = await decide(authority.host, authority.port, opts.allow, opts.lookup);
    if (!verdict.ok) {
      record(
        {
          decision: verdict.status === 403 ? 'deny' : 'error',
          method: 'CONNECT',
          host: authority.host,
          port: authority.port,
          reason: verdict.reason,
        },
        remote,
      );
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
      record({ decision: 'allow', method: 'CONNECT', host: authority.host, port: authority.port, address: verdict.address }, remote);
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.once('error', (err) => {
      if (!connected) {
        record(
          {
            decision: 'error',
            method: 'CONNECT',
            host: authority.host,
            port: authority.port,
            address: verdict.address,
            reason: err.message,
          },
          remote,
        );
        refuseSocket(socket, 502, `could not reach ${authority.host} (${verdict.address}): ${err.message}`);
      } else socket.destroy();
    });
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  return server;
}

/**
 * FORGE_PROXY_REDIRECT, a bench and test hook like the proxy's extra hosts (never set from Forge's
 * configuration): `address:port=host:port,...` says where to connect for an allowed destination
 * after every check passed, so a bench can stand a local server in for a public address.
 */
function redirectsFromEnv(raw: string | undefined): ProxyOptions['connectTo'] {
  if (!raw) return undefined;
  const map = new Map<string, { host: string; port: number }>();
  for (const pair of raw.split(',').filter(Boolean)) {
    const [from, to] = pair.split('=');
    const target = parseAuthority(to ?? '');
    if (!from || !target) throw new Error(`FORGE_PROXY_REDIRECT: ${JSON.stringify(pair)} is not address:port=host:port`);
    map.set(from, target);
  }
  return (address, port) => map.get(`${address}:${port}`) ?? { host: address, port };
}

/**
 * Container entry: allowlist from FORGE_PROXY_ALLOW (comma-separated), the tool's side effect from
 * FORGE_PROXY_SIDE_EFFECT (`read` when absent: a proxy nobody told otherwise admits no writes),
 * prints the ready marker.
 */
export function startProxyFromEnv(env: NodeJS.ProcessEnv = process.env): http.Server {
  const allow = (env.FORGE_PROXY_ALLOW ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const declared = env.FORGE_PROXY_SIDE_EFFECT || 'read';
  if (declared !== 'read' && declared !== 'write')
    throw new Error(`FORGE_PROXY_SIDE_EFFECT must be read or write, not ${JSON.stringify(declared)}`);
  const sideEffect: SideEffect = declared;
  const port = Number(env.FORGE_PROXY_PORT ?? PROXY_PORT);
  const server = createProxyServer({ allow, sideEffect, connectTo: redirectsFromEnv(env.FORGE_PROXY_REDIRECT) });
  server.listen(port, '0.0.0.0', () =>
    process.stdout.write(
      `${PROXY_READY_MARKER} ${JSON.stringify({ port, allow, sideEffect, methods: allowedMethods(sideEffect) ?? 'any' })}\n`,
    ),
  );
  return server;
}
