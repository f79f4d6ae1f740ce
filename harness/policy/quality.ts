import type { QualityPolicy } from '../../domain/quality.ts';

/**
 * When a tool is due for a rewrite (the improve cycle's evaluator, domain/quality.ts; seed 001).
 * The score over a tool's last 20 calls is
 *   0.5 success rate + 0.3 latency + 0.2 consistency
 * where latency is 1 at an average of 1 s or less and 0 at 5 s, and consistency falls to 0 when
 * the slowest call is 3 averages slower than the fastest. Under 0.6 the tool is rewritten; under 3
 * calls nothing is decided. The evaluator runs after every 5th call. What each number means, and
 * the bounds it must stay within, are domain/quality.ts's.
 */
export const quality: QualityPolicy = {
  window: 20,
  minCalls: 3,
  evaluateEvery: 5,
  weights: { successRate: 0.5, latency: 0.3, consistency: 0.2 },
  latency: { targetMs: 1000, ceilingMs: 5000 },
  /** below a 100 ms average, jitter is measured against 100 ms: milliseconds are not inconsistency */
  consistency: { spreadTolerance: 3, floorMs: 100 },
  rewriteBelow: 0.6,
};
