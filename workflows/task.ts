import { executeChild, setHandler, workflowInfo } from '@temporalio/workflow';
import type { ForgeOutcome } from '../domain/forge.ts';
import type { Plan } from '../domain/plan.ts';
import { paramsFit } from '../domain/ranking.ts';
import {
  sandboxProbeCommand,
  type TaskInput,
  type TaskProgress,
  type TaskResult,
  type ToolCallOutcome,
  taskInputSchema,
} from '../domain/task.ts';
import { harness } from '../harness/index.ts';
import { databaseWork, llmCalls, sandboxJobs } from './activities.ts';
import { approvals } from './approval.ts';
import { parseWorkflowInput } from './common.ts';
import { progressQuery } from './definitions.ts';
import { forgeWorkflow } from './forge.ts';
import { track } from './progress.ts';

const { fillToolInput, planTask } = llmCalls;
const { completeTask, discoverTool, failTask, recordStep, recordToolCall, startTask, toolGate } = databaseWork;

/**
 * A task: plan → (when a tool is needed) discover → forge if none fits → trust gate and approval →
 * execute in the sandbox → meter and audit → answer. Without a tool need, it proves the sandbox.
 * Every side effect is an activity keyed by workflow id + step, so a worker killed at any point
 * resumes without writing anything twice.
 */
export async function taskWorkflow(raw: TaskInput): Promise<TaskResult> {
  const input = parseWorkflowInput(taskInputSchema, raw, 'task input', 'InvalidTaskInput');
  const { workflowId } = workflowInfo();
  const { sandboxExec, sandboxRunRegisteredTool } = sandboxJobs(input.sandboxQueue);

  const progress: TaskProgress = { phase: 'starting', history: [] };
  const { enter, note, guarded } = track(progress);
  const approval = approvals(workflowId);
  setHandler(progressQuery, () => ({ ...progress, pendingApproval: approval.pendingId() }));

  try {
    enter('starting');
    await startTask({ workflowId, task: input.task });
    enter('planning');
    const plan = await guarded(() => planTask({ task: input.task }));
    progress.plan = plan;
    enter('recording');
    await recordStep({ workflowId, step: 'plan', output: plan });

    let tool: ToolCallOutcome | undefined;
    if (plan.needsTool) {
      tool = await useTool(plan, input.task);
    } else {
      enter('sandbox');
      const run = await guarded(() => sandboxExec({ command: sandboxProbeCommand(plan.steps.length), timeoutMs: 20_000 }));
      const probe = { exitCode: run.exitCode, stdout: run.stdout, durationMs: run.durationMs };
      await recordStep({ workflowId, step: 'sandbox', output: probe });
      progress.sandbox = probe;
    }
    enter('answering');
    const result: TaskResult = {
      workflowId,
      task: input.task,
      plan,
      answer: harness.prompts.answer(plan, progress.sandbox, tool),
      sandbox: progress.sandbox,
      tool,
    };
    await completeTask({ workflowId, result });
    enter('completed');
    return result;
  } catch (err) {
    enter('failed', err instanceof Error ? err.message : String(err));
    await failTask({ workflowId, error: err instanceof Error ? err.message : String(err) });
    throw err;
  }

  /** The tool's trust gate, and the input the model fills for it from the task. */
  async function prepare(name: string) {
    const gate = await toolGate({ name });
    const filled = await guarded(() =>
      fillToolInput({ task: input.task, tool: { name: gate.name, description: gate.description, inputSchema: gate.inputSchema } }),
    );
    return { gate, filled };
  }

  async function useTool(plan: Plan, task: string): Promise<ToolCallOutcome> {
    const need = plan.needsTool!;
    enter('discovering', need.name);
    const discovery = await discoverTool({ query: `${need.name.replace(/_/g, ' ')} ${need.description}` });
    await recordStep({ workflowId, step: 'discovery', output: discovery });
    let name = discovery.decision.action === 'forge' ? undefined : discovery.decision.tool;
    let prepared = name ? await prepare(name) : undefined;

    // A medium match is reused only when the arguments the task supplies fit its parameters.
    if (prepared && discovery.decision.similarity < harness.policy.ranking.reuseAt) {
      const fit = paramsFit(prepared.gate.inputSchema, prepared.filled.input);
      if (!fit.fit) {
        note(`${name} does not fit (missing ${fit.missing.join(', ') || '-'}, unknown ${fit.unknown.join(', ') || '-'}): forging instead`);
        name = prepared = undefined;
      }
    }
    if (name && discovery.decision.action === 'confirm') {
      enter('awaiting-approval', `confirm reuse of ${name}`);
      const ok = await approval.request(
        { kind: 'confirm', tool: name, summary: `use ${name} for: ${need.description.slice(0, 200)} (${discovery.decision.reason})` },
        harness.policy.approval.confirmReuseWait,
      );
      if (!ok.approved) name = prepared = undefined;
    }
    if (!name || !prepared) {
      enter('forging', need.name);
      const outcome: ForgeOutcome = await executeChild(forgeWorkflow, {
        workflowId: `${workflowId}.forge`,
        // The plan's name only helped discovery; the spec step names the tool it writes.
        args: [{ need: need.description, sandboxQueue: input.sandboxQueue }],
      });
      if (outcome.status !== 'registered') {
        return { tool: need.name, status: 'not-run', reason: `no tool fits and forging one failed: ${outcome.reason}` };
      }
      name = outcome.name;
      prepared = await prepare(name);
    }

    const { gate, filled } = prepared;
    if (gate.approval.blocked) return { tool: name, version: gate.version, status: 'not-run', reason: gate.approval.reason };
    if (gate.approval.needed) {
      enter('awaiting-approval', gate.approval.reason);
      const ok = await approval.request(
        {
          kind: gate.destructive ? 'destructive' : 'write',
          tool: name,
          summary: `${name} v${gate.version} with ${JSON.stringify(filled.input).slice(0, 300)} — ${gate.approval.reason}`,
          request: filled.input,
        },
        harness.policy.approval.callWait,
      );
      if (!ok.approved) {
        return {
          tool: name,
          version: gate.version,
          status: 'not-run',
          reason: ok.timedOut
            ? `nobody approved the write within ${harness.policy.approval.callWait}`
            : `${ok.by ?? 'a person'} rejected the call`,
        };
      }
    }

    enter('executing', `${name} v${gate.version}`);
    const run = await guarded(() => sandboxRunRegisteredTool({ name: gate.name, version: gate.version, input: filled.input }));
    const error = run.ok ? undefined : (run.reason ?? `exit ${run.exitCode}`);
    await recordToolCall({
      workflowId,
      tool: gate.name,
      version: gate.version,
      input: filled.input,
      output: run.output,
      success: run.ok,
      error,
      latencyMs: run.durationMs,
      reasoning: filled.reasoning,
      task,
    });
    return {
      tool: gate.name,
      version: gate.version,
      status: run.ok ? 'succeeded' : 'failed',
      input: filled.input,
      output: run.output,
      reason: error,
    };
  }
}
