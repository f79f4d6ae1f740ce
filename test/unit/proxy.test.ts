import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createProxyServer, decide, type Lookup, nonPublicRange, type ProxyDecision } from '../../runner/proxy.ts';

describe('nonPublicRange', () => {
  const cases: Array<[string, RegExp | null]> = [
    ['10.0.0.1', /10\.0\.0\.0\/8/],
    ['172.16.5.4', /172\.16\.0\.0\/12/],
    ['172.31.255.255', /172\.16\.0\.0\/12/],
    ['172.32.0.1', null],
    ['192.168.1.1', /192\.168\.0\.0\/16/],
    ['127.0.0.1', /loopback/],
    ['169.254.169.254', /link-local/],
    ['0.0.0.0', /this network/],
    ['100.64.0.1', /carrier-grade NAT/],
    ['93.184.216.34', null],
    ['8.8.8.8', null],
    ['::1', /loopback/],
    ['::', /unspecified/],
    ['fc00::1', /unique local/],
    ['fd12:3456::1', /unique local/],
    ['fe80::1', /link-local/],
    ['febf::1', /link-local/],
    ['fec0::1', null],
    ['::ffff:127.0.0.1', /loopback.*IPv4-mapped/],
    ['::ffff:10.1.2.3', /10\.0\.0\.0\/8.*IPv4-mapped/],
    ['64:ff9b::a9fe:a9fe', /link-local.*NAT64/],
    ['2606:2800:220:1:248:1893:25c8:1946', null],
  ];
  for (const [ip, expected] of cases) {
    test(`${ip} → ${expected ?? 'public'}`, () => {
      const got = nonPublicRange(ip);
      if (expected === null) assert.equal(got, null);
      else assert.match(got ?? '(public)', expected);
    });
  }
});

describe('decide', () => {
  const table: Record<string, string[]> = {
    'api.example.com': ['93.184.216.34'],
    'eu.api.example.com': ['93.184.216.35'],
    'sneaky.example.com': ['93.184.216.34', '10.0.0.8'],
    'v6only.example.com': ['::1'],
  };
  const lookup: Lookup = async (host) => {
    const list = table[host];
    if (!list) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    return list.map((address) => ({ address, family: net.isIP(address) }));
  };
  const allow = ['api.example.com', '*.api.example.com', 'sneaky.example.com', 'v6only.example.com', 'missing.example.com'];

  test('allows a declared domain with public addresses, and says where to connect', async () => {
    assert.deepEqual(await decide('api.example.com', 443, allow, lookup), { ok: true, address: '93.184.216.34' });
    assert.deepEqual(await decide('eu.api.example.com', 80, allow, lookup), { ok: true, address: '93.184.216.35' });
  });

  test('refuses undeclared domains, other ports and raw IPs with a reason', async () => {
    assert.deepEqual(await decide('evil.example.net', 443, allow, lookup), {
      ok: false,
      status: 403,
      reason: `evil.example.net is not a declared domain of this tool (declared: ${allow.join(', ')})`,
    });
    assert.match(((await decide('api.example.com', 8443, allow, lookup)) as { reason: string }).reason, /port 8443 is not allowed/);
    assert.match(
      ((await decide('93.184.216.34', 443, allow, lookup)) as { reason: string }).reason,
      /is an IP address, not a declared domain/,
    );
    assert.match(((await decide('[::1]', 443, allow, lookup)) as { reason: string }).reason, /::1\/128 \(loopback\)/);
  });

  test('refuses a declared name when any of its addresses is private', async () => {
    const v = await decide('sneaky.example.com', 443, allow, lookup);
    assert.deepEqual(v, {
      ok: false,
      status: 403,
      reason: 'sneaky.example.com resolves to 10.0.0.8 in 10.0.0.0/8 (private): private, loopback and link-local destinations are refused',
    });
    assert.match(((await decide('v6only.example.com', 443, allow, lookup)) as { reason: string }).reason, /loopback/);
  });

  test('a name that does not resolve is a 502, not a refusal', async () => {
    assert.deepEqual(await decide('missing.example.com', 443, allow, lookup), {
      ok: false,
      status: 502,
      reason: 'could not resolve missing.example.com: ENOTFOUND',
    });
  });
});

describe('proxy server', () => {
  let upstream: http.Server;
  let proxy: http.Server;
  let proxyPort: number;
  let upstreamPort: number;
  const decisions: ProxyDecision[] = [];

  before(async () => {
    upstream = http.createServer((req, res) => res.end(`upstream saw ${req.method} ${req.url} host=${req.headers.host}`));
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    upstreamPort = (upstream.address() as net.AddressInfo).port;
    // The test upstream is on loopback; connectTo stands in for the public address the proxy resolved.
    proxy = createProxyServer({
      allow: ['api.example.com'],
      lookup: async () => [{ address: '93.184.216.34', family: 4 }],
      log: (d) => decisions.push(d),
      connectTo: () => ({ host: '127.0.0.1', port: upstreamPort }),
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    proxyPort = (proxy.address() as net.AddressInfo).port;
  });

  after(() => {
    proxy.close();
    upstream.close();
  });

  function raw(request: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const s = net.connect(proxyPort, '127.0.0.1', () => s.write(request));
      let got = '';
      s.on('data', (d) => (got += d));
      s.on('end', () => resolve(got));
      s.on('error', reject);
      setTimeout(() => {
        s.destroy();
        resolve(got);
      }, 1000);
    });
  }

  test('forwards plain HTTP to a declared domain, with the original Host', async () => {
    const res = await raw(
      'GET http://api.example.com/latest?x=1 HTTP/1.1\r\nHost: api.example.com\r\nProxy-Connection: keep-alive\r\nConnection: close\r\n\r\n',
    );
    assert.match(res, /^HTTP\/1\.1 200/);
    assert.match(res, /upstream saw GET \/latest\?x=1 host=api\.example\.com/);
    assert.deepEqual(decisions.at(-1), {
      ...decisions.at(-1),
      decision: 'allow',
      method: 'HTTP',
      host: 'api.example.com',
      port: 80,
      address: '93.184.216.34',
    });
  });

  test('tunnels CONNECT to a declared domain', async () => {
    const res = await raw(
      'CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n\r\nGET /tunnel HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n',
    );
    assert.match(res, /^HTTP\/1\.1 200 Connection Established/);
    assert.match(res, /upstream saw GET \/tunnel/);
  });

  test('refuses an undeclared domain with 403 and the reason in a header and the body', async () => {
    const res = await raw('CONNECT evil.example.net:443 HTTP/1.1\r\nHost: evil.example.net:443\r\n\r\n');
    assert.match(res, /^HTTP\/1\.1 403 Forbidden/);
    assert.match(res, /x-forge-proxy-reason: evil\.example\.net is not a declared domain/);
    assert.match(res, /forge egress proxy: evil\.example\.net is not a declared domain/);
    assert.equal(decisions.at(-1)?.decision, 'deny');
  });

  test('answers 400 to a request that is not a proxy request', async () => {
    const res = await raw('GET /direct HTTP/1.1\r\nHost: whatever\r\nConnection: close\r\n\r\n');
    assert.match(res, /^HTTP\/1\.1 400/);
  });
});
