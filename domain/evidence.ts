/**
 * Failure evidence: what went wrong in production, kept so self-evolution can learn from it, with
 * an expectation a replay can be judged by without a person. Pure: the curator, the evolve cycle's
 * judge and the CLI share these shapes; `judgeExpectation` is the judge (never the candidate's code).
 */
import { z } from 'zod';
import { type AgentCall, agentLimitsSchema } from './agent.ts';
import { probeOverridesSchema } from './deploy.ts';
import { ForgeError, PermanentError } from './errors.ts';
import type { TaskResult } from './task.ts';

/** What curation batches for an evolve cycle: the agent's own doing, which a patched harness could change and a replay can show. */
export const curatedFailureTypeSchema = z.enum(['routing', 'tool_call', 'state', 'output']);
export type CuratedFailureType = z.infer<typeof curatedFailureTypeSchema>;

/**
 * `declined`: a person said no to a write or destructive call the agent asked to make. The tool was
 * right for the request and the approval gate did its job; whether the agent should have asked at
 * all only that person knows, and `forge feedback --expect-tool …` says so when it should not have.
 * Kept for the record (`forge failures`), never curated: it is no routing miss.
 */
export const failureTypeSchema = z.enum([...curatedFailureTypeSchema.options, 'declined']);
export type FailureType = z.infer<typeof failureTypeSchema>;

export const isCuratedFailureType = (t: FailureType): t is CuratedFailureType => (curatedFailureTypeSchema.options as string[]).includes(t);

/** duplicate_forged: the task forged a tool the catalog already had an equivalent of (a routing miss, even when the task completed) */
export const evidenceSourceSchema = z.enum([
  'task_failed',
  'call_failed',
  'call_escalated',
  'approval_rejected',
  'duplicate_forged',
  'feedback',
]);
export type EvidenceSource = z.infer<typeof evidenceSourceSchema>;

/** What a replay of the task must show, checked on its TaskResult alone. */
export const expectationSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('completes'), description: z.string().optional() }),
  z.strictObject({ kind: z.literal('uses-tool'), tool: z.string().min(1) }),
  z.strictObject({ kind: z.literal('avoids-tool'), tool: z.string().min(1) }),
  z.strictObject({ kind: z.literal('forges-nothing') }),
  z.strictObject({ kind: z.literal('answer-contains'), text: z.string().min(1).max(2000) }),
  z.strictObject({ kind: z.literal('no-escalation') }),
]);
export type Expectation = z.infer<typeof expectationSchema>;

/** The trace of the task, as the evidence keeps it: enough to see what the agent did and to replay the task. */
export const evidenceTraceSchema = z.object({
  task: z.string(),
  sessionId: z.string().optional(),
  status: z.string(),
  answer: z.string().optional(),
  turns: z.number().int().min(0).optional(),
  /** the bounds the task ran under; a replay runs under the same (absent from rows recorded before they were kept) */
  limits: agentLimitsSchema.optional(),
  calls: z
    .array(
      z.object({
        turn: z.number().int(),
        tool: z.string(),
        version: z.number().int().optional(),
        status: z.string(),
        input: z.unknown(),
        output: z.unknown().optional(),
        reason: z.string().optional(),
      }),
    )
    .default([]),
  forged: z.array(z.string()).default([]),
});
export type EvidenceTrace = z.infer<typeof evidenceTraceSchema>;

export const failureEvidenceSchema = z
  .object({
    id: z.number().int().positive(),
    workflowId: z.string(),
    source: evidenceSourceSchema,
    failureType: failureTypeSchema,
    expected: z.string(),
    happened: z.string(),
    /** what a replay must show; none for a row that is never replayed (declined) */
    expectations: z.array(expectationSchema),
    severity: z.number().min(0).max(1),
    trace: evidenceTraceSchema,
    createdAt: z.string(),
    /** set by curation: when the row was batched, and the batch (for a duplicate: its original's batch) */
    curatedAt: z.string().optional(),
    batchKey: z.string().optional(),
    /** a duplicate of this row (same task, failure type and expectations), which went to the batch instead */
    duplicateOf: z.number().int().positive().optional(),
  })
  .refine((e) => e.expectations.length > 0 || !isCuratedFailureType(e.failureType), {
    message: 'a row curation may batch needs at least one expectation a replay is judged by',
    path: ['expectations'],
  });
export type FailureEvidence = z.infer<typeof failureEvidenceSchema>;

