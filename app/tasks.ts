import { type AgentLimits, agentLimitsSchema } from '../domain/agent.ts';
import { InvalidInputError } from '../domain/errors.ts';
import { type TaskInput, type TaskProgress, type TaskResult, taskInputSchema } from '../domain/task.ts';

export type { TaskResult };

import { progressQuery } from '../workflows/definitions.ts';
import type { Session } from './context.ts';
import { cycleHandle, type StartedCycle, startCycle } from './cycles.ts';
import { type CycleEnd, followCycle } from './follow.ts';

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

export interface TaskFollowHooks {
  onProgress?: (progress: TaskProgress) => void;
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
  return followCycle<TaskResult, TaskProgress>(handle, progressQuery, {
    onProgress: hooks.onProgress,
    async onPoll() {
      // app/stack.ts brings dockerode and esbuild with it: loaded only when a task has waited this long.
      if (warned || Date.now() - since <= 5000 || (await (await import('./stack.ts')).hasPollers(client, queue))) return;
      warned = true;
      hooks.onNoWorker?.(queue);
    },
  });
}
