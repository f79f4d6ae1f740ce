import { z } from 'zod';

/**
 * The evaluator of the improve cycle (seed 001): a quality score per tool over its last N calls,
 * from three parts weighed by the harness's policy (harness/policy/quality.ts):
 *   success rate   successes / calls
 *   latency        1 at or under the target, falling linearly to 0 at the ceiling (average latency)
 *   consistency    1 − spread / (tolerance × average), spread = slowest − fastest call
 * and a verdict: below the threshold the tool is due for a rewrite; under the minimum number of
 * calls there is no verdict at all. The reason says what is wrong in words a person acts on, with
 * the recent error messages grouped by what they say rather than by their varying details
 * ("429 Too Many Requests ×3"). Pure: workflows import it.
 */

const weight = z.number().min(0).max(1);

/**
 * The policy's bounds, which the harness does not own. A verdict on fewer than 3 calls is noise
 * (the seed's floor); a threshold above 0.9 would send sound tools to a billed rewrite; a window
 * is bounded so one evaluation stays one cheap query.
 */
export const qualityPolicySchema = z
  .strictObject({
    /** how many of the tool's most recent calls are judged */
    window: z.number().int().min(3).max(200),
    /** under this many calls: no verdict ('insufficient-data') */
    minCalls: z.number().int().min(3).max(200),
    /** the evaluator runs after every this many calls of a tool */
    evaluateEvery: z.number().int().min(1).max(1000),
    weights: z
      .strictObject({ successRate: weight, latency: weight, consistency: weight })
      .refine((w) => Math.abs(w.successRate + w.latency + w.consistency - 1) < 1e-9, 'the weights must add up to 1'),
    latency: z
      .strictObject({
        /** at or under this average latency the latency part is 1 */
        targetMs: z.number().int().min(1).max(600_000),
        /** at or over this average latency it is 0 */
        ceilingMs: z.number().int().min(2).max(600_000),
      })
      .refine((l) => l.ceilingMs > l.targetMs, 'the ceiling must be above the target'),
    consistency: z.strictObject({
      /** the spread (slowest − fastest call) that zeroes consistency, as a multiple of the average latency */
      spreadTolerance: z.number().min(0.5).max(100),
      /**
       * averages under this count as this much: a fast tool's few milliseconds of jitter (2 ms
       * against 9 ms) are not inconsistency
       */
      floorMs: z.number().min(0).max(60_000),
    }),
    /** a score below this is a 'rewrite' verdict */
    rewriteBelow: z.number().min(0).max(0.9),
  })
  .refine((p) => p.minCalls <= p.window, 'minCalls cannot exceed the window: no verdict could ever be reached');
export type QualityPolicy = z.infer<typeof qualityPolicySchema>;

/** One metered call as the evaluator reads it (an invocations row). */
export interface QualityCall {
  success: boolean;
  latencyMs: number;
  /** the error message of a failed call */
  error?: string | null;
}

export type QualityVerdict = 'healthy' | 'rewrite' | 'insufficient-data';

export interface QualityComponents {
  /** successes / calls, 0..1 */
  successRate: number;
  /** 0..1: 1 at or under the target latency, 0 at or over the ceiling */
  latency: number;
  /** 0..1: 1 when every call takes about as long */
  consistency: number;
}

/** A group of failures that say the same thing. */
export interface ErrorGroup {
  /** the most recent message of the group, as it was written (first line, clipped) */
  message: string;
  count: number;
}

export interface QualityEvaluation {
  /** 0..1, rounded to 3 places; null when there were no calls */
  score: number | null;
  components: QualityComponents | null;
  verdict: QualityVerdict;
  /** what a person reads: "High failure rate (40 %): 429 Too Many Requests ×3" */
  reason: string;
  /** the figures the score came from */
  stats: {
    calls: number;
    successes: number;
    avgLatencyMs: number | null;
    minLatencyMs: number | null;
    maxLatencyMs: number | null;
  };
  /** failures grouped by normalised message, most frequent first */
  errors: ErrorGroup[];
}

/** Below these a part is named in the reason (seed 001), whatever the verdict. */
const FLAG = { successRate: 0.8, latency: 0.5, consistency: 0.5 } as const;
/** error groups named in the reason; the rest are counted */
const REASON_GROUPS = 3;
const MESSAGE_CHARS = 80;

const round3 = (x: number) => Math.round(x * 1000) / 1000;
const clamp01 = (x: number) => Math.min(1, Math.max(0, x));
const pct = (x: number) => `${Math.round(x * 100)} %`;
const ms = (x: number) => `${Math.round(x)} ms`;

/** The message as written, for display: its first line, without an "Error:"-style prefix, clipped. */
function displayMessage(error: string): string {
  const line = (error.split('\n').find((l) => l.trim()) ?? '').trim().replace(/^(?:[A-Za-z]*Error|error)\s*:\s*/, '');
  return line.length > MESSAGE_CHARS ? `${line.slice(0, MESSAGE_CHARS - 1)}…` : line;
}

/**
 * What a message says, without what varies between occurrences: ids, times, quoted values and
 * numbers — except an HTTP status (4xx/5xx not followed by a unit), which is the message.
 * "429 Too Many Requests (retry after 12 s)" and "… (retry after 30 s)" are one group.
 */