/** What a replayed task came to, as the judge reads it (a subset of domain/task.ts TaskResult). */
export interface ReplayedTask {
  status: string;
  answer: string;
  calls: { tool: string; status: string; recovery?: { escalation?: unknown } }[];
  forged: string[];
}

/** One expectation against one replay: pass, and a reason a person can read when not. */
export function judgeExpectation(e: Expectation, r: ReplayedTask): { pass: boolean; reason?: string } {
  const used = r.calls.filter((c) => c.status === 'succeeded').map((c) => c.tool);
  switch (e.kind) {
    case 'completes':
      return r.status === 'completed' ? { pass: true } : { pass: false, reason: `the task ended ${r.status}` };
    case 'uses-tool':
      return used.includes(e.tool)
        ? { pass: true }
        : { pass: false, reason: `${e.tool} was not called successfully (called: ${used.join(', ') || 'nothing'})` };
    case 'avoids-tool':
      return r.calls.some((c) => c.tool === e.tool) ? { pass: false, reason: `${e.tool} was called` } : { pass: true };
    case 'forges-nothing':
      return r.forged.length ? { pass: false, reason: `forged ${r.forged.join(', ')}` } : { pass: true };
    case 'answer-contains':
      return r.answer.toLowerCase().includes(e.text.toLowerCase())
        ? { pass: true }
        : { pass: false, reason: `the answer does not contain "${e.text}"` };
    case 'no-escalation':
      return r.calls.some((c) => c.recovery?.escalation) ? { pass: false, reason: 'a call was escalated to a person' } : { pass: true };
  }
}

/** A replay passes when every expectation of its evidence holds. */
export function judgeReplay(expectations: readonly Expectation[], r: ReplayedTask): { pass: boolean; reasons: string[] } {
  const reasons = expectations.map((e) => judgeExpectation(e, r)).flatMap((v) => (v.pass ? [] : [v.reason ?? 'failed']));
  return { pass: reasons.length === 0, reasons };
}

// ————— Capture: what a finished task leaves as evidence —————

/**
 * How bad each kind of evidence is, 0..1; curation takes rows at or above `curationPolicy.minSeverity`.
 * The judge's side, like the expectations: never in harness/, out of the coding agent's reach.
 */
export const EVIDENCE_SEVERITY = {
  /** a person said what should have happened */
  feedback: 0.8,
  /** a call the task relied on failed, or a call was escalated to a person */
  callFailed: 0.7,
  escalated: 0.7,
  /** a bound stopped the loop; the agent called a tool it was not offered; it forged a duplicate */
  stopped: 0.6,
  routingSlip: 0.6,
  duplicateForged: 0.6,
  /**
   * A person said no to a write (declined): their decision, not a fault. Below the curation floor as
   * well as of a type curation never takes, so no reading of the rows makes it a batch.
   */
  declined: 0.3,
  /**
   * The workflow itself failed (the database, Docker, the model API): kept for the record, below the
   * curation floor, since a harness patch rarely fixes an engine fault.
   */
  engineError: 0.4,
} as const;

/** A forged tool whose description finds an existing tool at least this similar duplicates it (a routing miss). */
export const DUPLICATE_SIMILARITY = 0.8;

/** The longest input, output or text a trace keeps of one call (the rest is cut, and says how much). */
const TRACE_VALUE_CHARS = 4000;
const TEXT_CHARS = 2000;

