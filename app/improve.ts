import type { QueryDefinition } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import { z } from 'zod';
import { ForgeError, InvalidInputError } from '../domain/errors.ts';
import {
  type GateReport,
  gateReportSchema,
  type ImproveAttempt,
  type ImproveOutcome,
  type ImproveStatus,
  improveRequestSchema,
  improveStatusSchema,
} from '../domain/improve.ts';
import { OUTSIDE_END_STATUSES, type OutsideEndStatus } from '../domain/outside-end.ts';
import { ToolNotFoundError } from '../services/catalog/store.ts';
import { findImproveRow, type ImproveLedgerRow, latestImproveRow, recentImproveRows } from '../services/runs/improve-runs.ts';
import { improveProgressQuery } from '../workflows/definitions.ts';
import { improveWorkflowId } from '../workflows/improve.ts';
import type { Session } from './context.ts';
import { cycleToFollow, notACycleOf, progressWithin } from './cycle-view.ts';
import { cycleHandle, type StartedCycle, startCycle, workflowUiUrl } from './cycles.ts';
import { withDb } from './db.ts';
import { type CycleEnd, followCycle, settled } from './follow.ts';
import { endedFromOutside, outsideEndOf, reconcileQuietly } from './reconcile.ts';
import { cycleMoved, type StallHooks, stallWatch } from './worker-watch.ts';

export type ImproveProgressAnswer = typeof improveProgressQuery extends QueryDefinition<infer P> ? P : never;

export class ImproveAlreadyRunningError extends ForgeError {
  constructor(tool: string, workflowId: string, uiUrl: string | null) {
    super(
      `an improve cycle for ${tool} is already running (${workflowId})`,
      'IMPROVE_RUNNING',
      `wait for it to finish, or watch it${uiUrl ? ` at ${uiUrl}` : ` in the Temporal UI (workflow ${workflowId})`}`,
      { tool, workflowId },
    );
  }
}

/** `forge improve` on an archived tool: no longer offered or run, so there is nothing to improve. */
export class ImproveArchivedError extends ForgeError {
  constructor(tool: string, reason: string | null, replacedBy: string | null) {
    super(
      `${tool} is archived${reason ? ` (${reason})` : ''}: it is no longer offered or run, so there is nothing to improve`,
      'TOOL_ARCHIVED',
      replacedBy
        ? `improve its replacement: forge improve ${replacedBy}`
        : 'forge a replacement with: forge forge "<what the tool must do>"',
      { tool },
    );
  }
}

/** Starts a tool's improve cycle by hand (pinned tools included: a person asked). One per tool at a time. */
export async function startImprove(session: Session, ask: { tool: string; reason?: string; by?: string }): Promise<StartedCycle> {
  const parsed = improveRequestSchema.safeParse({
    tool: ask.tool,
    trigger: 'manual',
    reason: ask.reason,
    requestedBy: ask.by,
    sandboxQueue: session.cfg.FORGE_SANDBOX_QUEUE,
  });
  if (!parsed.success) {
    throw new InvalidInputError(
      'improve request',
      parsed.error.issues.map((i) => `${i.path.join('.') || 'tool'}: ${i.message}`).join('; '),
    );
  }
  // A name the catalog does not hold fails here, in words, not as a failed workflow.
  const known = await withDb(
    session.cfg,
    (sql) =>
      sql<{ status: string; archive_reason: string | null; replaced_by: string | null }[]>`
        select status, archive_reason, replaced_by from tools where name = ${ask.tool}`,
  );
  if (!known[0]) throw new ToolNotFoundError(ask.tool);
  // Refused before a workflow starts, as forge tools rollback refuses it: the cycle would only skip.
  if (known[0].status === 'archived') throw new ImproveArchivedError(ask.tool, known[0].archive_reason, known[0].replaced_by);
  try {
    return await startCycle(session, 'improve', [parsed.data], { toolName: ask.tool });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      const id = improveWorkflowId(ask.tool);
      throw new ImproveAlreadyRunningError(ask.tool, id, workflowUiUrl(session.cfg, id));
    }
    throw err;
  }
}

/** What a surface following an improve cycle is told: each progress answer, and (stalled) a queue nobody serves or a model nobody answers at. */
export interface ImproveFollowHooks extends StallHooks {
  onProgress?: (progress: ImproveProgressAnswer) => void;
}

/**
 * Follows an improve cycle to its end, reporting its progress and what holds it on the way; one
 * ended from outside (terminated, cancelled, timed out) says how, and its row records it.
 */
export async function followImprove(
  session: Session,
  started: StartedCycle,
  hooks: ImproveFollowHooks = {},
): Promise<CycleEnd<ImproveOutcome>> {
  const handle = await cycleHandle(session, 'improve', started);
  const watch = stallWatch<ImproveProgressAnswer>(session, started, hooks, cycleMoved);
  const end = await followCycle<ImproveOutcome, ImproveProgressAnswer>(handle, improveProgressQuery, {
    onProgress: hooks.onProgress,
    ...watch,
  });
  // The tool's next cycle reuses the workflow id: this one is its started run.
  return end.ok ? end : endedFromOutside(session, started, end);
}