export function normaliseError(error: string): string {
  return displayMessage(error)
    .toLowerCase()
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<id>')
    .replace(/\d{4}-\d{2}-\d{2}[t ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(z|[+-]\d{2}:?\d{2})?/g, '<time>')
    .replace(/\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b/g, '<hex>')
    .replace(/"[^"]*"|'[^']*'|`[^`]*`/g, '"…"')
    .replace(/\d+(\.\d+)?/g, (n, _frac, offset: number, s: string) =>
      /^[45]\d\d$/.test(n) && !/^\s*(ms|s|sec|secs|seconds?|min|minutes?|h|kb|mb|gb|bytes?|%)\b/.test(s.slice(offset + n.length)) ? n : '#',
    )
    .replace(/\s+/g, ' ')
    .trim();
}

/** Failures grouped by normalised message, most frequent first (ties: the most recent first). */
export function groupErrors(calls: readonly QualityCall[]): ErrorGroup[] {
  const groups = new Map<string, ErrorGroup & { first: number }>();
  calls.forEach((c, i) => {
    if (c.success) return;
    const raw = c.error?.trim() ? c.error : '(no error message)';
    const key = normaliseError(raw);
    const g = groups.get(key);
    // calls come newest first: the first message seen of a group is its most recent
    if (g) g.count++;
    else groups.set(key, { message: displayMessage(raw), count: 1, first: i });
  });
  return [...groups.values()].sort((a, b) => b.count - a.count || a.first - b.first).map(({ message, count }) => ({ message, count }));
}

function latencyPart(avg: number, p: QualityPolicy['latency']): number {
  if (avg <= p.targetMs) return 1;
  if (avg >= p.ceilingMs) return 0;
  return 1 - (avg - p.targetMs) / (p.ceilingMs - p.targetMs);
}

/**
 * Judges a tool by its calls, newest first; only the first `policy.window` are read. Pure and
 * deterministic: the same calls and policy give the same evaluation.
 */
export function evaluateQuality(allCalls: readonly QualityCall[], policy: QualityPolicy): QualityEvaluation {
  const calls = allCalls.slice(0, policy.window);
  const n = calls.length;
  const successes = calls.filter((c) => c.success).length;
  const errors = groupErrors(calls);
  if (n === 0)
    return {
      score: null,
      components: null,
      verdict: 'insufficient-data',
      reason: `No calls yet: a verdict needs ${policy.minCalls}`,
      stats: { calls: 0, successes: 0, avgLatencyMs: null, minLatencyMs: null, maxLatencyMs: null },
      errors,
    };

  const latencies = calls.map((c) => Math.max(0, c.latencyMs));
  const avg = latencies.reduce((a, b) => a + b, 0) / n;
  const min = Math.min(...latencies);
  const max = Math.max(...latencies);
  const components: QualityComponents = {
    successRate: round3(successes / n),
    latency: round3(latencyPart(avg, policy.latency)),
    consistency: round3(
      clamp01(1 - (max - min) / (policy.consistency.spreadTolerance * Math.max(avg, policy.consistency.floorMs, Number.EPSILON))),
    ),
  };
  const w = policy.weights;
  const score = round3(w.successRate * components.successRate + w.latency * components.latency + w.consistency * components.consistency);
  const stats = { calls: n, successes, avgLatencyMs: Math.round(avg), minLatencyMs: min, maxLatencyMs: max };

  const issues: string[] = [];
  if (components.successRate < FLAG.successRate) {
    const named = errors
      .slice(0, REASON_GROUPS)
      .map((g) => `${g.message} ×${g.count}`)
      .join(', ');
    const rest = errors.slice(REASON_GROUPS).reduce((a, g) => a + g.count, 0);
    issues.push(`High failure rate (${pct(1 - successes / n)}): ${named}${rest ? `, ${rest} other failure${rest === 1 ? '' : 's'}` : ''}`);
  }
  if (components.latency < FLAG.latency)
    issues.push(`Slow (avg ${ms(avg)}, target ≤ ${ms(policy.latency.targetMs)}, ceiling ${ms(policy.latency.ceilingMs)})`);
  if (components.consistency < FLAG.consistency) issues.push(`Inconsistent latency (${ms(min)} to ${ms(max)})`);

  const overview = `${pct(successes / n)} success, avg ${ms(avg)} over the last ${n} call${n === 1 ? '' : 's'}`;
  if (n < policy.minCalls)
    return {
      score,
      components,
      verdict: 'insufficient-data',
      reason: `Only ${n} call${n === 1 ? '' : 's'} so far (${overview.replace(/ over .*/, '')}): a verdict needs ${policy.minCalls}`,
      stats,
      errors,
    };
  if (score < policy.rewriteBelow)
    return {
      score,
      components,
      verdict: 'rewrite',
      reason: issues.length ? issues.join('; ') : `Score ${score} below ${policy.rewriteBelow}: ${overview}`,
      stats,
      errors,
    };
  return {
    score,
    components,
    verdict: 'healthy',
    reason: issues.length ? `Healthy overall (${overview}), but: ${issues.join('; ')}` : `Healthy: ${overview}`,
    stats,
    errors,
  };
}

/** Whether a tool's call count is one at which the evaluator runs (every `evaluateEvery` calls). */
export function evaluationDue(calls: number, policy: Pick<QualityPolicy, 'evaluateEvery'>): boolean {
  return calls > 0 && calls % policy.evaluateEvery === 0;
}