const clipText = (text: string, max = TEXT_CHARS) =>
  text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters cut)`;

/** A value as the trace keeps it: whole when small, else its JSON clipped to a string that says so. */
function clipValue(value: unknown): unknown {
  if (value === undefined) return undefined;
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? 'null');
  return text.length <= TRACE_VALUE_CHARS ? value : clipText(text, TRACE_VALUE_CHARS);
}

/** What the evidence keeps of a task's result: the task, the outcome, every call (clipped) and what it forged. */
export type TaskTraceSource = Pick<TaskResult, 'task' | 'status' | 'answer' | 'calls' | 'forged' | 'limits'> & { turns?: number };

export function traceOf(result: TaskTraceSource, sessionId?: string): EvidenceTrace {
  return {
    task: result.task,
    ...(sessionId ? { sessionId } : {}),
    status: result.status,
    answer: clipText(result.answer, TRACE_VALUE_CHARS),
    ...(result.turns !== undefined ? { turns: result.turns } : {}),
    ...(result.limits ? { limits: { ...result.limits } } : {}),
    calls: result.calls.map((c) => ({
      turn: c.turn,
      tool: c.tool,
      ...(c.version !== undefined ? { version: c.version } : {}),
      status: c.status,
      input: clipValue(c.input),
      ...(c.output !== undefined ? { output: clipValue(c.output) } : {}),
      ...(c.reason !== undefined ? { reason: clipText(c.reason) } : {}),
    })),
    forged: [...result.forged],
  };
}

/** One row to write: everything but the id and the time, with the key that makes a retried write a no-op. */
export interface EvidenceDraft {
  idempotencyKey: string;
  workflowId: string;
  source: EvidenceSource;
  failureType: FailureType;
  expected: string;
  happened: string;
  expectations: Expectation[];
  severity: number;
  trace: EvidenceTrace;
}

/** What capture knows of one finished task: its result, and what the activity looked up around it. */
export interface TaskFacts {
  workflowId: string;
  result: TaskTraceSource;
  sessionId?: string;
  /** the task workflow itself failed (not a call, not a bound): its cause */
  error?: string;
  /** write or destructive approvals of this task a person rejected (the approvals ledger) */
  rejected?: { approvalId: string; kind: string; tool?: string; by?: string; summary: string }[];
  /**
   * tools this task forged that the catalog already had an equivalent of; `sameCode`: the forge
   * ended on a catalog tool of that very name with exactly its code (the ledger's `unchanged`)
   */
  duplicates?: { forged: string; existing: string; similarity: number; sameCode?: { version: number } }[];
}

/**
 * Whether a finished task may leave evidence: it did not complete, it forged something (maybe a
 * duplicate), a call was escalated or did not run (maybe a rejected approval). Workflows ask this
 * before paying for the activity; the activity decides with everything it looked up.
 */
export function mayHoldEvidence(result: Pick<TaskResult, 'status' | 'calls' | 'forged'>): boolean {
  return (
    result.status !== 'completed' ||
    result.forged.length > 0 ||
    result.calls.some((c) => c.status === 'not-run' || !!c.recovery?.escalation)
  );
}

/** The call a failed task failed on, as domain/task.ts outcomeOf reads it: a slip that a later success made good does not count. */
function failingCall(calls: readonly AgentCall[]): AgentCall | undefined {
  const last = new Map<string, AgentCall>();
  calls.forEach((c, i) => {
    if (!c.slip || !calls.slice(i + 1).some((later) => later.status === 'succeeded')) last.set(c.tool, c);
  });
  return [...last.values()].find((c) => c.status !== 'succeeded');
}

const COMPLETES: Expectation = { kind: 'completes' };
const named = (c: Pick<AgentCall, 'tool' | 'version'>) => `${c.tool}${c.version !== undefined ? ` v${c.version}` : ''}`;

/**
 * The evidence a finished task leaves, one row per cause, each with expectations a replay can be
 * judged by: an escalated call (tool_call, no escalation); a write or destructive call a person
 * rejected (declined: for the record, with no expectation, never curated); a forged duplicate of a catalog tool
 * (routing: reuse it, forge nothing); and the task's own outcome when nothing above explains it —
 * stopped by a bound (state), failed on a call (tool_call, or routing when it called a tool it was
 * not offered), or the workflow itself failed (state, below the curation floor). A person's
 * rejection of an escalation is the escalation's row, which says what they decided.
 */
export function deriveTaskEvidence(f: TaskFacts): EvidenceDraft[] {
  const { workflowId, result } = f;
  const trace = traceOf(result, f.sessionId);
  const rows: EvidenceDraft[] = [];
  const add = (row: Omit<EvidenceDraft, 'workflowId' | 'trace'>) =>
    rows.push({ ...row, workflowId, trace, expected: clipText(row.expected), happened: clipText(row.happened) });
  const cause = !f.error && result.status === 'failed' ? failingCall(result.calls) : undefined;
  const rejected = (f.rejected ?? []).filter((r) => r.kind === 'write' || r.kind === 'destructive');

  result.calls.forEach((c) => {
    const esc = c.recovery?.escalation;
    if (!esc) return;
    const decision =
      esc.decision === 'retry' ? 'approved a retry' : esc.decision === 'declined' ? 'declined to retry it' : 'nobody answered in time';
    add({
      idempotencyKey: `${workflowId}:escalation:${esc.approvalId ?? `${c.turn}.${c.id}`}`,
      source: 'call_escalated',
      failureType: 'tool_call',
      expected: `${c.tool} works for this task, or the agent goes another way, without a person stepping in`,
      happened: `${named(c)} failed${c.recovery?.diagnosis ? ` (${c.recovery.diagnosis.diagnosis})` : ''} and was escalated to a person${esc.approvalId ? ` (approval ${esc.approvalId})` : ''}: ${decision}${c.status === 'succeeded' ? '; the retry succeeded' : `; ${c.reason ?? 'the call failed'}`}`,
      expectations: [{ kind: 'no-escalation' }, ...(c === cause ? [COMPLETES] : [])],
      severity: EVIDENCE_SEVERITY.escalated,
    });
  });

  for (const r of rejected) {
    add({
      idempotencyKey: `${workflowId}:approval:${r.approvalId}`,
      source: 'approval_rejected',
      failureType: 'declined',
      expected: `a person decides whether the ${r.kind} happens; if the agent should not have asked, forge feedback ${workflowId} --bad "…" says so`,
      happened: `${r.by ?? 'a person'} rejected the ${r.kind} call: ${r.summary}`,
      expectations: [],
      severity: EVIDENCE_SEVERITY.declined,
    });
  }

  for (const d of f.duplicates ?? []) {
    add({
      idempotencyKey: `${workflowId}:duplicate:${d.forged}`,
      source: 'duplicate_forged',
      failureType: 'routing',
      expected: `the agent reuses ${d.existing}, already in the catalog, and forges nothing`,
      happened: d.sameCode
        ? `the agent forged ${d.forged} again: ${d.existing} v${d.sameCode.version} already had exactly that code, so nothing was registered`
        : `the agent forged ${d.forged}, a duplicate of ${d.existing} (similarity ${d.similarity.toFixed(2)})`,
      expectations: [{ kind: 'uses-tool', tool: d.existing }, { kind: 'forges-nothing' }],
      severity: EVIDENCE_SEVERITY.duplicateForged,
    });
  }

  const key = `${workflowId}:task`;
  if (f.error) {
    add({
      idempotencyKey: key,
      source: 'task_failed',
      failureType: 'state',
      expected: 'the task runs to an answer',
      happened: `the task workflow failed: ${f.error}`,
      expectations: [COMPLETES],
      severity: EVIDENCE_SEVERITY.engineError,
    });
  } else if (result.status === 'stopped') {
    add({
      idempotencyKey: key,
      source: 'task_failed',
      failureType: 'state',
      expected: 'the task ends with an answer within its bounds',
      happened: result.answer,
      expectations: [COMPLETES],
      severity: EVIDENCE_SEVERITY.stopped,
    });
  } else if (result.status === 'failed') {
    const explained = cause && (cause.recovery?.escalation || (cause.status === 'not-run' && rejected.some((r) => r.tool === cause.tool)));
    if (!explained) {
      const slip = cause?.slip === 'unknown-tool';
      add({
        idempotencyKey: key,
        source: cause ? 'call_failed' : 'task_failed',
        failureType: slip ? 'routing' : 'tool_call',
        expected: slip
          ? 'the agent calls only tools it was offered (or searches the catalog, or forges one)'
          : 'the task completes, every call it relies on succeeding',
        happened: cause
          ? `${named(cause)} ${cause.status === 'failed' ? 'failed' : 'did not run'}: ${cause.reason ?? 'no reason given'}`
          : result.answer,
        expectations: [COMPLETES],
        severity: slip ? EVIDENCE_SEVERITY.routingSlip : EVIDENCE_SEVERITY.callFailed,
      });
    }
  }
  return rows;
}

// ————— Feedback: a person says what should have happened —————

export const feedbackInputSchema = z.object({
  workflowId: z.string().trim().min(1).max(1000),
  bad: z.string().trim().min(3, 'say what should have happened, in a few words').max(TEXT_CHARS),
  expectTool: z
    .string()
    .trim()
    .regex(/^[a-z][a-z0-9_]{0,63}$/, 'a tool name, e.g. count_words')
    .optional(),
  expectAnswer: z.string().trim().min(1).max(TEXT_CHARS).optional(),
  severity: z.number().min(0).max(1).optional(),
});
export type FeedbackInput = z.input<typeof feedbackInputSchema>;
export type FeedbackRequest = z.output<typeof feedbackInputSchema>;

/** A task as the tasks table holds it: its result when it finished, its error when its workflow failed. */
export interface StoredTask {
  workflowId: string;
  task: string;
  status: string;
  result?: TaskTraceSource;
  error?: string;
  sessionId?: string;
}

/**
 * Explicit feedback as evidence: routing when the person names the tool it should have used, output
 * otherwise; always at least "completes" (carrying the person's words). `fingerprint` (a hash of
 * the feedback, computed by the caller) makes the same feedback given twice one row.
 */
export function feedbackEvidence(input: FeedbackRequest, task: StoredTask, fingerprint: string): EvidenceDraft {
  const result: TaskTraceSource = task.result ?? {
    task: task.task,
    status: 'failed',
    answer: task.error ? `the task workflow failed: ${task.error}` : '(no result)',
    calls: [],
    forged: [],
  };
  return {
    idempotencyKey: `${task.workflowId}:feedback:${fingerprint}`,
    workflowId: task.workflowId,
    source: 'feedback',
    failureType: input.expectTool ? 'routing' : 'output',
    expected: input.bad,
    happened: clipText(result.answer),
    expectations: [
      ...(input.expectTool ? [{ kind: 'uses-tool' as const, tool: input.expectTool }] : []),
      ...(input.expectAnswer ? [{ kind: 'answer-contains' as const, text: input.expectAnswer }] : []),
      { kind: 'completes', description: input.bad },
    ],
    severity: input.severity ?? EVIDENCE_SEVERITY.feedback,
    trace: traceOf(result, task.sessionId),
  };
}

export class TaskNotFoundError extends ForgeError {
  constructor(workflowId: string) {
    super(
      `no task ${workflowId} in the tasks table`,
      'TASK_NOT_FOUND',
      'use the task id forge run printed (task-…); forge tasks lists recent ones',
      { workflowId },
    );
  }
}

export class TaskStillRunningError extends ForgeError {
  constructor(workflowId: string) {
    super(
      `task ${workflowId} is still running: it has no result to judge yet`,
      'TASK_RUNNING',
      'wait for it to finish, then give feedback',
      {
        workflowId,
      },
    );
  }
}

export class EvidenceNotFoundError extends PermanentError {
  constructor(ids: readonly number[]) {
    super(
      `no failure evidence with id ${ids.join(', ')}`,
      'EVIDENCE_NOT_FOUND',
      'forge failures ls --since 30d lists the evidence rows and their ids',
      { ids: [...ids] },
    );
  }
}

// ————— Curation: the night's evidence, de-duplicated, in batches by failure type —————

/**
 * What the nightly curation takes (the judge's side, like the severities): the last `windowHours`
 * of uncurated evidence at or above `minSeverity`, at most `maxBatches` batches a night of at most
 * `maxBatchSize` rows each (the evolve request's own bound). A row that does not fit stays
 * uncurated, for a later night while it is still in the window.
 */
export const curationPolicy = { windowHours: 24, minSeverity: 0.5, maxBatches: 3, maxBatchSize: 50 } as const;

export const curateInputSchema = z.object({
  sandboxQueue: z.string().min(1),
  windowHours: z
    .number()
    .int()
    .min(1)
    .max(24 * 30)
    .default(curationPolicy.windowHours),
  minSeverity: z.number().min(0).max(1).default(curationPolicy.minSeverity),
  maxBatches: z.number().int().min(0).max(20).default(curationPolicy.maxBatches),
  /** the run's time when no schedule started it (the schedule's own scheduled time wins) */
  asOf: z.iso.datetime().optional(),
  /**
   * only these rows (still within the window and severity): forge demo evolve curates the evidence it
   * created, never a person's own, which stays for the nightly run
   */
  evidenceIds: z.array(z.number().int().positive()).min(1).max(curationPolicy.maxBatchSize).optional(),
  /** what the evolve cycles it starts wait for consent and probe (forge demo evolve shortens both) */
  evolve: z.strictObject({ consentTimeoutSeconds: z.number().int().min(1).optional(), probe: probeOverridesSchema.optional() }).optional(),
});
export type CurateInput = z.input<typeof curateInputSchema>;

export interface EvidenceBatch {
  batchKey: string;
  failureType: CuratedFailureType;
  evidenceIds: number[];
}

export interface CurateOutcome {
  status: 'curated' | 'nothing' | 'frozen';
  /** the run's key: every batch key starts with it */
  runKey: string;
  /** the window read: created after `since`, at or before `until` */
  since: string;
  until: string;
  batches: (EvidenceBatch & { workflowId: string; started: boolean })[];
  /** rows folded into another (same task, failure type and expectations) */
  duplicates: number;
  /** rows left uncurated: over the night's bound of batches or batch size */
  deferred: number;
  /** rows the window held at or above the minimum severity */
  considered: number;
  reason: string;
}

/** A curation run's key from its scheduled time, to the second: `curate-2026-11-30T030000Z`. */
export function curationRunKey(at: Date): string {
  const iso = at.toISOString();
  return `curate-${iso.slice(0, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
}

/** The scheduled time a Temporal Schedule appends to the workflow ids it starts (`<id>-2026-11-30T03:00:00Z`), when there is one. */
export function scheduledTimeOfWorkflowId(workflowId: string): Date | undefined {
  const m = /-(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z)$/.exec(workflowId);
  if (!m) return undefined;
  const at = new Date(m[1]!);
  return Number.isNaN(at.getTime()) ? undefined : at;
}

export const evolveWorkflowIdOf = (batchKey: string) => `evolve-${batchKey}`;

/** A row as curation weighs it. */
export interface CurationRow {
  id: number;
  failureType: CuratedFailureType;
  severity: number;
  task: string;
  expectations: readonly Expectation[];
}

/** Same task (whitespace and case aside), same failure type, same expectations (in any order). */
export function duplicateKey(row: Pick<CurationRow, 'failureType' | 'task' | 'expectations'>): string {
  const task = row.task.replace(/\s+/g, ' ').trim().toLowerCase();
  const canon = (e: Expectation) =>
    JSON.stringify(
      Object.keys(e)
        .sort()
        .map((k) => [k, (e as Record<string, unknown>)[k]]),
    );
  return JSON.stringify([row.failureType, task, row.expectations.map(canon).sort()]);
}

export interface Curation {
  batches: EvidenceBatch[];
  duplicates: { id: number; of: number; batchKey: string }[];
  /** rows left for a later night: over the bound of batches a night or of rows a batch */
  deferred: number[];
}

/**
 * The night's evidence as batches: duplicates folded into the most severe of their kind (then the
 * oldest), one batch per failure type holding its most severe rows, the batches most severe first,
 * at most `maxBatches`; batch keys are `<runKey>:<failure type>`. Pure and deterministic, so a
 * retried curation computes the same batches.
 */
export function curateEvidence(
  rows: readonly CurationRow[],
  opts: { runKey: string; maxBatches: number; maxBatchSize?: number },
): Curation {
  const maxSize = Math.min(opts.maxBatchSize ?? curationPolicy.maxBatchSize, curationPolicy.maxBatchSize);
  const bySeverity = (a: CurationRow, b: CurationRow) => b.severity - a.severity || a.id - b.id;
  const groups = new Map<string, CurationRow[]>();
  for (const row of [...rows].sort(bySeverity)) {
    const k = duplicateKey(row);
    groups.set(k, [...(groups.get(k) ?? []), row]);
  }
  const byType = new Map<CuratedFailureType, { keep: CurationRow; dups: CurationRow[] }[]>();
  for (const [keep, ...dups] of groups.values()) {
    if (!keep) continue;
    byType.set(keep.failureType, [...(byType.get(keep.failureType) ?? []), { keep, dups }]);
  }
  const candidates = [...byType.entries()]
    .map(([failureType, entries]) => ({ failureType, entries: entries.sort((a, b) => bySeverity(a.keep, b.keep)) }))
    .sort(
      (a, b) =>
        b.entries[0]!.keep.severity - a.entries[0]!.keep.severity ||
        b.entries.length - a.entries.length ||
        a.failureType.localeCompare(b.failureType),
    );
  const out: Curation = { batches: [], duplicates: [], deferred: [] };
  candidates.forEach(({ failureType, entries }, i) => {
    const taken = i < opts.maxBatches ? entries.slice(0, maxSize) : [];
    for (const e of entries.slice(taken.length)) out.deferred.push(e.keep.id, ...e.dups.map((d) => d.id));
    if (!taken.length) return;
    const batchKey = `${opts.runKey}:${failureType}`;
    out.batches.push({ batchKey, failureType, evidenceIds: taken.map((e) => e.keep.id).sort((a, b) => a - b) });
    for (const e of taken) for (const d of e.dups) out.duplicates.push({ id: d.id, of: e.keep.id, batchKey });
  });
  out.deferred.sort((a, b) => a - b);
  return out;
}

/** `30m`, `24h`, `7d`, `2w` in milliseconds (forge failures ls --since). */
export function sinceMs(text: string): number | undefined {
  const m = /^\s*(\d+)\s*(m|h|d|w)\s*$/i.exec(text);
  if (!m) return undefined;
  const unit = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[m[2]!.toLowerCase() as 'm' | 'h' | 'd' | 'w'];
  const ms = Number(m[1]) * unit;
  return ms > 0 ? ms : undefined;
}
