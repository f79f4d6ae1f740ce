import { type AgentLimits, agentLimitsSchema } from '../domain/agent.ts';
import { InvalidInputError } from '../domain/errors.ts';
import { type TaskInput, type TaskPhase, type TaskProgress, type TaskResult, taskInputSchema } from '../domain/task.ts';

export type { TaskResult };

import { forgeProgressQuery, progressQuery } from '../workflows/definitions.ts';
import type { Session } from './context.ts';
import { cycleHandle, type StartedCycle, startCycle } from './cycles.ts';
import { type CycleEnd, followCycle } from './follow.ts';
import { outsideEndOf, reconcileQuietly } from './reconcile.ts';

/**
 * Starts a task workflow for a task in a person's words (validated here, and again in the workflow).
 * With a session id the task continues that conversation (sees its earlier exchanges) or opens it.
 */
export async function startTask(session: Session, task: string, limits?: TaskInput['limits'], sessionId?: string): Promise<StartedCycle> {
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

export interface TaskFollowHooks {
  onProgress?: (progress: FollowedTaskProgress) => void;
  /** once, when the task has waited 5 s and no worker polls the queue it waits on */
  onNoWorker?: (taskQueue: string) => void;
}

/** Follows a started task to its end, reporting its progress and a missing worker on the way. */
export async function followTask(session: Session, started: StartedCycle, hooks: TaskFollowHooks = {}): Promise<CycleEnd<TaskResult>> {
  const handle = await cycleHandle(session, 'task', started);
  const client = await session.temporal();
  const queue = session.cfg.FORGE_TASK_QUEUE;
  const since = Date.now();
  let warned = false;
  const end = await followCycle<TaskResult, FollowedTaskProgress>(handle, progressQuery, {
    onProgress: hooks.onProgress,
    enrich: (progress) =>
      withForgeChildApproval(
        progress,
        async () =>
          ((await handle.describe()).raw.pendingChildren ?? []).map((c) => ({
            workflowId: c.workflowId ?? '',
            runId: c.runId ?? undefined,
            workflowType: c.workflowTypeName ?? undefined,
          })),
        (child) => client.workflow.getHandle(child.workflowId, child.runId).query(forgeProgressQuery),
      ),
    async onPoll() {
      // app/stack.ts brings dockerode and esbuild with it: loaded only when a task has waited this long.
      if (warned || Date.now() - since <= 5000 || (await (await import('./stack.ts')).hasPollers(client, queue))) return;
      warned = true;
      hooks.onNoWorker?.(queue);
    },
  });
  return end.ok ? end : endedFromOutside(session, started.workflowId, end);
}

/**
 * A followed task whose workflow did not return: when it was ended from outside, its ledger row
 * records that now (not when someone next reads it) and the end says how and why, in place of the
 * SDK's bare "Workflow execution terminated".
 */
async function endedFromOutside<R>(session: Session, workflowId: string, end: CycleEnd<R> & { ok: false }): Promise<CycleEnd<R>> {
  await reconcileQuietly(session, { workflowIds: [workflowId] });
  const outside = await outsideEndOf(session, workflowId).catch(() => undefined);
  if (!outside || outside.status === 'failed') return end;
  return { ok: false, error: outside.reason, ended: outside.status };
}
