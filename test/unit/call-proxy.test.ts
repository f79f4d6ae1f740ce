/**
 * The runner's call mode with an egress proxy, without Docker or internet: an in-process
 * proxy (runner/proxy.ts) with a fake resolver and a test upstream. ctx refuses undeclared
 * domains before the proxy sees anything; declared ones go through the proxy, which still
 * refuses private destinations.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
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
    assert.deepEqual(
      decisions.map((d) => [d.decision, d.method, d.host]),
      [['deny', 'CONNECT', 'inside.example.com']],
    );
    assert.match(decisions[0]!.reason!, /inside\.example\.com resolves to 10\.20\.30\.40 in 10\.0\.0\.0\/8 \(private\)/);
    assert.deepEqual(seenByUpstream, []);
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
