import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  evaluateQuality,
  evaluationDue,
  groupErrors,
  normaliseError,
  type QualityCall,
  type QualityPolicy,
  qualityPolicySchema,
} from '../../domain/quality.ts';
import { harness } from '../../harness/index.ts';

const policy: QualityPolicy = harness.policy.quality;
const ok = (latencyMs: number): QualityCall => ({ success: true, latencyMs });
const fail = (error: string, latencyMs = 100): QualityCall => ({ success: false, latencyMs, error });
const times = <T>(n: number, make: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => make(i));

describe('quality policy', () => {
  it('seeds the defaults of seed 001 and stays within its bounds', () => {
    assert.deepEqual(qualityPolicySchema.parse(policy), policy);
    assert.deepEqual(policy.weights, { successRate: 0.5, latency: 0.3, consistency: 0.2 });
    assert.deepEqual(policy.latency, { targetMs: 1000, ceilingMs: 5000 });
    assert.equal(policy.rewriteBelow, 0.6);
    assert.equal(policy.minCalls, 3);
    assert.equal(policy.window, 20);
    assert.equal(policy.evaluateEvery, 5);
  });

  it('refuses values that would mean nothing or cost money', () => {
    const bad = (patch: Record<string, unknown>) => qualityPolicySchema.safeParse({ ...policy, ...patch }).success;
    assert.equal(bad({ weights: { successRate: 0.5, latency: 0.5, consistency: 0.2 } }), false, 'weights must add up to 1');
    assert.equal(bad({ latency: { targetMs: 5000, ceilingMs: 5000 } }), false, 'the ceiling must be above the target');
    assert.equal(bad({ minCalls: 2 }), false, 'no verdict on fewer than 3 calls');
    assert.equal(bad({ minCalls: 30, window: 20 }), false, 'a window smaller than minCalls never decides');
    assert.equal(bad({ rewriteBelow: 0.95 }), false, 'a threshold near 1 rewrites sound tools');
    assert.equal(bad({ evaluateEvery: 0 }), false);
    assert.equal(bad({ extra: 1 }), false, 'unknown keys are refused');
    assert.equal(bad({ rewriteBelow: 0.7 }), true);
  });
});

