import type { Client } from '@temporalio/client';
import { type ClosedWorkflow, type OutsideEnd, outsideEnd } from '../domain/outside-end.ts';
import type { Sql } from '../services/db.ts';
import { log } from '../services/log.ts';
import { type OpenLedgerRow, openLedgerRows, recordOutsideEnd } from '../services/runs/outside-ends.ts';
import type { Session } from './context.ts';
import { withDb } from './db.ts';
import type { CycleEnd } from './follow.ts';

/** One row whose cycle Temporal says ended, as it was recorded. */
export type ReconciledEnd = OpenLedgerRow & OutsideEnd;

/** Rows compared per pass: the oldest open ones; a later read takes the rest. */
const MAX_ROWS = 100;
/** Describes in flight at once: a read stays quick without flooding the server. */
const PARALLEL = 4;

/**
 * Makes the ledgers (tasks, forge runs, improve cycles, evolve candidates, pending approvals) tell
 * the truth about cycles that ended from outside: every row still marked open is compared with
 * Temporal's describe of its workflow (an improve row: of its own run), and one whose workflow is
 * closed (terminated, cancelled, timed out, or failed without its own record) gets that end and its
 * cause (an approval: expired, since nobody waits for it; an evolve candidate's consent likewise).
 * Called where a ledger is read (forge tasks, forge sessions, forge budget, forge approvals, forge
 * evolve, forge improve --wait, the dashboard, MCP get_result) and by forge up, rather than on a
 * timer: nothing to run or keep alive, and a person never reads a stale row. Cheap: one indexed query when nothing is open, one describe
 * per open row otherwise. Safe: a workflow Temporal says is running is left alone, the write only
 * touches a row still open, and a workflow Temporal does not know (its history deleted after the
 * retention period, or another Temporal than the one it ran on) is left as it is, never guessed.
 */
export async function reconcileLedgers(session: Session, opts: ReconcileOptions = {}): Promise<ReconciledEnd[]> {
  const { sql, ...only } = opts;
  if (!sql) return withDb(session.cfg, (own) => reconcileLedgers(session, { ...only, sql: own }));
  const open = await openLedgerRows(sql, { limit: MAX_ROWS, ...only });
  if (!open.length) return [];
  const client = await session.temporal();
  const ends = await inBatches(open, PARALLEL, async (row) => {
    const closed = await closedWorkflow(client, row.workflowId, row.runId);
    const end = closed && outsideEnd(closed);
    return end && (await recordOutsideEnd(sql, row, end)) ? { ...row, ...end } : undefined;
  });
  const recorded = ends.filter((e): e is ReconciledEnd => e !== undefined);
  if (recorded.length) log.info('ledger rows ended from outside recorded', { rows: recorded.map((r) => `${r.workflowId}: ${r.status}`) });
  return recorded;
}

export interface ReconcileOptions {
  /** only these workflows' rows (a task being shown; an improve id: each of its open runs), instead of every open row */
  workflowIds?: string[];
  /** a pool the caller holds (a server's); else a short connection of its own */
  sql?: Sql;
}

/**
 * For a read that must not fail because Temporal is down (the ledger is still worth showing as
 * it is): the reconciliation, or nothing, with why in the log.
 */
export async function reconcileQuietly(session: Session, opts: ReconcileOptions = {}): Promise<ReconciledEnd[]> {
  return reconcileLedgers(session, opts).catch((err: Error) => {
    log.warn('ledger not compared with Temporal', { error: err.message });
    return [];
  });
}

/**
 * How a workflow ended from outside (terminated, cancelled, timed out, failed), in the ledger's
 * words, or undefined while it runs, once it completed, or when Temporal does not know it: what a
 * surface that followed the cycle to a failed end says instead of the SDK's bare "terminated".
 * `runId` names the run, for a workflow id later cycles reuse (improve-<tool>); else the latest.
 */
export async function outsideEndOf(session: Session, workflowId: string, runId?: string): Promise<OutsideEnd | undefined> {
  const closed = await closedWorkflow(await session.temporal(), workflowId, runId);
  return closed && outsideEnd(closed);
}

/**
 * A followed cycle whose workflow did not return: when it was ended from outside, its ledger row
 * records that now (not when someone next reads it) and the end says how and why, in place of the
 * SDK's bare "Workflow execution terminated".
 */
export async function endedFromOutside<R>(
  session: Session,
  cycle: { workflowId: string; runId?: string },
  end: CycleEnd<R> & { ok: false },
): Promise<CycleEnd<R>> {
  await reconcileQuietly(session, { workflowIds: [cycle.workflowId] });
  const outside = await outsideEndOf(session, cycle.workflowId, cycle.runId).catch(() => undefined);
  if (!outside || outside.status === 'failed') return end;
  return { ok: false, error: outside.reason, ended: outside.status };
}

async function inBatches<T, R>(items: T[], size: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return out;
}

/** Durations as Temporal gives them (google.protobuf.Duration), in words. */
function durationText(d: { seconds?: unknown; nanos?: number | null } | null | undefined): string | undefined {
  const s = Number(d?.seconds ?? 0) + (d?.nanos ?? 0) / 1e9;
  if (!s) return undefined;
  return s % 3600 === 0 ? `${s / 3600} h` : s % 60 === 0 ? `${s / 60} min` : `${s} s`;
}

/**
 * What Temporal says of the workflow (that run of it, given a run id), when it is closed; undefined
 * while it runs or when Temporal does not know it. The close event (and, for a cancellation, the
 * request before it) are read from the end of its history: one page, newest first.
 */
async function closedWorkflow(client: Client, workflowId: string, runId?: string): Promise<ClosedWorkflow | undefined> {
  const described = await client.workflow
    .getHandle(workflowId, runId)
    .describe()
    .catch(() => undefined);
  if (!described || described.status.name === 'RUNNING') return undefined;
  const closed: ClosedWorkflow = { status: described.status.name, ...(described.closeTime ? { closedAt: described.closeTime } : {}) };
  if (described.status.name === 'TIMED_OUT') {
    const config = described.raw.executionConfig;
    const run = durationText(config?.workflowRunTimeout);
    const execution = durationText(config?.workflowExecutionTimeout);
    // Temporal copies an execution timeout into the run timeout when none is given: the execution's is the one set.
    closed.timeout =
      execution && (!run || run === execution)
        ? `workflow execution timeout of ${execution}`
        : run
          ? `workflow run timeout of ${run}`
          : undefined;
    return closed;
  }
  if (!['TERMINATED', 'CANCELLED', 'FAILED'].includes(described.status.name)) return closed;
  const history = await client.workflowService
    .getWorkflowExecutionHistoryReverse({
      namespace: client.options.namespace,
      execution: { workflowId, runId: described.runId },
      maximumPageSize: 50,
    })
    .catch(() => undefined);
  for (const e of history?.history?.events ?? []) {
    const terminated = e.workflowExecutionTerminatedEventAttributes;
    if (terminated) return { ...closed, reason: terminated.reason ?? undefined, identity: terminated.identity || undefined };
    const failed = e.workflowExecutionFailedEventAttributes;
    if (failed) return { ...closed, failure: failed.failure?.message ?? undefined };
    const cancelRequested = e.workflowExecutionCancelRequestedEventAttributes;
    if (cancelRequested) return { ...closed, reason: cancelRequested.cause || undefined, identity: cancelRequested.identity || undefined };
  }
  return closed;
}
