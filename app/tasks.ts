import type { WorkflowHandle } from '@temporalio/client';
import { type AgentLimits, agentLimitsSchema } from '../domain/agent.ts';
import { InvalidInputError } from '../domain/errors.ts';
import { TaskNotFoundError } from '../domain/evidence.ts';
import { checkedSessionId, type TaskStatus, taskStatus } from '../domain/session.ts';
import { type TaskInput, type TaskPhase, type TaskProgress, type TaskResult, taskInputSchema } from '../domain/task.ts';
import { findTaskRow, recentTaskRows } from '../services/runs/tasks.ts';
import { forgeProgressQuery, progressQuery } from '../workflows/definitions.ts';
import type { Session } from './context.ts';
import { cycleToFollow, inputText, progressWithin, unbegunCycle } from './cycle-view.ts';
import { cycleHandle, type StartedCycle, startCycle, workflowUiUrl } from './cycles.ts';
import { withDb } from './db.ts';
import { type CycleEnd, followCycle } from './follow.ts';
import { endedFromOutside, reconcileQuietly } from './reconcile.ts';
import { type StallHooks, stallWatch } from './worker-watch.ts';

export type { TaskResult };

/**
 * Starts a task workflow for a task in a person's words (validated here, and again in the workflow).
 * With a session id the task continues that conversation (sees its earlier exchanges) or opens it.
 */
