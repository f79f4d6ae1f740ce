import { ApplicationFailure, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import { composeAnswer, sandboxProbeCommand, taskInputSchema, type TaskInput, type TaskPhase, type TaskProgress, type TaskResult } from '../domain/task.ts';
import type { ControlActivities, SandboxActivities } from '../activities/types.ts';
import { progressQuery } from './definitions.ts';

const control = proxyActivities<ControlActivities>({
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '10 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 5 },
});

/**
 * A task: plan with the model, record the plan, prove the sandbox, answer.
 * Every side effect is an activity keyed by workflow id + step, so a worker killed at any point
 * resumes without writing anything twice.
 */
export async function taskWorkflow(raw: TaskInput): Promise<TaskResult> {
  const parsed = taskInputSchema.safeParse(raw);
  if (!parsed.success) {
    throw ApplicationFailure.nonRetryable(`invalid task input: ${parsed.error.issues.map((i) => i.message).join('; ')}`, 'InvalidTaskInput');
  }
  const input = parsed.data;
  const { workflowId } = workflowInfo();
  const sandbox = proxyActivities<SandboxActivities>({
    taskQueue: input.sandboxQueue,
    startToCloseTimeout: '2 minutes',
    heartbeatTimeout: '10 seconds',
    retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 5 },
  });

  const progress: TaskProgress = { phase: 'starting', history: [] };
  const enter = (phase: TaskPhase, note?: string) => {
    progress.phase = phase;
    progress.history.push({ phase, at: new Date().toISOString(), note });
  };
  setHandler(progressQuery, () => progress);

  try {
    enter('starting');
    await control.startTask({ workflowId, task: input.task });
    enter('planning');
    const plan = await control.planTask({ task: input.task });
    progress.plan = plan;
    enter('recording');
    await control.recordStep({ workflowId, step: 'plan', output: plan });
    enter('sandbox');
    const run = await sandbox.sandboxExec({ command: sandboxProbeCommand(plan.steps.length), timeoutMs: 20_000 });
    const sandboxRun = { exitCode: run.exitCode, stdout: run.stdout, durationMs: run.durationMs };
    await control.recordStep({ workflowId, step: 'sandbox', output: sandboxRun });
    enter('answering');
    const answer = composeAnswer(plan, sandboxRun);
    const result: TaskResult = { workflowId, task: input.task, answer, plan, sandbox: sandboxRun };
    await control.completeTask({ workflowId, result });
    enter('completed');
    return result;
  } catch (err) {
    enter('failed', err instanceof Error ? err.message : String(err));
    await control.failTask({ workflowId, error: err instanceof Error ? err.message : String(err) });
    throw err;
  }
}
