import { ActivityFailure, ApplicationFailure, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { ReplayNeedsConsentError, type ReplayRequest, type ReplayResult, replayRequestSchema } from '../domain/audit.ts';
import { FROZEN_FAILURE } from '../domain/errors.ts';
import { CYCLE_KIND, TOOL_NAME } from '../domain/search-attributes.ts';
import { databaseWork, sandboxJobs } from './activities.ts';
import { parseWorkflowInput } from './common.ts';

const { loadReplayTarget, recordReplay } = databaseWork;

/**
 * A frozen Forge refuses a replay outright rather than waiting for thaw (as task and forge
 * workflows do): a replay is a question a person asks now, and a stale answer hours later helps
 * nobody. The refusal is a workflow failure of type ForgeFrozen, which the CLI turns into advice.
 */
async function refusedWhileFrozen<T>(step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    const cause = err instanceof ActivityFailure ? err.cause : err;
    if (cause instanceof ApplicationFailure && cause.type === FROZEN_FAILURE) {
      throw ApplicationFailure.create({ type: FROZEN_FAILURE, message: cause.message, nonRetryable: true });
    }
    throw err;
  }
}

/**
 * Replays one audited tool call: load the audit row → run the same tool version on the same input
 * in the sandbox → record the replay (kind 'replay', never an invocation) with both output hashes.
 * Durable and visible in the Temporal UI (ForgeCycleKind = replay, ForgeToolName = the tool).
 */
export async function replayWorkflow(raw: ReplayRequest): Promise<ReplayResult> {
  const req = parseWorkflowInput(replayRequestSchema, raw, 'replay request', 'InvalidReplayRequest');
  const { workflowId } = workflowInfo();
  const { sandboxRunRegisteredTool } = sandboxJobs(req.sandboxQueue, 3);

  const target = await refusedWhileFrozen(() => loadReplayTarget({ auditId: req.auditId }));
  // Also set here, not only by the CLI, so a replay started from elsewhere is still findable.
  upsertSearchAttributes([
    { key: CYCLE_KIND, value: 'replay' },
    { key: TOOL_NAME, value: target.tool },
  ]);
  if (target.sideEffect === 'write' && !req.allowWrite) {
    const refusal = new ReplayNeedsConsentError(target.auditId, target.tool, target.version);
    throw ApplicationFailure.create({ type: refusal.code, message: refusal.message, nonRetryable: true, details: [{ fix: refusal.fix }] });
  }

  const run = await refusedWhileFrozen(() => sandboxRunRegisteredTool({ name: target.tool, version: target.version, input: target.input }));
  const error = run.ok ? undefined : (run.reason ?? `exit ${run.exitCode}`);
  const recorded = await recordReplay({
    workflowId,
    requestedBy: req.requestedBy,
    target,
    run: { ok: run.ok, output: run.output, error, latencyMs: run.durationMs },
  });
  return {
    workflowId,
    auditId: target.auditId,
    replayAuditId: recorded.replayAuditId,
    tool: target.tool,
    version: target.version,
    succeeded: run.ok,
    reason: error,
    same: recorded.same,
    originalOutputHash: recorded.originalOutputHash,
    replayOutputHash: recorded.replayOutputHash,
    diff: recorded.diff,
    output: run.output,
    latencyMs: run.durationMs,
  };
}