/** The regression gate's stored report, as surfaces read it (forge tools history, forge improve show). */
export { type GateReport, gateReportSchema, type ImproveOutcome };

/** `forge improve show` of an id that names no improve cycle, or of a tool that has had none. */
export class ImproveNotFoundError extends ForgeError {
  constructor(id: string, tool?: string) {
    super(
      tool ? `${tool} has had no improve cycle` : `no improve cycle ${id} in the improve ledger`,
      'IMPROVE_NOT_FOUND',
      tool
        ? `forge improve ${tool} starts one; forge improve ls lists recent cycles`
        : 'use the id forge improve ls lists (improve-<tool>@<run id>), or a tool name for its latest cycle: forge improve ls',
      { id },
    );
  }
}

/** Where an improve cycle stands: running, what it came to, or how it was ended from outside. */
export type ImproveRunStatus = 'running' | ImproveStatus | OutsideEndStatus;

/** An improve cycle as a person reads it, whether it ended or not: its ledger row, and while it runs, where it is. */
export interface ImproveView {
  /** the cycle's key, `improve-<tool>@<run id>`: a tool's cycles share the workflow id */
  id: string;
  workflowId: string;
  runId?: string;
  tool: string;
  /** what started it: manual (forge improve), evaluator, degraded, task-failure, forge */
  trigger?: string;
  status: ImproveRunStatus;
  /** the run's page in the Temporal UI */
  uiUrl: string | null;
  /** why it was started (a person's --reason, a task's diagnosis) */
  reason?: string;
  /** what it came to, or how it was ended from outside */
  outcome?: string;
  fromVersion?: number;
  toVersion?: number;
  /** its rewrites, each passed by the gate or not (recorded when it ended) */
  attempts: ImproveAttempt[];
  /** the last gate's report */
  gate?: GateReport;
  /** while it runs: its phase, attempt and rewrites so far (absent until a worker answers) */
  progress?: ImproveProgressAnswer;
  createdAt?: string;
  updatedAt?: string;
}

const KEY = /^(improve-([a-z][a-z0-9_]{1,62}))@(.+)$/;
const WORKFLOW_ID = /^improve-([a-z][a-z0-9_]{1,62})$/;
const TOOL = /^[a-z][a-z0-9_]{1,62}$/;

const attemptSchema = z.object({ attempt: z.number(), passed: z.boolean(), summary: z.string() });
const reportSchema = z.object({
  outcome: z.string().optional(),
  gate: gateReportSchema.optional().catch(undefined),
  attempts: z.array(attemptSchema).optional().catch(undefined),
});

/** Whether the cycle is still going. */
export const improveIsOpen = (view: Pick<ImproveView, 'status'>): boolean => view.status === 'running';

