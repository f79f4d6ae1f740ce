import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type ApiSpec, apiSpecSchema } from '../../domain/tool.ts';
import { configureTestkit, synthesize, testContext, wrongTypes } from '../../runner/testkit.ts';

const spec: ApiSpec = apiSpecSchema.parse({
  baseUrl: 'https://api.example.com/v2',
  auth: { kind: 'bearer', envVar: 'EXAMPLE_TOKEN' },
  endpoints: [
    {
      id: 'getZone',
      method: 'GET',
      path: '/zones/{zoneId}',
      response: { type: 'object', properties: { id: { type: 'string' }, ttl: { type: 'integer', minimum: 60 } } },
      example: { id: 'z1', ttl: 300, records: [{ name: 'www', ok: true }] },
    },
    {
      id: 'listZones',
      method: 'GET',
      path: '/zones',
      response: {
        type: 'object',
        properties: { zones: { type: 'array', items: { $ref: '#/$defs/zone' } }, updated: { type: 'string', format: 'date-time' } },
        $defs: { zone: { type: 'object', properties: { name: { type: 'string', enum: ['example.com'] } } } },
      },
    },
  ],
});

const permissions = { network: ['api.example.com'], env: ['EXAMPLE_TOKEN'] };
const auth = { headers: { authorization: 'Bearer secret-1' } };
const env = { EXAMPLE_TOKEN: 'secret-1' };

describe('testkit mock API', () => {
  test("serves the endpoint's example, with path parameters matched", async () => {
    const ctx = testContext({ apiSpec: spec, permissions, env });
    const res = await ctx.fetch('https://api.example.com/v2/zones/z1', auth);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { id: 'z1', ttl: 300, records: [{ name: 'www', ok: true }] });
    assert.deepEqual(
      ctx.calls.map((c) => [c.method, c.endpoint, c.status]),
      [['GET', 'getZone', 200]],
    );
  });

  test('synthesizes a body from the response schema when there is no example', async () => {
    const ctx = testContext({ apiSpec: spec, permissions, env });
    const res = await ctx.fetch('https://api.example.com/v2/zones', auth);
    assert.deepEqual(await res.json(), { zones: [{ name: 'example.com' }], updated: '2024-01-02T03:04:05Z' });
    assert.deepEqual(
      synthesize({ type: 'object', properties: { n: { type: 'integer', minimum: 60 }, s: { type: 'string', minLength: 8 } } }),
      { n: 60, s: 'samplexx' },
    );
  });

  test('answers 401 unless the request carries the declared secret', async () => {
    const ctx = testContext({ apiSpec: spec, permissions, env });
    const missing = await ctx.fetch('https://api.example.com/v2/zones/z1');
    assert.equal(missing.status, 401);
    assert.match(((await missing.json()) as { message: string }).message, /Bearer <EXAMPLE_TOKEN>/);
    const wrong = await ctx.fetch('https://api.example.com/v2/zones/z1', { headers: { authorization: 'Bearer guess' } });
    assert.equal(wrong.status, 401);
    const noEnv = testContext({ apiSpec: spec, permissions });
    const res = await noEnv.fetch('https://api.example.com/v2/zones/z1', { headers: { authorization: 'Bearer undefined' } });
    assert.equal(res.status, 401);
    assert.match(((await res.json()) as { message: string }).message, /needs EXAMPLE_TOKEN/);
  });

  test('enforces query and header auth as the spec says', async () => {
    const query = { ...spec, auth: { kind: 'query' as const, name: 'key', envVar: 'EXAMPLE_TOKEN' } };
    const q = testContext({ apiSpec: query, permissions, env });
    assert.equal((await q.fetch('https://api.example.com/v2/zones/z1?key=secret-1')).status, 200);
    assert.equal((await q.fetch('https://api.example.com/v2/zones/z1?key=nope')).status, 401);
    const header = { ...spec, auth: { kind: 'header' as const, name: 'X-Auth-Token', envVar: 'EXAMPLE_TOKEN' } };
    const h = testContext({ apiSpec: header, permissions, env });
    assert.equal((await h.fetch('https://api.example.com/v2/zones/z1', { headers: { 'x-auth-token': 'secret-1' } })).status, 200);
    assert.equal((await h.fetch('https://api.example.com/v2/zones/z1')).status, 401);
  });

  test('unknown paths are 404 and wrong methods 405, both with a reason', async () => {
    const ctx = testContext({ apiSpec: spec, permissions, env });
    const nf = await ctx.fetch('https://api.example.com/v2/records', auth);
    assert.equal(nf.status, 404);
    assert.match(((await nf.json()) as { message: string }).message, /no endpoint GET \/records/);
    assert.equal((await ctx.fetch('https://api.example.com/v2/zones/z1', { ...auth, method: 'DELETE' })).status, 405);
  });

  test('routes override the example for one endpoint', async () => {
    const ctx = testContext({
      apiSpec: spec,
      permissions,
      env,
      routes: { getZone: (req) => ({ status: 404, body: { missing: req.params.zoneId } }) },
    });
    const res = await ctx.fetch('https://api.example.com/v2/zones/zz', auth);
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), { missing: 'zz' });
  });
});

