import { z } from 'zod';
import { type AgentCall, type AgentLimits, agentLimitsSchema } from './agent.ts';
import { sessionIdSchema } from './session.ts';

/** What a client hands Forge. Validated at the client (clear CLI error) and again in the workflow. */
export const taskInputSchema = z.strictObject({
  task: z.string().trim().min(3, 'describe the task in at least a few words').max(4000, 'keep the task under 4000 characters'),
  /** the sandbox task queue; the client fills it from FORGE_SANDBOX_QUEUE */
  sandboxQueue: z.string().min(1).default('forge-sandbox'),
  /** bounds on the agent loop; each defaults when absent */
  limits: agentLimitsSchema.partial().optional(),
  /** continue this session: the task sees its earlier exchanges, and joins it (created by its first task) */
  sessionId: sessionIdSchema.optional(),
});
export type TaskInput = z.input<typeof taskInputSchema>;

export const taskPhases = [
  'starting',
  'discovering',
  'thinking',
  'calling',
  'searching',
  'forging',
  'awaiting-approval',
  'awaiting-answer',
  'retrying',
  'diagnosing',
  'repairing',
  'escalated',
  'answering',
  'completed',
  'failed',
  'stopped',
] as const;
export type TaskPhase = (typeof taskPhases)[number];

export interface TaskProgress {
  phase: TaskPhase;
  history: { phase: TaskPhase; at: string; note?: string }[];
  turn: number;
  calls: AgentCall[];
  frozen?: boolean;
  pendingApproval?: string;
}

/** Which bound stopped a task, when one did. */
export type TaskBound = 'maxTurns' | 'maxToolCalls' | 'maxTokens';

export interface TaskResult {
  workflowId: string;
  task: string;
  /**
   * completed: the model answered and every tool it relied on last succeeded; failed: a call it
   * needed failed or was refused; stopped: a bound ended the loop before an answer.
   */
  status: 'completed' | 'failed' | 'stopped';
  /** the model's own answer in words (or, when stopped, what stopped it) */
  answer: string;
  calls: AgentCall[];
  turns: number;
  tokens: { input: number; output: number };
  stoppedBy?: TaskBound;
  /**
   * the bounds it ran under, defaults filled in: evidence keeps them, so a replay runs the task
   * under the same ones (absent from results stored before they were kept)
   */
  limits?: AgentLimits;
  /** tools forged while the task ran, in order */
  forged: string[];
  /** tools repaired while the task ran (a failed call, a new version, the call re-run) */
  repaired?: { tool: string; fromVersion: number; toVersion: number }[];
}

/**
 * The task's status from its calls: a tool whose last call failed or never ran leaves the task failed.
 * The model's slip (a tool it was not offered, input that did not fit) counts only while nothing
 * after it succeeded: a model that corrects itself has not failed the task.
 */
export function outcomeOf(calls: readonly AgentCall[]): { status: 'completed' | 'failed'; reason?: string } {
  const last = new Map<string, AgentCall>();
  calls.forEach((c, i) => {
    if (!c.slip || !calls.slice(i + 1).some((later) => later.status === 'succeeded')) last.set(c.tool, c);
  });
  const bad = [...last.values()].find((c) => c.status !== 'succeeded');
  return bad ? { status: 'failed', reason: `${bad.tool}: ${bad.reason ?? bad.status}` } : { status: 'completed' };
}
