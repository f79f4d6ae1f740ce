import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { reliabilitySeries } from '../../domain/reliability.ts';

// The dashboard's reading of a tool's calls (domain/reliability.ts): a sliding success rate over
// calls, and a mark wherever the version that answered changed (a promotion, a rollback).

const call = (i: number, version: number, success: boolean, latencyMs = 100) => ({
  at: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
  version,
  success,
  latencyMs,
});

describe('reliabilitySeries', () => {
  it('rates each call over the last `window` calls, counting only the calls seen so far at the start', () => {
    const s = reliabilitySeries([call(0, 1, true), call(1, 1, false), call(2, 1, true), call(3, 1, true), call(4, 1, false)], 3);
    assert.deepEqual(
      s.points.map((p) => Number(p.successRate.toFixed(3))),
      [1, 0.5, 0.667, 0.667, 0.667],
    );
    assert.equal(s.window, 3);
  });

  it('marks where the calls’ version changed, a rollback included, and keeps each call’s own figures', () => {
    const s = reliabilitySeries([call(0, 1, true), call(1, 2, true, 40), call(2, 2, false), call(3, 1, true)]);
    assert.deepEqual(
      s.changes.map((c) => [c.from, c.to, c.at]),
      [
        [null, 1, call(0, 1, true).at],
        [1, 2, call(1, 2, true).at],
        [2, 1, call(3, 1, true).at],
      ],
    );
    assert.deepEqual(s.points[1], { ...call(1, 2, true, 40), successRate: 1 });
  });

  it('an empty record is an empty series; a window under 1 counts one call', () => {
    assert.deepEqual(reliabilitySeries([]), { window: 10, points: [], changes: [] });
    assert.deepEqual(
      reliabilitySeries([call(0, 1, true), call(1, 1, false)], 0).points.map((p) => p.successRate),
      [1, 0],
    );
  });
});