describe('evaluateQuality', () => {
  it('a fast, reliable tool is healthy with a full score', () => {
    const e = evaluateQuality(
      times(20, () => ok(200)),
      policy,
    );
    assert.equal(e.score, 1);
    assert.deepEqual(e.components, { successRate: 1, latency: 1, consistency: 1 });
    assert.equal(e.verdict, 'healthy');
    assert.equal(e.reason, 'Healthy: 100 % success, avg 200 ms over the last 20 calls');
    assert.deepEqual(e.errors, []);
  });

  it('names the failure rate and the grouped errors, most frequent first', () => {
    // newest first: 6 slow successes, three 429s (written three ways), one timeout
    const calls = [
      ...times(3, () => ok(2500)),
      fail('Error: 429 Too Many Requests', 50),
      ok(2500),
      fail('429 Too Many Requests', 50),
      ok(2500),
      fail('timeout after 4000 ms', 4000),
      fail('HTTPError: 429 Too Many Requests', 50),
      ok(2500),
    ];
    const e = evaluateQuality(calls, policy);
    assert.equal(e.verdict, 'rewrite');
    // success 0.6; avg 1915 ms → latency 1 − 915/4000; spread 3950 ms over 3 × 1915 → consistency 0.312
    assert.deepEqual(e.components, { successRate: 0.6, latency: 0.771, consistency: 0.312 });
    assert.equal(e.score, 0.594);
    assert.equal(
      e.reason,
      'High failure rate (40 %): 429 Too Many Requests ×3, timeout after 4000 ms ×1; Inconsistent latency (50 ms to 4000 ms)',
    );
    assert.deepEqual(e.errors, [
      { message: '429 Too Many Requests', count: 3 },
      { message: 'timeout after 4000 ms', count: 1 },
    ]);
    assert.deepEqual(e.stats, { calls: 10, successes: 6, avgLatencyMs: 1915, minLatencyMs: 50, maxLatencyMs: 4000 });
  });

  it('scores latency linearly from the target (1) to the ceiling (0), on the average', () => {
    const latency = (ms: number) =>
      evaluateQuality(
        times(5, () => ok(ms)),
        policy,
      ).components?.latency;
    assert.equal(latency(1000), 1);
    assert.equal(latency(3000), 0.5);
    assert.equal(latency(4000), 0.25);
    assert.equal(latency(5000), 0);
    assert.equal(latency(60_000), 0);
    const slow = evaluateQuality(
      times(5, () => ok(4000)),
      policy,
    );
    // 0.5 + 0.3 × 0.25 + 0.2 = 0.775: slow alone does not send a reliable tool to a rewrite
    assert.equal(slow.score, 0.775);
    assert.equal(slow.verdict, 'healthy');
    assert.equal(
      slow.reason,
      'Healthy overall (100 % success, avg 4000 ms over the last 5 calls), but: Slow (avg 4000 ms, target ≤ 1000 ms, ceiling 5000 ms)',
    );
  });

  it('penalises a latency spread relative to the average, but not a fast tool’s jitter', () => {
    // avg 1000, spread 1800: 1 − 1800 / 3000
    const spread = evaluateQuality([ok(100), ok(1000), ok(1900)], policy);
    assert.equal(spread.components?.consistency, 0.4);
    assert.match(spread.reason, /Inconsistent latency \(100 ms to 1900 ms\)/);
    // 2 ms to 9 ms: measured against the 100 ms floor, not the 5 ms average
    const jitter = evaluateQuality([ok(2), ok(9), ok(4), ok(5)], policy);
    assert.equal(jitter.components?.consistency, 0.977);
    assert.equal(jitter.reason, 'Healthy: 100 % success, avg 5 ms over the last 4 calls');
  });

  it('gives no verdict under the minimum number of calls, however bad they were', () => {
    const two = evaluateQuality([fail('500 Internal Server Error'), fail('500 Internal Server Error')], policy);
    assert.equal(two.verdict, 'insufficient-data');
    assert.equal(two.score, 0.5);
    assert.equal(two.reason, 'Only 2 calls so far (0 % success, avg 100 ms): a verdict needs 3');
    assert.deepEqual(two.errors, [{ message: '500 Internal Server Error', count: 2 }]);
    const none = evaluateQuality([], policy);
    assert.deepEqual(
      { score: none.score, components: none.components, verdict: none.verdict, reason: none.reason },
      { score: null, components: null, verdict: 'insufficient-data', reason: 'No calls yet: a verdict needs 3' },
    );
  });

  it('reads only the window of most recent calls', () => {
    // 20 recent successes, then 30 old timeouts: the tool recovered
    const calls = [...times(20, () => ok(100)), ...times(30, () => fail('504 Gateway Timeout', 6000))];
    const e = evaluateQuality(calls, policy);
    assert.equal(e.stats.calls, 20);
    assert.equal(e.verdict, 'healthy');
    assert.equal(evaluateQuality(calls, { ...policy, window: 50 }).verdict, 'rewrite');
  });

  it('rewrites strictly below the threshold', () => {
    // 0.5 × 0.2 + 0.3 + 0.2 = 0.6: exactly at the threshold is healthy
    const calls = [ok(100), ...times(4, () => fail('boom', 100))];
    const e = evaluateQuality(calls, policy);
    assert.equal(e.score, 0.6);
    assert.equal(e.verdict, 'healthy');
    assert.equal(evaluateQuality(calls, { ...policy, rewriteBelow: 0.61 }).verdict, 'rewrite');
  });

  it('counts the groups beyond three and a failure without a message', () => {
    const calls = [fail('a broke'), fail('b broke'), fail('c broke'), fail('d broke'), fail(''), ok(100)];
    const e = evaluateQuality(calls, policy);
    assert.match(e.reason, /^High failure rate \(83 %\): a broke ×1, b broke ×1, c broke ×1, 2 other failures/);
    assert.ok(e.errors.some((g) => g.message === '(no error message)'));
  });
});

describe('error grouping', () => {
  it('keeps what a message says and drops what varies', () => {
    assert.equal(normaliseError('429 Too Many Requests: retry after 12 s'), normaliseError('429 Too Many Requests: retry after 30 s'));
    assert.equal(normaliseError('Error: 429 Too Many Requests'), '429 too many requests');
    assert.notEqual(normaliseError('HTTP 429 Too Many Requests'), normaliseError('HTTP 503 Service Unavailable'));
    assert.equal(normaliseError('timed out after 500 ms'), 'timed out after # ms', 'a duration is not a status');
    assert.equal(normaliseError('city "Zürich" not found'), normaliseError("city 'Bern' not found"));
    assert.equal(
      normaliseError('request 3f2b8c1e-9a4d-4e2b-8f1a-2b3c4d5e6f70 failed at 2025-05-01T10:00:00Z'),
      'request <id> failed at <time>',
    );
    assert.equal(normaliseError('bad token deadbeef42 in\nstack line 1\nstack line 2'), 'bad token <hex> in');
  });

  it('shows the most recent wording of a group', () => {
    const groups = groupErrors([fail('429 Too Many Requests: retry after 30 s'), ok(1), fail('429 Too Many Requests: retry after 12 s')]);
    assert.deepEqual(groups, [{ message: '429 Too Many Requests: retry after 30 s', count: 2 }]);
  });

  it('clips a long message for the reason', () => {
    const [g] = groupErrors([fail(`ValueError: ${'x'.repeat(200)}`)]);
    assert.equal(g?.message.length, 80);
    assert.ok(g?.message.endsWith('…'));
  });
});

describe('evaluationDue', () => {
  it('is due every evaluateEvery calls, never at 0', () => {
    assert.deepEqual(
      [0, 1, 4, 5, 6, 10, 15].map((n) => evaluationDue(n, policy)),
      [false, false, false, true, false, true, true],
    );
  });
});
