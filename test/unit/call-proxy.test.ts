/**
 * The runner's call mode with an egress proxy, without Docker or internet: an in-process
 * proxy (runner/proxy.ts) with a fake resolver and a test upstream. ctx refuses undeclared
 * domains before the proxy sees anything; declared ones go through the proxy, which still
 * refuses private destinations.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { z } from 'zod';
import type { ToolContext } from '../../domain/tool.ts';
import { callTool } from '../../runner/call.ts';
import { jobMessageSchema } from '../../runner/protocol.ts';
import { createProxyServer, type ProxyDecision } from '../../runner/proxy.ts';
import type { LoadedTool } from '../../runner/tool-module.ts';
import { sandboxJobSchema } from '../../services/sandbox/types.ts';

const ADDRESSES: Record<string, string> = {
  'example.com': '93.184.216.34',
  'inside.example.com': '10.20.30.40',
};

/** Fetches input.url through ctx and reports what came back. */
const fetcher: LoadedTool = {
  name: 'fetcher',
  description: 'fetches one URL',
  permissions: { network: ['example.com', 'inside.example.com'], env: [] },
  input: z.object({ url: z.string() }),
  output: z.object({ status: z.number(), body: z.string() }),
  async run(input: unknown, ctx: ToolContext) {
    const res = await ctx.fetch((input as { url: string }).url);
    return { status: res.status, body: await res.text() };
  },
};

