/**
 * The improve cycle's shapes and its judge: what a rewrite must show before it may replace the
 * current version. Pure: the workflow decides with these, and no code under judgement runs here.
 */
import { z } from 'zod';
import type { ModelEndpoint } from './llm-retry.ts';
import { toolNameSchema } from './tool.ts';

/** forge: a forge produced new code under an existing tool's name; it must pass that tool's gate to become current */
export const improveTriggerSchema = z.enum(['manual', 'evaluator', 'degraded', 'task-failure', 'forge']);
export type ImproveTrigger = z.infer<typeof improveTriggerSchema>;

/** A call that failed in production: its input becomes a permanent regression case. */
export const observedFailureSchema = z.object({
  input: z.unknown(),
  error: z.string().max(4000),
});
export type ObservedFailure = z.infer<typeof observedFailureSchema>;

export const improveRequestSchema = z.object({
  tool: toolNameSchema,
  trigger: improveTriggerSchema,
  sandboxQueue: z.string().min(1),
  /** failures the trigger saw (a task's failed call); the cycle adds those in the audit log */
  failures: z.array(observedFailureSchema).max(20).default([]),
  /** what the trigger knew: the evaluator's reason, the task's diagnosis */
  reason: z.string().max(2000).optional(),
  /** code to gate instead of a rewrite (a forge under an existing name): the tests join the existing suite */
  candidate: z.object({ source: z.string().min(1), tests: z.string() }).optional(),
  /** at most the harness's improve.attempts */
  maxAttempts: z.number().int().min(1).max(5).default(5),
  requestedBy: z.string().max(200).optional(),
});
export type ImproveRequest = z.input<typeof improveRequestSchema>;

/** One recorded production call of a read tool, replayed against the candidate. */
export interface RecordedCall {
  auditId: number;
  input: unknown;
  output: unknown;
  latencyMs: number;
}

/** A regression case: this input must now succeed (and match `expected` when one was recorded). */
export interface RegressionCase {
  name: string;
  input: unknown;
  expected?: unknown;
}

/** What one sandboxed call of a version came to, as the gate sees it. */
export interface CaseRun {
  ok: boolean;
  output?: unknown;
  error?: string;
  durationMs: number;
}

export const gateCaseSchema = z.object({
  kind: z.enum(['suite', 'new-tests', 'regression', 'replay', 'error-rate', 'latency']),
  name: z.string(),
  pass: z.boolean(),
  detail: z.string().optional(),
  oldHash: z.string().optional(),
  newHash: z.string().optional(),
  latencyMs: z.number().optional(),
  oldLatencyMs: z.number().optional(),
});
export type GateCase = z.infer<typeof gateCaseSchema>;

export const gateReportSchema = z.object({
  passed: z.boolean(),
  cases: z.array(gateCaseSchema),
  /** differences from the current version's outputs the rewriter declared, shown to a person */
  declaredDifferences: z.string().optional(),
  summary: z.string(),
});
export type GateReport = z.infer<typeof gateReportSchema>;

export const improveStatusSchema = z.enum(['promoted', 'refused', 'skipped', 'archived', 'failed']);
export type ImproveStatus = z.infer<typeof improveStatusSchema>;

export interface ImproveAttempt {
  attempt: number;
  passed: boolean;
  summary: string;
}

export interface ImproveOutcome {
  status: ImproveStatus;
  tool: string;
  fromVersion?: number;
  toVersion?: number;
  reason: string;
  attempts: ImproveAttempt[];
  gate?: GateReport;
  /** an archived tool's replacement, forged from scratch */
  replacement?: { name: string; version: number };
  /** a step failed because the model server could not be reached: a component down, not the cycle's failure */
  modelUnreachable?: ModelEndpoint;
}

export type ImprovePhase =
  | 'starting'
  | 'gathering'
  | 'rewriting'
  | 'gating'
  | 'promoting'
  | 'archiving'
  | 'reforging'
  | 'promoted'
  | 'refused'
  | 'skipped'
  | 'archived'
  | 'failed';

export interface ImproveProgress {
  phase: ImprovePhase;
  tool?: string;
  attempt?: number;
  history: { phase: ImprovePhase; at: string; note?: string }[];
  attempts: ImproveAttempt[];
  frozen?: boolean;
}

/** How much slower a candidate may be on the replays before the gate refuses it. */
export const LATENCY_TOLERANCE = { ratio: 1.5, slackMs: 250 } as const;