describe('testkit faults', () => {
  test('rate_limit: 429 with Retry-After, for `times` requests, then normal', async () => {
    const ctx = testContext({ apiSpec: spec, permissions, env, faults: [{ kind: 'rate_limit', times: 2, retryAfter: 3 }] });
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 3; i++) {
      const res = await ctx.fetch('https://api.example.com/v2/zones/z1', auth);
      statuses.push(res.status);
      retryAfter ??= res.headers.get('retry-after');
    }
    assert.deepEqual(statuses, [429, 429, 200]);
    assert.equal(retryAfter, '3');
    assert.deepEqual(
      ctx.calls.map((c) => c.fault ?? null),
      ['rate_limit', 'rate_limit', null],
    );
  });

  test('faults can target one endpoint by id or by METHOD /path', async () => {
    const ctx = testContext({ apiSpec: spec, permissions, env, faults: [{ endpoint: 'GET /zones', kind: 'server_error', status: 502 }] });
    assert.equal((await ctx.fetch('https://api.example.com/v2/zones/z1', auth)).status, 200);
    assert.equal((await ctx.fetch('https://api.example.com/v2/zones', auth)).status, 502);
    const byId = testContext({ apiSpec: spec, permissions, env, faults: [{ endpoint: 'getZone', kind: 'server_error' }] });
    assert.equal((await byId.fetch('https://api.example.com/v2/zones/z1', auth)).status, 503);
  });

  test('malformed_json: a 200 whose body does not parse', async () => {
    const ctx = testContext({ apiSpec: spec, permissions, env, faults: [{ kind: 'malformed_json' }] });
    const res = await ctx.fetch('https://api.example.com/v2/zones/z1', auth);
    assert.equal(res.status, 200);
    await assert.rejects(res.json(), SyntaxError);
  });

  test('wrong_types: the same shape with every field of the wrong type', async () => {
    const ctx = testContext({ apiSpec: spec, permissions, env, faults: [{ kind: 'wrong_types' }] });
    const body = await (await ctx.fetch('https://api.example.com/v2/zones/z1', auth)).json();
    assert.deepEqual(body, { id: 404, ttl: '300', records: [{ name: 404, ok: 'yes' }] });
    assert.deepEqual(wrongTypes([1, 'a', null]), ['1', 404, 0]);
  });

  test('timeout: hangs until the caller aborts, or rejects with a TimeoutError', async () => {
    const ctx = testContext({ apiSpec: spec, permissions, env, faults: [{ kind: 'timeout', afterMs: 30 }] });
    const started = performance.now();
    await assert.rejects(ctx.fetch('https://api.example.com/v2/zones/z1', auth), (err: Error) => err.name === 'TimeoutError');
    assert.ok(performance.now() - started >= 25);
    const long = testContext({ apiSpec: spec, permissions, env, faults: [{ kind: 'timeout', afterMs: 60_000 }] });
    const controller = new AbortController();
    const pending = long.fetch('https://api.example.com/v2/zones/z1', { ...auth, signal: controller.signal });
    controller.abort(new Error('caller gave up'));
    await assert.rejects(pending, /caller gave up/);
    assert.equal(long.calls[0]?.status, null);
  });

  test('ctx.signal aborts a hanging request, as the job budget does', async () => {
    const ctx = testContext({ apiSpec: spec, permissions, env, faults: [{ kind: 'timeout', afterMs: 60_000 }] });
    const pending = ctx.fetch('https://api.example.com/v2/zones/z1', auth);
    ctx.abort(new Error('budget spent'));
    await assert.rejects(pending, /budget spent/);
  });
});

describe('testkit permissions', () => {
  test('ctx.fetch refuses undeclared domains, exactly like production', async () => {
    const ctx = testContext({ apiSpec: spec, permissions, env });
    await assert.rejects(ctx.fetch('https://evil.example.net/x'), /permission denied: network access to "evil\.example\.net"/);
    assert.equal(ctx.calls.length, 0);
    assert.equal(ctx.denied[0]?.url, 'https://evil.example.net/x');
  });

  test('a read tool may only GET, HEAD and OPTIONS: DELETE is refused naming the method and the side effect', async () => {
    const ctx = testContext({ apiSpec: spec, permissions, env, sideEffect: 'read' });
    await assert.rejects(
      ctx.fetch('https://api.example.com/v2/zones/z1', { ...auth, method: 'DELETE' }),
      /permission denied: DELETE to api\.example\.com is not allowed: the tool declares sideEffect 'read', and a read tool may send only GET, HEAD, OPTIONS/,
    );
    await assert.rejects(
      ctx.fetch('https://api.example.com/v2/zones/z1', { headers: { ...auth.headers, 'x-http-method-override': 'PATCH' } }),
      /PATCH \(through the x-http-method-override header\)/,
    );
    assert.equal(ctx.calls.length, 0, 'the mock API saw neither');
    assert.equal(ctx.denied.length, 2);
    assert.equal((await ctx.fetch('https://api.example.com/v2/zones/z1', auth)).status, 200);
  });

  test("under verification the manifest's side effect wins: a test cannot loosen it", async () => {
    configureTestkit({ apiSpec: spec, permissions, sideEffect: 'read' });
    try {
      const ctx = testContext({ env, sideEffect: 'write' });
      await assert.rejects(
        ctx.fetch('https://api.example.com/v2/zones/z1', { ...auth, method: 'POST' }),
        /POST to api\.example\.com is not allowed/,
      );
      assert.equal(ctx.calls.length, 0);
    } finally {
      configureTestkit({});
    }
  });

  test('ctx.env shows only declared variables', () => {
    const ctx = testContext({ apiSpec: spec, permissions, env: { EXAMPLE_TOKEN: 't', HOME_SECRET: 'x' } });
    assert.deepEqual({ ...ctx.env }, { EXAMPLE_TOKEN: 't' });
  });

  test('ctx.log is recorded', () => {
    const ctx = testContext({ apiSpec: spec, permissions });
    ctx.log.warn('slow', { ms: 5 });
    assert.deepEqual(
      ctx.logs.map((l) => [l.level, l.msg, l.fields]),
      [['warn', 'slow', { ms: 5 }]],
    );
  });
});
