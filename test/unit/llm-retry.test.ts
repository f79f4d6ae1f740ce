import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import { classifyLlmFailure, retryAfterMs } from '../../domain/llm-retry.ts';
import { type ScriptedModel, startScriptedModel } from '../../scripted-model/server.ts';
import { createLlm } from '../../services/llm/client.ts';
import { failureOf } from '../helpers/failures.ts';

describe('retry classification (pure)', () => {
  const now = new Date('2026-11-22T12:00:00Z');

  it('retries rate limits, overload, timeouts, conflicts and server errors', () => {
    for (const status of [408, 409, 429, 500, 502, 503, 504, 529]) {
      assert.equal(classifyLlmFailure({ status }).retryable, true, `status ${status}`);
    }
    assert.equal(classifyLlmFailure({ status: 529 }).failureType, 'LlmOverloaded');
    assert.equal(classifyLlmFailure({ status: 429 }).failureType, 'LlmRateLimited');
  });

  it('does not retry request errors, and says what to fix', () => {
    for (const status of [400, 401, 403, 404, 413, 422]) {
      assert.equal(classifyLlmFailure({ status }).retryable, false, `status ${status}`);
    }
    assert.match(classifyLlmFailure({ status: 401 }).hint, /ANTHROPIC_API_KEY/);
    assert.match(classifyLlmFailure({ status: 404 }).hint, /FORGE_MODEL/);
    assert.match(classifyLlmFailure({ status: 413 }).hint, /shorten/);
  });

  it('retries when no response came back (connection failure or timeout)', () => {
    assert.deepEqual([classifyLlmFailure({}).failureType, classifyLlmFailure({}).retryable], ['LlmUnreachable', true]);
    assert.equal(classifyLlmFailure({ timedOut: true }).failureType, 'LlmTimeout');
  });

  it('reads retry-after as seconds, as an HTTP date, and prefers retry-after-ms', () => {
    assert.equal(retryAfterMs({ 'retry-after': '7' }, now), 7000);
    assert.equal(retryAfterMs({ 'retry-after': '1.5' }, now), 1500);
    assert.equal(retryAfterMs({ 'retry-after': 'Sun, 22 Nov 2026 12:00:30 GMT' }, now), 30_000);
    assert.equal(retryAfterMs({ 'retry-after': 'Sun, 22 Nov 2026 11:00:00 GMT' }, now), 0, 'a past date means now');
    assert.equal(retryAfterMs({ 'retry-after': '7', 'retry-after-ms': '250' }, now), 250);
    assert.equal(retryAfterMs({ 'retry-after': 'soon' }, now), undefined);
    assert.equal(retryAfterMs({}, now), undefined);
  });

  it('puts the delay only on retryable decisions', () => {
    assert.equal(classifyLlmFailure({ status: 429, headers: { 'retry-after': '3' } }, now).delayMs, 3000);
    assert.equal(classifyLlmFailure({ status: 400, headers: { 'retry-after': '3' } }, now).delayMs, undefined);
  });

  it('lets the x-should-retry header override the status', () => {
    assert.equal(classifyLlmFailure({ status: 400, headers: { 'x-should-retry': 'true' } }).retryable, true);
    const no = classifyLlmFailure({ status: 503, headers: { 'x-should-retry': 'false' } });
    assert.equal(no.retryable, false);
    assert.doesNotMatch(no.hint, /Temporal will retry/);
  });
});

describe('API failures through the real SDK become Temporal failures', () => {
  let model: ScriptedModel;
  const schema = z.object({ ok: z.boolean() });
  const ask = (purpose: string) =>
    createLlm({ baseURL: model.url, model: 'claude-sonnet-4-6' }).structured({
      purpose,
      system: 'static',
      prompt: 'go',
      schema,
      toolName: 'answer',
      toolDescription: 'answer',
    });

  before(async () => {
    model = await startScriptedModel({
      scenarios: [
        {
          name: 'failures',
          rules: [
            {
              match: { purpose: 'rate' },
              responses: [
                { error: { status: 429, message: 'Number of requests has exceeded your rate limit', headers: { 'retry-after': '7' } } },
              ],
            },
            {
              match: { purpose: 'rate_ms' },
              responses: [{ error: { status: 429, message: 'slow down', headers: { 'retry-after-ms': '1234', 'retry-after': '9' } } }],
            },
            { match: { purpose: 'auth' }, responses: [{ error: { status: 401, message: 'invalid x-api-key' } }] },
            { match: { purpose: 'overloaded' }, responses: [{ error: { status: 529, message: 'Overloaded' } }] },
            { match: { purpose: 'server' }, responses: [{ error: { status: 500, message: 'Internal server error' } }] },
            { match: { purpose: 'bad' }, responses: [{ error: { status: 400, message: 'max_tokens: too large' } }] },
          ],
        },
      ],
    });
  });
  after(() => model.close());

  it('429 with retry-after is retryable after the delay the API asked for', async () => {
    const f = await failureOf(ask('rate'));
    assert.equal(f.nonRetryable, false);
    assert.equal(f.type, 'LlmRateLimited');
    assert.equal(f.nextRetryDelay, 7000);
    assert.match(f.message, /429/);
    assert.match(f.message, /rate limit/);
  });

  it('retry-after-ms wins over retry-after', async () => {
    const f = await failureOf(ask('rate_ms'));
    assert.equal(f.nextRetryDelay, 1234);
  });

  it('401 is not retryable and tells the person to check ANTHROPIC_API_KEY', async () => {
    const f = await failureOf(ask('auth'));
    assert.equal(f.nonRetryable, true);
    assert.equal(f.type, 'LlmAuthFailed');
    assert.match(f.message, /ANTHROPIC_API_KEY/);
    assert.match(f.message, /invalid x-api-key/, 'keeps the API message');
  });

  it('529 overloaded and 500 are retryable with the policy backoff', async () => {
    for (const purpose of ['overloaded', 'server']) {
      const f = await failureOf(ask(purpose));
      assert.equal(f.nonRetryable, false, purpose);
      assert.equal(f.nextRetryDelay, undefined, purpose);
    }
  });

  it('400 is not retryable', async () => {
    const f = await failureOf(ask('bad'));
    assert.equal(f.nonRetryable, true);
    assert.equal(f.type, 'LlmRequestInvalid');
    assert.match(f.message, /max_tokens: too large/);
  });

  it('the SDK does not retry on its own: one request per failed call', async () => {
    const before = model.requests.filter((r) => r.headers['x-forge-purpose'] === 'server').length;
    await failureOf(ask('server'));
    const afterCount = model.requests.filter((r) => r.headers['x-forge-purpose'] === 'server').length;
    assert.equal(afterCount - before, 1);
  });

  it('a server that is not there is a retryable LlmUnreachable', async () => {
    const gone = await startScriptedModel({ scenarios: [{ name: 'gone', rules: [{ responses: [{ text: 'x' }] }] }] });
    await gone.close();
    const llm = createLlm({ baseURL: gone.url, model: 'claude-sonnet-4-6' });
    const f = await failureOf(llm.structured({ purpose: 'p', system: 's', prompt: 'p', schema, toolName: 't', toolDescription: 't' }));
    assert.equal(f.nonRetryable, false);
    assert.equal(f.type, 'LlmUnreachable');
  });
});