/** Stable text of a value: object keys sorted, so equal outputs compare equal whatever their key order. */
export function canonical(value: unknown): string {
  if (value === undefined) return 'undefined';
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/** A short, stable fingerprint (FNV-1a): enough for a person to see "same" or "different" in a report. */
export function fingerprint(value: unknown): string {
  let h = 0x811c9dc5;
  for (const ch of canonical(value)) {
    h ^= ch.codePointAt(0)!;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : 0;
};

export interface GateEvidence {
  /** the tool's whole existing suite, unchanged, against the candidate */
  suite: { passed: boolean; summary: string };
  /** the rewriter's new tests for the observed failures, against the candidate */
  newTests?: { passed: boolean; summary: string };
  regression: { case: RegressionCase; run: CaseRun }[];
  /** each recorded read call: the candidate's run and the current version's run today */
  replays: { call: RecordedCall; candidate: CaseRun; current: CaseRun }[];
  declaredDifferences?: string;
}

/**
 * The regression gate's verdict, all of it computed here from what the sandbox reported: the old
 * suite, the new tests, every regression case, and the replays (same output as recorded, or a
 * declared difference; error rate not worse; median latency not worse beyond the tolerance).
 */
export function judgeGate(e: GateEvidence): GateReport {
  const cases: GateCase[] = [];
  cases.push({ kind: 'suite', name: 'the existing test suite', pass: e.suite.passed, detail: e.suite.summary.slice(0, 2000) });
  if (e.newTests) {
    cases.push({
      kind: 'new-tests',
      name: 'new tests for the observed failures',
      pass: e.newTests.passed,
      detail: e.newTests.summary.slice(0, 2000),
    });
  }
  for (const { case: c, run } of e.regression) {
    const matches = c.expected === undefined || (run.ok && canonical(run.output) === canonical(c.expected));
    cases.push({
      kind: 'regression',
      name: c.name,
      pass: run.ok && matches,
      detail: !run.ok ? `still fails: ${run.error ?? 'no reason'}` : matches ? undefined : 'succeeds, but not with the expected output',
      newHash: run.ok ? fingerprint(run.output) : undefined,
      latencyMs: run.durationMs,
    });
  }
  const declared = Boolean(e.declaredDifferences?.trim());
  for (const { call, candidate } of e.replays) {
    const same = candidate.ok && canonical(candidate.output) === canonical(call.output);
    cases.push({
      kind: 'replay',
      name: `audit #${call.auditId}`,
      pass: candidate.ok && (same || declared),
      detail: !candidate.ok
        ? `the candidate failed a call the current version answered: ${candidate.error ?? 'no reason'}`
        : same
          ? undefined
          : 'different output (declared by the rewriter; shown to a person)',
      oldHash: fingerprint(call.output),
      newHash: candidate.ok ? fingerprint(candidate.output) : undefined,
      latencyMs: candidate.durationMs,
      oldLatencyMs: call.latencyMs,
    });
  }
  if (e.replays.length) {
    const failed = (runs: CaseRun[]) => runs.filter((r) => !r.ok).length;
    const oldErrors = failed(e.replays.map((r) => r.current));
    const newErrors = failed(e.replays.map((r) => r.candidate));
    cases.push({
      kind: 'error-rate',
      name: 'error rate on the replays',
      pass: newErrors <= oldErrors,
      detail: `${newErrors} of ${e.replays.length} failed (current version today: ${oldErrors})`,
    });
    const oldMs = median(e.replays.map((r) => r.current.durationMs));
    const newMs = median(e.replays.map((r) => r.candidate.durationMs));
    const ceiling = Math.max(oldMs * LATENCY_TOLERANCE.ratio, oldMs + LATENCY_TOLERANCE.slackMs);
    cases.push({
      kind: 'latency',
      name: 'median latency on the replays',
      pass: newMs <= ceiling,
      detail: `${newMs} ms against ${oldMs} ms for the current version (allowed up to ${Math.round(ceiling)} ms)`,
      latencyMs: newMs,
      oldLatencyMs: oldMs,
    });
  }
  const failing = cases.filter((c) => !c.pass);
  const summary = failing.length
    ? `${failing.length} of ${cases.length} gate checks failed: ${failing.map((c) => `${c.name}${c.detail ? ` (${c.detail.split('\n')[0]})` : ''}`).join('; ')}`
    : `all ${cases.length} gate checks passed`;
  return { passed: failing.length === 0, cases, ...(declared ? { declaredDifferences: e.declaredDifferences } : {}), summary };
}

/**
 * Failures worth retrying as they are: the world was briefly unavailable, not the tool wrong.
 * Read from the reason a person sees (codes and HTTP statuses the runner and the tool report).
 */
export function isTransient(reason: string): boolean {
  if (
    /\b(TIMEOUT|ETIMEDOUT|ECONNRESET|ECONNREFUSED|EAI_AGAIN|EPIPE)\b|socket hang up|Too Many Requests|Service Unavailable|Bad Gateway|Gateway Timeout|rate[ -]?limit/i.test(
      reason,
    )
  )
    return true;
  // A status code only where it reads as one ("HTTP 503", "status 429", "answered 502"), not any number in a message.
  return /\b(?:HTTP|status(?: code)?|answered|responded(?: with)?|returned)\s*:?\s*(429|502|503|504)\b/i.test(reason);
}

/** The idempotency keys of an improve cycle's writes, so a resumed cycle writes nothing twice. */
export const improveKeys = {
  version: (workflowId: string) => `${workflowId}:rewrite`,
  audit: (workflowId: string, what: string) => `${workflowId}:${what}`,
};
