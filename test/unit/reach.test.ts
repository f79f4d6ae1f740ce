import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Lookup } from '../../runner/proxy.ts';
import { checkReach } from '../../runner/reach.ts';

// The judge's own "can this machine reach the API?" (runner/reach.ts): an environment fault
// (no DNS, nothing answers) is told apart from what the proxy refuses on the tool's account.
describe('checkReach', () => {
  const table: Record<string, string[]> = {
    'api.example.com': ['93.184.216.34'],
    'inside.example.com': ['10.0.0.8'],
    'empty.example.com': [],
  };
  const lookup: Lookup = async (host) => {
    const list = table[host];
    if (!list) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return list.map((address) => ({ address, family: net.isIP(address) }));
  };
  const allow = ['api.example.com', 'inside.example.com', 'empty.example.com', 'offline.example.com'];
  let server: net.Server;
  let openPort: number;
  let closedPort: number;

  before(async () => {
    server = net.createServer((s) => {
      s.on('error', () => undefined);
      s.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    openPort = (server.address() as net.AddressInfo).port;
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    closedPort = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
  });
  after(() => server.close());

  // The public address the name resolves to stands in for a local port, as in the proxy's tests.
  const via = (port: number) => ({ lookup, connectTo: () => ({ host: '127.0.0.1', port }) });

  test('a declared name that resolves and answers is reachable', async () => {
    assert.deepEqual(await checkReach('api.example.com', 443, allow, via(openPort)), { status: 'reachable', address: '93.184.216.34' });
  });

  test('a name that does not resolve is the environment, with the DNS answer in the reason', async () => {
    const reach = await checkReach('offline.example.com', 443, allow, via(openPort));
    assert.equal(reach.status, 'unreachable');
    assert.match(
      (reach as { reason: string }).reason,
      /^offline\.example\.com could not be resolved from this machine \(offline\? DNS: ENOTFOUND\)$/,
    );
    const empty = await checkReach('empty.example.com', 443, allow, via(openPort));
    assert.deepEqual(empty, {
      status: 'unreachable',
      reason: 'empty.example.com could not be resolved from this machine (offline? DNS: no addresses)',
    });
  });

  test('an address that refuses or does not answer is the environment too', async () => {
    const refused = await checkReach('api.example.com', 443, allow, via(closedPort));
    assert.equal(refused.status, 'unreachable');
    assert.match(
      (refused as { reason: string }).reason,
      /api\.example\.com:443 \(93\.184\.216\.34\) could not be reached from this machine: ECONNREFUSED/,
    );
    // An address nothing answers from: the connect times out (or the network says so first).
    const silent = await checkReach('api.example.com', 443, allow, {
      lookup,
      connectTo: () => ({ host: '192.0.2.1', port: 9 }),
      connectTimeoutMs: 200,
    });
    assert.equal(silent.status, 'unreachable');
    assert.match((silent as { reason: string }).reason, /could not be reached from this machine: (no answer within 200 ms|E\w+)/);
  });

  test('for an https API, an answer that is not its TLS (a captive portal, an interceptor) is the environment', async () => {
    const plain = net.createServer((sock) => {
      sock.on('error', () => undefined); // the check hangs up abruptly
      sock.end('HTTP/1.1 302 Found\r\nLocation: http://portal.example/\r\n\r\n');
    });
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    try {
      const port = (plain.address() as net.AddressInfo).port;
      assert.equal((await checkReach('api.example.com', 443, allow, via(port))).status, 'reachable', 'TCP alone answers');
      const reach = await checkReach('api.example.com', 443, allow, { ...via(port), tls: true });
      assert.equal(reach.status, 'unreachable');
      assert.match(
        (reach as { reason: string }).reason,
        /^api\.example\.com:443 \(93\.184\.216\.34\) answered, but not with the API's TLS: /,
      );
    } finally {
      plain.close();
    }
  });

  test('what the proxy refuses is a verdict on the tool, not an environment fault', async () => {
    const inside = await checkReach('inside.example.com', 443, allow, via(openPort));
    assert.equal(inside.status, 'refused');
    assert.match((inside as { reason: string }).reason, /resolves to 10\.0\.0\.8 in 10\.0\.0\.0\/8 \(private\)/);
    assert.equal((await checkReach('evil.example.net', 443, allow, via(openPort))).status, 'refused');
    assert.equal((await checkReach('api.example.com', 8443, allow, via(openPort))).status, 'refused');
  });
});
