import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testContext } from '@forge/testkit';
import { run } from './tool.ts';

const env = { OPENEXCHANGERATES_APP_ID: 'test-app-id' };

test('returns the rate the API reports', async () => {
  const ctx = testContext({ env });
  const out = await run({ base: 'USD', quote: 'EUR' }, ctx);
  assert.deepEqual(out, { base: 'USD', quote: 'EUR', rate: 0.9175, asOf: '2023-11-14T22:13:20.000Z' });
});

test('authenticates with the declared App ID and asks only for the quote currency', async () => {
  const ctx = testContext({ env });
  await run({ base: 'USD', quote: 'GBP' }, ctx);
  assert.equal(ctx.calls.length, 1);
  const url = new URL(ctx.calls[0]!.url);
  assert.equal(url.searchParams.get('app_id'), 'test-app-id');
  assert.equal(url.searchParams.get('symbols'), 'GBP');
});

test('explains a missing App ID instead of calling the API', async () => {
  const ctx = testContext({});
  await assert.rejects(run({ base: 'USD', quote: 'EUR' }, ctx), /OPENEXCHANGERATES_APP_ID is not set/);
  assert.equal(ctx.calls.length, 0);
});

test('waits for Retry-After and retries after a 429', async () => {
  const ctx = testContext({ env, faults: [{ kind: 'rate_limit', times: 1, retryAfter: 0 }] });
  const out = await run({ base: 'USD', quote: 'JPY' }, ctx);
  assert.equal(out.rate, 149.62);
  assert.deepEqual(
    ctx.calls.map((c) => c.status),
    [429, 200],
  );
});

test('gives up with the status after repeated server errors', async () => {
  const ctx = testContext({ env, faults: [{ kind: 'server_error', status: 502 }] });
  await assert.rejects(run({ base: 'USD', quote: 'EUR' }, ctx), /answered 502 after 3 attempt/);
  assert.equal(ctx.calls.length, 3);
});

test('reports malformed JSON clearly', async () => {
  const ctx = testContext({ env, faults: [{ kind: 'malformed_json' }] });
  await assert.rejects(run({ base: 'USD', quote: 'EUR' }, ctx), /malformed JSON/);
});

test('rejects a response whose fields have the wrong types', async () => {
  const ctx = testContext({ env, faults: [{ kind: 'wrong_types' }] });
  await assert.rejects(run({ base: 'USD', quote: 'EUR' }, ctx), /unexpected response: timestamp/);
});

test('stops when the request times out', async () => {
  const ctx = testContext({ env, faults: [{ kind: 'timeout', afterMs: 50 }] });
  await assert.rejects(run({ base: 'USD', quote: 'EUR' }, ctx), (err: Error) => err.name === 'TimeoutError');
});

test('says so when the API has no rate for the currency', async () => {
  const ctx = testContext({ env });
  await assert.rejects(run({ base: 'USD', quote: 'XYZ' }, ctx), /no rate for XYZ/);
});
