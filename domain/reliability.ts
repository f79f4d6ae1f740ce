/**
 * A tool's reliability over time, as a person reads it on a plot: each call's latency and whether
 * it succeeded, the success rate over a sliding window of calls, and where the version that
 * answered changed (a promotion, a rewrite or a rollback shows up as the calls' version changing).
 */

export interface CallSample {
  at: string;
  version: number;
  success: boolean;
  latencyMs: number;
}

export interface ReliabilityPoint extends CallSample {
  /** successes among this call and the window - 1 before it, 0..1 */
  successRate: number;
}

export interface VersionMark {
  at: string;
  from: number | null;
  to: number;
}

export interface ReliabilitySeries {
  window: number;
  points: ReliabilityPoint[];
  /** the first call of each run of one version (the first call of all has from: null) */
  changes: VersionMark[];
}

/** Calls must come oldest first; the window counts calls, not time, so a quiet tool's line does not sag. */
export function reliabilitySeries(calls: CallSample[], window = 10): ReliabilitySeries {
  const w = Math.max(1, Math.floor(window));
  const points: ReliabilityPoint[] = [];
  const changes: VersionMark[] = [];
  let successes = 0;
  calls.forEach((c, i) => {
    successes += c.success ? 1 : 0;
    if (i >= w && calls[i - w]!.success) successes -= 1;
    const seen = Math.min(i + 1, w);
    points.push({ ...c, successRate: successes / seen });
    const previous = i > 0 ? calls[i - 1]!.version : null;
    if (previous !== c.version) changes.push({ at: c.at, from: previous, to: c.version });
  });
  return { window: w, points, changes };
}