describe('callTool through an egress proxy', () => {
  let upstream: http.Server;
  let proxy: http.Server;
  let proxyUrl: string;
  let seenByUpstream: string[];
  let decisions: ProxyDecision[];

  before(async () => {
    upstream = http.createServer((req, res) => {
      seenByUpstream.push(`${req.headers.host}${req.url}`);
      res.end('hello from upstream');
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const upstreamPort = (upstream.address() as net.AddressInfo).port;
    proxy = createProxyServer({
      allow: ['example.com', 'inside.example.com'],
      lookup: async (host) => (ADDRESSES[host] ? [{ address: ADDRESSES[host]!, family: 4 }] : []),
      log: (d) => decisions.push(d),
      // The "public" address is this test's upstream: no internet needed.
      connectTo: () => ({ host: '127.0.0.1', port: upstreamPort }),
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    proxyUrl = `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
  });

  beforeEach(() => {
    seenByUpstream = [];
    decisions = [];
  });

  after(() => {
    proxy.closeAllConnections();
    proxy.close();
    upstream.close();
  });

  const call = (url: string) => callTool(fetcher, { url }, { env: {}, timeoutMs: 10_000, proxyUrl });

  test('a declared domain goes through the proxy to its public address', async () => {
    const r = await call('http://example.com/ping?x=1');
    assert.equal(r.ok, true, JSON.stringify(r.error));
    assert.deepEqual(r.output, { status: 200, body: 'hello from upstream' });
    assert.deepEqual(seenByUpstream, ['example.com/ping?x=1']);
    assert.deepEqual(
      decisions.map((d) => [d.decision, d.host, d.address]),
      [['allow', 'example.com', '93.184.216.34']],
    );
  });

  test('an undeclared domain is refused by ctx and never reaches the proxy', async () => {
    const r = await call('http://evil.example.net/');
    assert.equal(r.ok, false);
    assert.equal(r.error?.code, 'PERMISSION_DENIED');
    assert.match(
      r.error!.message,
      /network access to "evil\.example\.net" is not declared \(declared network: example\.com, inside\.example\.com\)/,
    );
    assert.deepEqual(decisions, []);
    assert.deepEqual(seenByUpstream, []);
  });

  test('a declared name pointing at a private address is refused by the proxy', async () => {
    const r = await call('https://inside.example.com/');
    assert.equal(r.ok, false);
    assert.match(
      r.error!.message,
      /the egress proxy refused it: only declared domains with public addresses are reachable \(inside\.example\.com\)/,
      'the tool sees the proxy refusal, not a bare "fetch failed"',
    );
    // Requests reach the proxy in absolute form (never a CONNECT tunnel), so it sees their method too.
    assert.deepEqual(
      decisions.map((d) => [d.decision, d.method, d.httpMethod, d.host]),
      [['deny', 'HTTP', 'GET', 'inside.example.com']],
    );
    assert.match(decisions[0]!.reason!, /inside\.example\.com resolves to 10\.20\.30\.40 in 10\.0\.0\.0\/8 \(private\)/);
    assert.deepEqual(seenByUpstream, []);
  });
});

/** A self-signed certificate for `name`, made with the openssl CLI (null when it is not installed). */
function selfSigned(name: string): { key: string; cert: string } | null {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-cert-'));
  try {
    const r = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        `/CN=${name}`,
        '-addext',
        `subjectAltName=DNS:${name}`,
      ].concat(['-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')]),
      { stdio: 'ignore' },
    );
    if (r.status !== 0) return null;
    return { key: fs.readFileSync(path.join(dir, 'key.pem'), 'utf8'), cert: fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8') };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A tool declaring sideEffect 'read', through a proxy started for a read tool. ctx refuses any
 * method but GET, HEAD and OPTIONS; a request that gets past ctx anyway (a job approved as
 * something else than the proxy was told) is refused by the proxy, which sees every method
 * because requests reach it in the clear and it opens the TLS connection upstream itself.
 */
describe('a read tool through the egress proxy', () => {
  const good = selfSigned('example.com');
  const wrong = selfSigned('someone-else.example.org');
  const servers: Array<http.Server | https.Server> = [];
  let proxy: http.Server;
  let proxyUrl: string;
  let seen: string[];
  let decisions: ProxyDecision[];

  const reader: LoadedTool = {
    name: 'reader',
    description: 'sends one request',
    permissions: { network: ['example.com', 'wrong-cert.example.com'], env: [] },
    sideEffect: 'read',
    input: z.object({ url: z.string(), init: z.any().optional() }),
    output: z.object({ status: z.number(), body: z.string() }),
    async run(input: unknown, ctx: ToolContext) {
      const { url, init } = input as { url: string; init?: RequestInit };
      const res = await ctx.fetch(url, init);
      return { status: res.status, body: await res.text() };
    },
  };

  before(async () => {
    const answer = (req: http.IncomingMessage, res: http.ServerResponse) => {
      seen.push(`${req.method} ${req.headers.host}${req.url}`);
      res.end(`upstream saw ${req.method}`);
    };
    const listen = async (server: http.Server | https.Server) => {
      servers.push(server);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      return (server.address() as net.AddressInfo).port;
    };
    const plainPort = await listen(http.createServer(answer));
    const tlsPort = good ? await listen(https.createServer(good, answer)) : 0;
    const wrongPort = wrong ? await listen(https.createServer(wrong, answer)) : 0;
    const ports: Record<string, Record<number, number>> = {
      '93.184.216.34': { 80: plainPort, 443: tlsPort },
      '93.184.216.35': { 443: wrongPort },
    };
    proxy = createProxyServer({
      allow: ['example.com', 'wrong-cert.example.com'],
      sideEffect: 'read',
      lookup: async (host) => [{ address: host === 'example.com' ? '93.184.216.34' : '93.184.216.35', family: 4 }],
      log: (d) => decisions.push(d),
      connectTo: (address, port) => ({ host: '127.0.0.1', port: ports[address]?.[port] ?? 1 }),
      // The test's own CA stands in for the public ones the proxy container trusts.
      ...(good ? { upstreamTls: { ca: [good.cert, ...(wrong ? [wrong.cert] : [])] } } : {}),
    });
    proxyUrl = `http://127.0.0.1:${await listen(proxy)}`;
  });

  beforeEach(() => {
    seen = [];
    decisions = [];
  });

  after(() => {
    for (const server of servers) {
      (server as http.Server).closeAllConnections?.();
      server.close();
    }
  });

  const call = (url: string, init?: unknown, sideEffect?: 'read' | 'write') =>
    callTool(reader, { url, init }, { env: {}, timeoutMs: 10_000, proxyUrl, ...(sideEffect ? { sideEffect } : {}) });

  test('an https GET goes to the proxy in the clear; the proxy opens TLS upstream and checks the certificate', {
    skip: !good && 'no openssl',
  }, async () => {
    const r = await call('https://example.com/rates?base=USD');
    assert.equal(r.ok, true, JSON.stringify(r.error));
    assert.deepEqual(r.output, { status: 200, body: 'upstream saw GET' });
    assert.deepEqual(seen, ['GET example.com/rates?base=USD']);
    assert.deepEqual(
      decisions.map((d) => [d.decision, d.method, d.httpMethod, d.host, d.port]),
      [['allow', 'HTTP', 'GET', 'example.com', 443]],
    );
  });

  test('an upstream whose certificate is not for the declared name is not reached', { skip: !wrong && 'no openssl' }, async () => {
    const r = await call('https://wrong-cert.example.com/rates');
    assert.equal(r.ok, false);
    assert.match(
      r.error!.message,
      /the egress proxy could not reach it \(HTTP 502\) \(wrong-cert\.example\.com\): upstream: .*(altnames|certificate)/i,
    );
    assert.deepEqual(seen, []);
  });

  test('DELETE is refused by ctx, naming the method and the declared side effect, before the proxy sees it', async () => {
    const r = await call('https://example.com/rates/1', { method: 'DELETE' });
    assert.equal(r.ok, false);
    assert.equal(r.error?.code, 'PERMISSION_DENIED');
    assert.equal(
      r.error!.message,
      "permission denied: DELETE to example.com is not allowed: the tool declares sideEffect 'read', and a read tool may send only GET, HEAD, OPTIONS",
    );
    assert.match(String(r.error!.fix), /declare sideEffect: 'write'/);
    assert.deepEqual(decisions, [], 'the request never left ctx');
    assert.deepEqual(seen, []);
  });

  test('a method-override header asking for DELETE is refused by ctx', async () => {
    const r = await call('http://example.com/rates/1', { method: 'GET', headers: { 'X-HTTP-Method-Override': 'DELETE' } });
    assert.equal(r.error?.code, 'PERMISSION_DENIED');
    assert.match(r.error!.message, /DELETE \(through the x-http-method-override header\) to example\.com is not allowed/);
    assert.deepEqual(seen, []);
  });

  test('a method getter that answers GET to the check and DELETE afterwards sends GET', async () => {
    let reads = 0;
    const init = {
      get method() {
        reads += 1;
        return reads === 1 ? 'GET' : 'DELETE';
      },
    };
    // Passed straight to callTool's tool: zod's z.any() keeps the object as it is.
    const sneaky: LoadedTool = { ...reader, input: { safeParse: (v: unknown) => ({ success: true, data: v }) } };
    const r = await callTool(sneaky, { url: 'http://example.com/x', init }, { env: {}, timeoutMs: 10_000, proxyUrl });
    assert.equal(r.ok, true, JSON.stringify(r.error));
    assert.deepEqual(seen, ['GET example.com/x'], 'what was checked is what was sent');
  });

  test('the approved side effect wins over what the module says of itself', async () => {
    const liar: LoadedTool = { ...reader, sideEffect: 'write' };
    const r = await callTool(
      liar,
      { url: 'http://example.com/x', init: { method: 'POST' } },
      { env: {}, timeoutMs: 10_000, proxyUrl, sideEffect: 'read' },
    );
    assert.equal(r.error?.code, 'PERMISSION_DENIED');
    assert.match(r.error!.message, /POST to example\.com is not allowed: the tool declares sideEffect 'read'/);
  });

  test('a POST that gets past ctx is refused by the proxy, which names the method and the side effect', async () => {
    // The job says write (ctx lets it through), the proxy was started for a read tool.
    const r = await call('http://example.com/rates', { method: 'POST', body: '{}' }, 'write');
    assert.equal(r.ok, false);
    assert.equal(r.error?.code, 'TOOL_THREW');
    assert.match(
      r.error!.message,
      /the egress proxy refused it: POST to example\.com is not allowed: the tool declares sideEffect 'read', and a read tool may send only GET, HEAD, OPTIONS/,
    );
    assert.deepEqual(
      decisions.map((d) => [d.decision, d.httpMethod]),
      [['deny', 'POST']],
    );
    assert.deepEqual(seen, [], 'nothing reached the API');
  });
});

describe('the proxy in the job protocol', () => {
  const job = { mode: 'call', files: {}, entry: 'tool.mjs', limits: { timeoutMs: 1000 } };

  test('the runner accepts only an http://host:port proxy address', () => {
    assert.equal(jobMessageSchema.parse({ ...job, proxyUrl: 'http://172.30.0.2:3128' }).proxyUrl, 'http://172.30.0.2:3128');
    for (const bad of [
      'https://172.30.0.2:3128',
      'http://user:pw@proxy:3128',
      'http://172.30.0.2',
      'http://proxy:3128/path',
      'file:///etc/passwd',
    ]) {
      assert.equal(jobMessageSchema.safeParse({ ...job, proxyUrl: bad }).success, false, bad);
    }
  });

  test('a sandbox job with a proxy must name the network the proxy is on', () => {
    const noNetwork = sandboxJobSchema.safeParse({ ...job, proxyUrl: 'http://172.30.0.2:3128' });
    assert.equal(noNetwork.success, false);
    assert.match(noNetwork.error!.issues[0]!.message, /proxyUrl needs the network the proxy is on/);
    assert.equal(sandboxJobSchema.safeParse({ ...job, proxyUrl: 'http://172.30.0.2:3128', network: 'forge-egress-x' }).success, true);
  });
});
