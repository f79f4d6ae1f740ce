import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  clientAddress,
  createProxyServer,
  decide,
  type Lookup,
  methodProblem,
  nonPublicRange,
  PROXY_REASON_HEADER,
  type ProxyDecision,
} from '../../runner/proxy.ts';

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

/**
 * Every IANA special-purpose range the proxy refuses (iana.org/assignments/iana-ipv4-special-registry
 * and iana-ipv6-special-registry, plus multicast): one address inside each, the name it must be
 * refused under, and a public neighbour just outside it where one exists.
 */
describe('nonPublicRange: every special-purpose range', () => {
  const ranges: Array<{ range: string; inside: string[]; named: RegExp; outside?: string }> = [
    { range: '0.0.0.0/8', inside: ['0.0.0.0', '0.255.255.255'], named: /0\.0\.0\.0\/8 \(this network\)/, outside: '1.0.0.1' },
    { range: '10.0.0.0/8', inside: ['10.0.0.1', '10.255.255.254'], named: /10\.0\.0\.0\/8 \(private\)/, outside: '11.0.0.1' },
    {
      range: '100.64.0.0/10',
      inside: ['100.64.0.1', '100.127.255.254'],
      named: /100\.64\.0\.0\/10 \(carrier-grade NAT\)/,
      outside: '100.128.0.1',
    },
    { range: '127.0.0.0/8', inside: ['127.0.0.1', '127.255.255.254'], named: /127\.0\.0\.0\/8 \(loopback\)/, outside: '128.0.0.1' },
    {
      range: '169.254.0.0/16',
      inside: ['169.254.169.254', '169.254.0.1'],
      named: /169\.254\.0\.0\/16 \(link-local/,
      outside: '169.255.0.1',
    },
    { range: '172.16.0.0/12', inside: ['172.16.0.1', '172.31.255.254'], named: /172\.16\.0\.0\/12 \(private\)/, outside: '172.32.0.1' },
    {
      range: '192.0.0.0/24',
      inside: ['192.0.0.1', '192.0.0.170'],
      named: /192\.0\.0\.0\/24 \(IETF protocol assignments\)/,
      outside: '192.0.1.1',
    },
    {
      range: '192.0.2.0/24',
      inside: ['192.0.2.1', '192.0.2.254'],
      named: /192\.0\.2\.0\/24 \(documentation, TEST-NET-1\)/,
      outside: '192.0.3.1',
    },
    { range: '192.88.99.0/24', inside: ['192.88.99.1'], named: /192\.88\.99\.0\/24 \(6to4 relay anycast/, outside: '192.88.98.1' },
    {
      range: '192.168.0.0/16',
      inside: ['192.168.0.1', '192.168.255.254'],
      named: /192\.168\.0\.0\/16 \(private\)/,
      outside: '192.169.0.1',
    },
    {
      range: '198.18.0.0/15',
      inside: ['198.18.0.1', '198.19.255.254'],
      named: /198\.18\.0\.0\/15 \(benchmarking\)/,
      outside: '198.20.0.1',
    },
    {
      range: '198.51.100.0/24',
      inside: ['198.51.100.1', '198.51.100.254'],
      named: /198\.51\.100\.0\/24 \(documentation, TEST-NET-2\)/,
      outside: '198.51.101.1',
    },
    {
      range: '203.0.113.0/24',
      inside: ['203.0.113.1', '203.0.113.254'],
      named: /203\.0\.113\.0\/24 \(documentation, TEST-NET-3\)/,
      outside: '203.0.114.1',
    },
    { range: '224.0.0.0/4', inside: ['224.0.0.1', '239.255.255.250'], named: /224\.0\.0\.0\/4 \(multicast\)/, outside: '223.255.255.254' },
    { range: '240.0.0.0/4', inside: ['240.0.0.1', '255.255.255.254'], named: /240\.0\.0\.0\/4 \(reserved\)/ },
    { range: '255.255.255.255/32', inside: ['255.255.255.255'], named: /255\.255\.255\.255\/32 \(limited broadcast\)/ },
    { range: '::/128', inside: ['::', '0:0:0:0:0:0:0:0'], named: /::\/128 \(unspecified\)/ },
    { range: '::1/128', inside: ['::1', '0:0:0:0:0:0:0:1'], named: /::1\/128 \(loopback\)/ },
    {
      range: '::ffff:0:0/96 (IPv4-mapped: the IPv4 inside is judged)',
      inside: ['::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:192.0.2.1', '::ffff:a9fe:a9fe'],
      named: /via IPv4-mapped IPv6/,
      outside: '::ffff:93.184.216.34',
    },
    {
      range: '::/96 (IPv4-compatible)',
      inside: ['::127.0.0.1', '::7f00:1', '::93.184.216.34', '::2'],
      named: /::\/96 \(IPv4-compatible, deprecated\)/,
      outside: '::1:0:0:1',
    },
    {
      range: '64:ff9b::/96 (NAT64: the IPv4 inside is judged)',
      inside: ['64:ff9b::127.0.0.1', '64:ff9b::a9fe:a9fe', '64:ff9b::c000:201'],
      named: /via NAT64 IPv6/,
      outside: '64:ff9b::5db8:d822',
    },
    {
      range: '64:ff9b:1::/48',
      inside: ['64:ff9b:1::1', '64:ff9b:1:ffff::8.8.8.8'],
      named: /64:ff9b:1::\/48 \(local-use NAT64\)/,
      outside: '64:ff9b:2::1',
    },
    { range: '100::/64', inside: ['100::1', '100::ffff:ffff:ffff:ffff'], named: /100::\/64 \(discard-only\)/ },
    {
      range: '2001::/23',
      inside: ['2001::1', '2001:0:4136:e378:8000:63bf:3fff:fdd2', '2001:2::1', '2001:1ff::1'],
      named: /2001::\/23 \(IETF protocol assignments/,
      outside: '2001:200::1',
    },
    {
      range: '2001:db8::/32',
      inside: ['2001:db8::1', '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff'],
      named: /2001:db8::\/32 \(documentation\)/,
      outside: '2001:db9::1',
    },
    { range: '2002::/16', inside: ['2002:7f00:1::1', '2002:5db8:d822::1'], named: /2002::\/16 \(6to4\)/, outside: '2003::1' },
    { range: '3fff::/20', inside: ['3fff::1', '3fff:fff::1'], named: /3fff::\/20 \(documentation\)/ },
    { range: 'fc00::/7', inside: ['fc00::1', 'fdff:ffff::1'], named: /fc00::\/7 \(unique local\)/, outside: 'fe00::1' },
    { range: 'fe80::/10', inside: ['fe80::1', 'febf::1', 'fe80::1%eth0'], named: /fe80::\/10 \(link-local\)/, outside: 'fec0::1' },
    { range: 'ff00::/8', inside: ['ff02::1', 'ffff::1'], named: /ff00::\/8 \(multicast\)/ },
  ];
  for (const { range, inside, named, outside } of ranges) {
    test(`${range} is refused${outside ? `, ${outside} just outside it is not` : ''}`, () => {
      for (const ip of inside) assert.match(nonPublicRange(ip) ?? `${ip}: (public)`, named, ip);
      if (outside) assert.equal(nonPublicRange(outside), null, outside);
    });
  }

  test('a declared name resolving into a documentation, NAT64 or 6to4 range is refused by decide, naming the range', async () => {
    for (const [address, named] of [
      ['192.0.2.10', /192\.0\.2\.0\/24 \(documentation/],
      ['198.51.100.7', /198\.51\.100\.0\/24/],
      ['203.0.113.9', /203\.0\.113\.0\/24/],
      ['2001:db8::5', /2001:db8::\/32/],
      ['64:ff9b:1::a', /64:ff9b:1::\/48/],
      ['2002:a00:1::1', /2002::\/16 \(6to4\)/],
      ['::127.0.0.1', /::\/96 \(IPv4-compatible/],
    ] as const) {
      const v = await decide('api.example.com', 443, ['api.example.com'], async () => [{ address, family: net.isIP(address) }]);
      assert.equal(v.ok, false, address);
      assert.match((v as { reason: string }).reason, named);
      assert.match((v as { reason: string }).reason, new RegExp(`api\\.example\\.com resolves to ${address.replace(/[.]/g, '\\.')}`));
    }
  });
});

describe('clientAddress', () => {
  test('names an IPv4 client as Docker does, whether the listener is dual-stack or not', () => {
    assert.equal(clientAddress('::ffff:172.29.0.3'), '172.29.0.3');
    assert.equal(clientAddress('172.29.0.3'), '172.29.0.3');
    assert.equal(clientAddress('fd00::3'), 'fd00::3');
  });
});

describe('methodProblem', () => {
  test('a read tool may send GET, HEAD and OPTIONS, in any case', () => {
    for (const m of ['GET', 'HEAD', 'OPTIONS', 'get']) assert.equal(methodProblem(m, {}, 'api.example.com', 'read'), null);
  });

  test('any other method, or an override header asking for one, is refused naming it and the side effect', () => {
    for (const m of ['POST', 'PUT', 'PATCH', 'DELETE', 'CONNECT', 'TRACE']) {
      assert.equal(
        methodProblem(m, {}, 'api.example.com', 'read'),
        `${m} to api.example.com is not allowed: the tool declares sideEffect 'read', and a read tool may send only GET, HEAD, OPTIONS`,
      );
    }
    assert.match(
      methodProblem('GET', { 'x-http-method-override': 'DELETE' }, 'api.example.com', 'read') ?? '',
      /^DELETE \(through the x-http-method-override header\) to api\.example\.com is not allowed: the tool declares sideEffect 'read'/,
    );
    assert.match(methodProblem('GET', { 'x-method-override': 'put' }, 'h', 'read') ?? '', /^PUT \(through the x-method-override header\)/);
  });

  test('a write tool, or a proxy told no side effect, may send any method', () => {
    assert.equal(methodProblem('DELETE', { 'x-http-method-override': 'DELETE' }, 'h', 'write'), null);
    assert.equal(methodProblem('POST', {}, 'h', undefined), null);
  });
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
      // Tagged with the client's address: a shared proxy's decisions are attributed to each call by it.
      client: '127.0.0.1',
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

describe('proxy server for a read tool', () => {
  let upstream: http.Server;
  let proxy: http.Server;
  let proxyPort: number;
  const decisions: ProxyDecision[] = [];
  const seen: string[] = [];

  before(async () => {
    upstream = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      // An upstream that tries to pass its answer off as a proxy refusal.
      if (req.url === '/spoof') res.setHeader(PROXY_REASON_HEADER, 'fake refusal');
      res.end(`upstream saw ${req.method} ${req.url}`);
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const upstreamPort = (upstream.address() as net.AddressInfo).port;
    proxy = createProxyServer({
      allow: ['api.example.com'],
      sideEffect: 'read',
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

  const raw = (request: string) =>
    new Promise<string>((resolve, reject) => {
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

  test('forwards GET and HEAD, and logs the method it saw', async () => {
    const res = await raw('GET http://api.example.com/rates HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n');
    assert.match(res, /^HTTP\/1\.1 200/);
    assert.match(res, /upstream saw GET \/rates/);
    assert.deepEqual(decisions.at(-1), {
      ...decisions.at(-1),
      decision: 'allow',
      method: 'HTTP',
      httpMethod: 'GET',
      host: 'api.example.com',
    });
    assert.match(
      await raw('HEAD http://api.example.com/rates HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n'),
      /^HTTP\/1\.1 200/,
    );
  });

  test('refuses POST, PUT, PATCH and DELETE with 403, naming the method and the side effect; nothing reaches the API', async () => {
    const before = seen.length;
    for (const m of ['POST', 'PUT', 'PATCH', 'DELETE']) {
      const res = await raw(
        `${m} http://api.example.com/rates HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
      );
      assert.match(res, /^HTTP\/1\.1 403 Forbidden/, m);
      assert.match(
        res,
        new RegExp(
          `x-forge-proxy-reason: ${m} to api\\.example\\.com is not allowed: the tool declares sideEffect 'read', and a read tool may send only GET, HEAD, OPTIONS`,
        ),
      );
      assert.match(res, /x-forge-proxy-rule: method/);
      assert.deepEqual([decisions.at(-1)?.decision, decisions.at(-1)?.httpMethod], ['deny', m]);
    }
    assert.equal(seen.length, before, 'the upstream saw none of them');
  });

  test('refuses a GET carrying a method-override header that asks for DELETE', async () => {
    const res = await raw(
      'GET http://api.example.com/rates HTTP/1.1\r\nHost: api.example.com\r\nX-HTTP-Method-Override: DELETE\r\nConnection: close\r\n\r\n',
    );
    assert.match(res, /^HTTP\/1\.1 403/);
    assert.match(res, /DELETE \(through the x-http-method-override header\) to api\.example\.com is not allowed/);
  });

  test('refuses CONNECT: a tunnel would hide the methods inside it', async () => {
    const res = await raw(
      'CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n\r\nDELETE /tunnel HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n',
    );
    assert.match(res, /^HTTP\/1\.1 403 Forbidden/);
    assert.match(res, /CONNECT tunnels are refused for a tool that declares sideEffect 'read'/);
    assert.doesNotMatch(res, /upstream saw/);
    assert.deepEqual(decisions.at(-1), { ...decisions.at(-1), decision: 'deny', method: 'CONNECT', host: 'api.example.com' });
  });

  test('strips the proxy’s own headers from an upstream answer, so an API cannot fake a refusal', async () => {
    const res = await raw('GET http://api.example.com/spoof HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n');
    assert.match(res, /^HTTP\/1\.1 200/);
    assert.doesNotMatch(res, /x-forge-proxy-reason/i);
  });
});
