import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { ActivityFailure, ApplicationFailure, ParentClosePolicy, setHandler, sleep, startChild, workflowInfo } from '@temporalio/workflow';
import {
  type DirectCallInput,
  type DirectCallProgress,
  type DirectCallResult,
  directCallInputSchema,
  directCallReasoning,
} from '../domain/direct-call.ts';
import { isTransient } from '../domain/improve.ts';
import { CYCLE_KIND, TOOL_NAME } from '../domain/search-attributes.ts';
import { harness } from '../harness/index.ts';
import { bookkeeping, sandboxJobs } from './activities.ts';
import { approvals } from './approval.ts';
import { parseWorkflowInput } from './common.ts';
import { toolCallProgressQuery } from './definitions.ts';
import { improveWorkflow, improveWorkflowId } from './improve.ts';
import { track } from './progress.ts';

/**
 * One catalog tool called directly by a surface (an MCP client): the same steps a task's call
 * takes — trust gate → a person's approval for a write → the sandbox → metering and audit — as a
 * durable cycle of its own, so a call that waits for a person, a freeze or a dead worker is
 * neither lost nor run twice, and its result can be fetched later by the workflow id. There is no
 * model here to diagnose a failure, so a failed call is retried only when the failure looks
 * transient; a tool that falls below the evaluator's bar gets its improve cycle, as after a task's call.
 */
export async function toolCallWorkflow(raw: DirectCallInput): Promise<DirectCallResult> {
  const input = parseWorkflowInput(directCallInputSchema, raw, 'tool call', 'InvalidToolCall');
  const { workflowId } = workflowInfo();
  const { sandboxRunRegisteredTool } = sandboxJobs(input.sandboxQueue);
  const { recordToolCall, toolGate } = bookkeeping();
  const reasoning = directCallReasoning(input.source);
  const task = `${input.tool}, called directly over ${input.source.surface} by ${input.source.client}`;

  const progress: DirectCallProgress = { phase: 'gating', history: [], tool: input.tool };
  const { enter, guarded } = track(progress);
  const approval = approvals(workflowId);
  setHandler(toolCallProgressQuery, () => ({ ...progress, pendingApproval: approval.pendingId() }));

  let retries = 0;
  let improveStarted = false;
  const end = (result: Omit<DirectCallResult, 'workflowId' | 'tool' | 'retries'>): DirectCallResult => {
    enter(result.status, result.reason);
    return { workflowId, tool: input.tool, retries, ...result };
  };

  enter('gating');
  let gate: Awaited<ReturnType<typeof toolGate>>;
  try {
    gate = await toolGate({ name: input.tool, input: input.input });
  } catch (err) {
    const cause = err instanceof ActivityFailure ? err.cause : undefined;
    if (cause instanceof ApplicationFailure && cause.type === 'ToolMissing') return end({ status: 'not-run', reason: cause.message });
    throw err;
  }
  progress.version = gate.version;
  const base = { version: gate.version };
  if (gate.approval.blocked) return end({ ...base, status: 'not-run', reason: gate.approval.reason });
  if (gate.inputProblem) {
    // The caller's slip, judged on the host against the declared schema: audited, never metered.
    await recordToolCall({
      workflowId,
      callId: '1',
      tool: gate.name,
      version: gate.version,
      input: input.input,
      success: false,
      error: gate.inputProblem,
      latencyMs: 0,
      reasoning,
      task,
      inputRefused: true,
      source: input.source,
    });
    return end({ ...base, status: 'failed', reason: gate.inputProblem, slip: 'invalid-input' });
  }

  let decided: DirectCallResult['approval'];
  if (gate.approval.needed) {
    enter('awaiting-approval', gate.approval.reason);
    const ok = await approval.request(
      {
        kind: gate.destructive ? 'destructive' : 'write',
        tool: gate.name,
        summary: `${gate.name} v${gate.version} with ${JSON.stringify(input.input).slice(0, 300)}, called over ${input.source.surface} by ${input.source.client} — ${gate.approval.reason}`,
        request: input.input,
      },
      harness.policy.approval.callWait,
    );
    decided = { id: ok.id, decision: ok.approved ? 'approved' : ok.timedOut ? 'timed-out' : 'rejected', ...(ok.by ? { by: ok.by } : {}) };
    if (!ok.approved) {
      const reason = ok.timedOut
        ? `nobody approved the call within ${harness.policy.approval.callWait}`
        : `${ok.by ?? 'a person'} rejected the call`;
      return end({ ...base, status: 'not-run', reason, approval: decided });
    }
  }

  /** One sandboxed run, metered and audited under its own key. */
  const execute = async (callId: string) => {
    enter(callId === '1' ? 'running' : 'retrying', `${gate.name} v${gate.version}`);
    const run = await guarded(() => sandboxRunRegisteredTool({ name: gate.name, version: gate.version, input: input.input }));
    const error = run.ok ? undefined : (run.reason ?? `exit ${run.exitCode}`);
    enter('recording');
    const metered = await recordToolCall({
      workflowId,
      callId,
      tool: gate.name,
      version: gate.version,
      input: input.input,
      output: run.output,
      success: run.ok,
      error,
      latencyMs: run.durationMs,
      reasoning,
      task,
      source: input.source,
    });
    if (metered.improve && !improveStarted) {
      improveStarted = true;
      await startImprove(metered.improve);
    }
    return { ok: run.ok, output: run.output, error, latencyMs: run.durationMs };
  };

  let attempt = await execute('1');
  for (let r = 1; !attempt.ok && isTransient(attempt.error ?? '') && r <= harness.policy.improve.transientRetries; r++) {
    await sleep(1000 * 2 ** (r - 1));
    retries = r;
    attempt = await execute(`1.retry${r}`);
  }
  const ran = { ...base, latencyMs: attempt.latencyMs, ...(decided ? { approval: decided } : {}) };
  return attempt.ok
    ? end({ ...ran, status: 'succeeded', output: attempt.output })
    : end({ ...ran, status: 'failed', reason: attempt.error ?? 'failed' });

  /** The tool's improve cycle, once, outliving this call (a rewrite is the tool's business, not the caller's). */
  async function startImprove(trigger: { trigger: 'evaluator' | 'degraded'; reason: string }): Promise<void> {
    try {
      await startChild(improveWorkflow, {
        workflowId: improveWorkflowId(input.tool),
        args: [{ tool: input.tool, trigger: trigger.trigger, reason: trigger.reason, sandboxQueue: input.sandboxQueue }],
        parentClosePolicy: ParentClosePolicy.ABANDON,
        typedSearchAttributes: [
          { key: CYCLE_KIND, value: 'improve' },
          { key: TOOL_NAME, value: input.tool },
        ],
      });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
  }
}