export async function startTask(session: Session, task: string, limits?: TaskInput['limits'], sessionId?: string): Promise<StartedCycle> {
  if (sessionId !== undefined) checkedSessionId(sessionId);
  const parsed = taskInputSchema.safeParse({
    task,
    sandboxQueue: session.cfg.FORGE_SANDBOX_QUEUE,
    ...(limits ? { limits } : {}),
    ...(sessionId !== undefined ? { sessionId } : {}),
  });
  if (!parsed.success)
    throw new InvalidInputError(
      'task',
      parsed.error.issues.map((i) => (i.path[0] === 'limits' ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; '),
    );
  // The task reads its session's earlier tasks as the ledger has them: one ended from outside reads so, not as still running.
  if (sessionId !== undefined) await reconcileQuietly(session);
  return startCycle(session, 'task', [parsed.data]);
}

/**
 * The range and default of each bound on the agent loop, read from the schema the workflow checks
 * them with, so a surface can say what an option takes without a second copy of the numbers.
 */
export function taskLimitRanges(): Record<keyof AgentLimits, { min: number; max: number; default: number }> {
  const range = (key: keyof AgentLimits) => {
    const field = agentLimitsSchema.shape[key];
    const number = field.unwrap();
    return { min: number.minValue ?? 1, max: number.maxValue ?? Number.MAX_SAFE_INTEGER, default: field.parse(undefined) };
  };
  return { maxTurns: range('maxTurns'), maxToolCalls: range('maxToolCalls'), maxTokens: range('maxTokens') };
}

/**
 * A task's progress as a surface follows it: the task's own, plus, while the task waits on a forge
 * child that waits for a person (forging past the daily budget), that approval and the child's
 * state. The task's own query cannot say it: the approval is the child's, and a workflow cannot
 * query its child.
 */
export type FollowedTaskProgress = TaskProgress & {
  /** the child cycle the pending approval is for: its id, its phase and the phase's note */
  waitingIn?: { workflowId: string; phase: string; note?: string };
};

/** What a task's forge child answers, as far as its wait for a person goes. */
type ForgeWait = { phase: string; pendingApproval?: string; history: { phase: string; note?: string }[] };

/** The phases a task runs a forge child in: a forge_tool call, or an explicit "create a tool" request while discovering. */
const FORGING: ReadonlySet<TaskPhase> = new Set<TaskPhase>(['forging', 'discovering']);

/**
 * The task's progress with its forge child's pending approval, when the task itself waits for
 * none and a running forge child does (asked only while the task forges: a describe and a query
 * per poll). The children and their query are passed in, so the rule is tested without Temporal.
 */
export async function withForgeChildApproval(
  progress: TaskProgress,
  children: () => Promise<{ workflowId: string; runId?: string; workflowType?: string }[]>,
  queryForge: (child: { workflowId: string; runId?: string }) => Promise<ForgeWait | undefined>,
): Promise<FollowedTaskProgress> {
  if (progress.pendingApproval || !FORGING.has(progress.phase)) return progress;
  for (const child of await children().catch(() => [])) {
    if (child.workflowType !== 'forgeWorkflow') continue;
    const forge = await queryForge(child).catch(() => undefined);
    if (!forge?.pendingApproval) continue;
    const entered = [...forge.history].reverse().find((h) => h.phase === forge.phase);
    return {
      ...progress,
      pendingApproval: forge.pendingApproval,
      waitingIn: { workflowId: child.workflowId, phase: forge.phase, ...(entered?.note ? { note: entered.note } : {}) },
    };
  }
  return progress;
}

export interface TaskFollowHooks extends StallHooks {
  onProgress?: (progress: FollowedTaskProgress) => void;
}

/** The task's child workflows still running, as Temporal's describe lists them. */
async function pendingForgeChildren(handle: WorkflowHandle): Promise<{ workflowId: string; runId?: string; workflowType?: string }[]> {
  return ((await handle.describe()).raw.pendingChildren ?? []).map((c) => ({
    workflowId: c.workflowId ?? '',
    runId: c.runId ?? undefined,
    workflowType: c.workflowTypeName ?? undefined,
  }));
}

async function queryForgeChild(session: Session, child: { workflowId: string; runId?: string }): Promise<ForgeWait> {
  return (await session.temporal()).workflow.getHandle(child.workflowId, child.runId).query(forgeProgressQuery);
}

/** Follows a started task to its end, reporting its progress and a missing worker on the way. */
export async function followTask(session: Session, started: StartedCycle, hooks: TaskFollowHooks = {}): Promise<CycleEnd<TaskResult>> {
  const handle = await cycleHandle(session, 'task', started);
  const watch = stallWatch<FollowedTaskProgress>(
    session,
    started,
    hooks,
    (progress) => `${progress.history.length}:${progress.calls.length}:${progress.pendingApproval ?? ''}`,
  );
  const end = await followCycle<TaskResult, FollowedTaskProgress>(handle, progressQuery, {
    onProgress: hooks.onProgress,
    onAnswer: watch.onAnswer,
    enrich: (progress) =>
      withForgeChildApproval(
        progress,
        () => pendingForgeChildren(handle),
        (child) => queryForgeChild(session, child),
      ),
    onPoll: watch.onPoll,
  });
  return end.ok ? end : endedFromOutside(session, { workflowId: started.workflowId }, end);
}

/** A task as a person reads it, whether it ended or not: the ledger's row, and while it runs, where it is. */
export interface TaskView {
  workflowId: string;
  task: string;
  status: TaskStatus;
  uiUrl: string | null;
  sessionId?: string;
  /** its place in the session */
  position?: number;
  /** the stored result, once the task ended on its own (completed, failed, stopped) */
  result?: TaskResult;
  /** why it ended without a result: its workflow failed, or was terminated, cancelled or timed out (with the cause) */
  error?: string;
  /** while it runs: its phase, model turn, calls so far and what it waits for (absent until a worker answers) */
  progress?: FollowedTaskProgress;
  createdAt?: string;
  updatedAt?: string;
}

/**
 * One task by its workflow id, as it stands: a finished one from the ledger (compared with
 * Temporal first, so one ended from outside reads so), a running one with its live progress, and
 * one started but not picked up by any worker yet as running with no progress.
 */
export async function showTask(session: Session, workflowId: string): Promise<TaskView> {
  const { cfg } = session;
  await reconcileQuietly(session, { workflowIds: [workflowId] });
  const row = await withDb(cfg, (sql) => findTaskRow(sql, workflowId));
  const uiUrl = workflowUiUrl(cfg, workflowId);
  if (!row) return notStartedTask(session, workflowId, uiUrl);
  const view: TaskView = {
    workflowId,
    task: row.task,
    status: taskStatus(row),
    uiUrl,
    ...(row.session_id ? { sessionId: row.session_id, position: row.position ?? undefined } : {}),
    ...(row.result ? { result: row.result } : {}),
    ...(row.error ? { error: row.error } : {}),
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
  if (view.status !== 'running') return view;
  const progress = await taskProgress(session, workflowId);
  return progress ? { ...view, progress } : view;
}

/** No ledger row: a task Temporal has but no worker has begun (running, no progress), or no task at all. */
async function notStartedTask(session: Session, workflowId: string, uiUrl: string | null): Promise<TaskView> {
  const { input, outside } = await unbegunCycle(session, workflowId, {
    workflowType: 'taskWorkflow',
    what: 'task',
    listedBy: 'forge tasks',
    notFound: () => new TaskNotFoundError(workflowId),
  });
  return {
    workflowId,
    task: inputText(input, 'task') ?? '(its words are in its start event)',
    status: outside?.status ?? 'running',
    uiUrl,
    ...(outside ? { error: outside.reason } : {}),
  };
}

/** The running task's progress, or undefined when no worker answers in time. */
async function taskProgress(session: Session, workflowId: string): Promise<FollowedTaskProgress | undefined> {
  const handle = (await session.temporal()).workflow.getHandle(workflowId);
  const progress = await progressWithin(handle, progressQuery);
  return (
    progress &&
    withForgeChildApproval(
      progress,
      () => pendingForgeChildren(handle),
      (c) => queryForgeChild(session, c),
    )
  );
}

/** Recent tasks, newest first, each as it stands (compared with Temporal first); `total` counts them all. */
export async function listTasks(session: Session, opts: { limit: number }): Promise<{ tasks: TaskView[]; total: number }> {
  if (!Number.isInteger(opts.limit) || opts.limit < 1 || opts.limit > 1000)
    throw new InvalidInputError('limit', `expected a whole number from 1 to 1000, got ${opts.limit}`);
  await reconcileQuietly(session);
  const { rows, total } = await withDb(session.cfg, (sql) => recentTaskRows(sql, opts.limit));
  return {
    tasks: rows.map((row) => ({
      workflowId: row.workflow_id,
      task: row.task,
      status: taskStatus(row),
      uiUrl: workflowUiUrl(session.cfg, row.workflow_id),
      ...(row.session_id ? { sessionId: row.session_id, position: row.position ?? undefined } : {}),
      ...(row.result ? { result: row.result } : {}),
      ...(row.error ? { error: row.error } : {}),
      createdAt: row.created_at.toISOString(),
      updatedAt: row.updated_at.toISOString(),
    })),
    total,
  };
}

/** A task to follow (forge tasks show <id> --wait): what following needs, from its first run on. */
export const taskToFollow = (session: Session, view: TaskView): Promise<StartedCycle> =>
  cycleToFollow(session, view.workflowId, view.uiUrl);