function improveView(session: Session, row: ImproveLedgerRow): ImproveView {
  const [workflowId, runId] = row.workflow_id.split('@') as [string, string | undefined];
  const report = reportSchema.safeParse(row.report ?? {});
  const status = improveRunStatusSchema.safeParse(row.status);
  return {
    id: row.workflow_id,
    workflowId,
    ...(runId ? { runId } : {}),
    tool: row.tool,
    trigger: row.trigger,
    // no code writes another status; one would read as failed rather than break the listing
    status: status.success ? status.data : 'failed',
    uiUrl: workflowUiUrl(session.cfg, workflowId, runId),
    ...(row.reason ? { reason: row.reason } : {}),
    ...(report.success && report.data.outcome ? { outcome: report.data.outcome } : {}),
    ...(row.from_version !== null ? { fromVersion: row.from_version } : {}),
    ...(row.to_version !== null ? { toVersion: row.to_version } : {}),
    attempts: (report.success && report.data.attempts) || [],
    ...(report.success && report.data.gate ? { gate: report.data.gate } : {}),
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

const improveRunStatusSchema = z.enum(['running', ...improveStatusSchema.options, ...OUTSIDE_END_STATUSES]);

/**
 * One improve cycle as it stands, by its key (`improve-<tool>@<run id>`, as `forge improve ls`
 * lists it) or by its tool (`<tool>` or `improve-<tool>`: the tool's latest cycle): an ended one
 * from the ledger (compared with Temporal first, so one ended from outside reads so), a running one
 * with its live progress, one started but not begun by any worker as running with no progress. An
 * id of another kind of cycle is refused, naming the command that shows it.
 */
export async function showImprove(session: Session, id: string): Promise<ImproveView> {
  const key = KEY.exec(id);
  const tool = key ? undefined : (WORKFLOW_ID.exec(id)?.[1] ?? (TOOL.test(id) ? id : undefined));
  if (!key && !tool) return refuseOtherCycle(session, id);
  const workflowId = key?.[1] ?? improveWorkflowId(tool!);
  await reconcileQuietly(session, { workflowIds: [workflowId] });
  const row = await withDb(session.cfg, (sql) => (key ? findImproveRow(sql, id) : latestImproveRow(sql, tool!)));
  // The run Temporal has under the id (the one asked for, or the tool's latest): newer than any row when no worker has begun it.
  const described = await (await session.temporal()).workflow
    .getHandle(workflowId, key?.[3])
    .describe()
    .catch(() => undefined);
  const unbegun = described && described.type === 'improveWorkflow' && `${workflowId}@${described.runId}` !== row?.workflow_id;
  if (unbegun && (key || !row || described.startTime > row.created_at)) return notBegunImprove(session, workflowId, described.runId);
  if (!row) throw new ImproveNotFoundError(id, key ? undefined : tool);
  const view = improveView(session, row);
  if (!improveIsOpen(view)) return view;
  const progress = await progressWithin((await session.temporal()).workflow.getHandle(workflowId, view.runId), improveProgressQuery);
  return progress ? { ...view, progress } : view;
}

/** An id that is no improve cycle's: another kind of cycle (named, with its command), or nothing at all. */
async function refuseOtherCycle(session: Session, id: string): Promise<never> {
  const described = await (await session.temporal()).workflow
    .getHandle(id)
    .describe()
    .catch(() => undefined);
  if (described) throw notACycleOf(id, described.type, { what: 'improve cycle', listedBy: 'forge improve ls' });
  throw new ImproveNotFoundError(id);
}

/** An improve run Temporal has but whose ledger row no worker has written: running, or how it ended before any worker began it. */
async function notBegunImprove(session: Session, workflowId: string, runId: string): Promise<ImproveView> {
  const outside = await outsideEndOf(session, workflowId, runId).catch(() => undefined);
  return {
    id: `${workflowId}@${runId}`,
    workflowId,
    runId,
    tool: workflowId.replace(/^improve-/, ''),
    status: outside?.status ?? 'running',
    uiUrl: workflowUiUrl(session.cfg, workflowId, runId),
    ...(outside ? { outcome: outside.reason } : {}),
    attempts: [],
  };
}

/** Recent improve cycles, newest first, each as it stands (compared with Temporal first); `total` counts them all. */
export async function listImproves(session: Session, opts: { limit: number }): Promise<{ cycles: ImproveView[]; total: number }> {
  if (!Number.isInteger(opts.limit) || opts.limit < 1 || opts.limit > 1000)
    throw new InvalidInputError('limit', `expected a whole number from 1 to 1000, got ${opts.limit}`);
  await reconcileQuietly(session);
  const { rows, total } = await withDb(session.cfg, (sql) => recentImproveRows(sql, opts.limit));
  return { cycles: rows.map((row) => improveView(session, row)), total };
}

/** An improve cycle to follow (forge improve show <id> --wait): its own run (a row older than run keys: the id's latest). */
export async function improveToFollow(session: Session, view: ImproveView): Promise<StartedCycle> {
  if (!view.runId) return cycleToFollow(session, view.workflowId, view.uiUrl);
  return { workflowId: view.workflowId, runId: view.runId, uiUrl: view.uiUrl };
}

/**
 * How an ended improve cycle ended, as following it would have said: its run's result, read from
 * Temporal's history (with what the ledger does not keep: a model nobody could reach, an archived
 * tool's replacement), else, once Temporal no longer keeps it, its ledger row.
 */
export async function improveEnding(session: Session, view: ImproveView): Promise<CycleEnd<ImproveOutcome>> {
  const handle = (await session.temporal()).workflow.getHandle(view.workflowId, view.runId);
  const known =
    view.runId !== undefined &&
    (await handle.describe().then(
      () => true,
      (err: unknown) => {
        if (err instanceof WorkflowNotFoundError) return false;
        throw err;
      },
    ));
  if (known) {
    const end = await settled<ImproveOutcome>(handle.result());
    return end.ok ? end : endedFromOutside(session, { workflowId: view.workflowId, runId: view.runId }, end);
  }
  return improveLedgerEnding(view);
}

/** What an ended improve cycle's ledger row says it came to. */
export function improveLedgerEnding(view: ImproveView): CycleEnd<ImproveOutcome> {
  switch (view.status) {
    case 'running':
      throw new Error(`improveLedgerEnding: ${view.id} has not ended`);
    case 'terminated':
    case 'cancelled':
    case 'timed-out':
      return { ok: false, error: view.outcome ?? `${view.status} (no reason recorded)`, ended: view.status };
    default:
      return {
        ok: true,
        result: {
          status: view.status,
          tool: view.tool,
          reason: view.outcome ?? '(no reason recorded)',
          attempts: view.attempts,
          ...(view.fromVersion !== undefined ? { fromVersion: view.fromVersion } : {}),
          ...(view.toVersion !== undefined ? { toVersion: view.toVersion } : {}),
          ...(view.gate ? { gate: view.gate } : {}),
        },
      };
  }
}
