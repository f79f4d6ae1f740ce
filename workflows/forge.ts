import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import {
  ActivityFailure,
  ApplicationFailure,
  executeChild,
  isCancellation,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { type ForgeOutcome, type ForgeProgress, type ForgeRequest, forgeRequestSchema, type ToolSpec, toolFiles } from '../domain/forge.ts';
import type { ImproveOutcome } from '../domain/improve.ts';
import { LLM_UNREACHABLE, modelEndpointFrom } from '../domain/llm-retry.ts';
import { CYCLE_KIND, TOOL_NAME } from '../domain/search-attributes.ts';
import type { ApiSpec } from '../domain/tool.ts';
import { formatForRepair, type VerifyReport } from '../domain/verification.ts';
import { harness } from '../harness/index.ts';
import { foldedBookkeeping, llmCalls, sandboxJobs } from './activities.ts';
import { approvals } from './approval.ts';
import { parseWorkflowInput } from './common.ts';
import { forgeProgressQuery } from './definitions.ts';
import { improveWorkflow, improveWorkflowId } from './improve.ts';
import { track } from './progress.ts';

const { extractApiSpec, repairImplementation, writeImplementation, writeSpec, writeTests } = llmCalls;

/**
 * Forges one tool: budget → spec → API spec → tests → implementation → verify (static, mock, live)
 * → repair up to N times → register exactly one version (or record why not; the catalog is only
 * touched by the final, idempotent registration).
 */
export async function forgeWorkflow(raw: ForgeRequest): Promise<ForgeOutcome> {
  const req = parseWorkflowInput(forgeRequestSchema, raw, 'forge request', 'InvalidForgeRequest');
  const { workflowId } = workflowInfo();
  const { sandboxVerify } = sandboxJobs(req.sandboxQueue);
  const { steps, folded } = foldedBookkeeping();
  const { beginForgeRun, compareWithCurrent, finishForge, forgeBudget, recordForgeRun, registerForgedTool } = steps;
  const maxRepairs = req.maxRepairs ?? harness.policy.forge.maxRepairs;

  const progress: ForgeProgress = { phase: 'budget', attempts: [], history: [], frozen: false };
  const { enter, guarded } = track(progress);
  const approval = approvals(workflowId);
  setHandler(forgeProgressQuery, () => ({ ...progress, frozen: progress.frozen ?? false, pendingApproval: approval.pendingId() }));

  const fail = async (reason: string, name?: string, report?: VerifyReport): Promise<ForgeOutcome> => {
    enter('failed', reason);
    await recordForgeRun({ workflowId, need: req.need, name, status: 'failed', reason, attempts: progress.attempts });
    return { status: 'failed', name, reason, attempts: progress.attempts, report };
  };

  enter('budget');
  let budget: Awaited<ReturnType<typeof forgeBudget>>;
  if (folded) budget = await beginForgeRun({ workflowId, need: req.need, name: req.name });
  else {
    await recordForgeRun({ workflowId, need: req.need, name: req.name, status: 'running', attempts: [] });
    budget = await forgeBudget({ workflowId, name: req.name });
  }
  // A name the catalog holds can come to no new tool (sameName below), so the budget, which meters
  // new tools, asks nobody. (Histories from before nameHeld read it as undefined: asked, as then.)
  if (budget.remaining <= 0 && !budget.alreadyCounted && !budget.nameHeld) {
    enter('awaiting-budget-approval', `${budget.usedToday} of ${budget.limit} tools forged today`);
    await recordForgeRun({ workflowId, need: req.need, name: req.name, status: 'awaiting-budget-approval', attempts: [] });
    const decision = await approval.request(
      {
        kind: 'budget',
        tool: req.name,
        summary: `forge a new tool past today's budget (${budget.usedToday}/${budget.limit}): ${req.need.slice(0, 200)}`,
      },
      req.budgetApprovalTimeout,
    );
    if (decision.timedOut)
      return fail(`the daily forge budget (${budget.limit}) is spent and nobody approved within ${req.budgetApprovalTimeout}`);
    if (!decision.approved) return fail(`${decision.by ?? 'a person'} rejected forging past the daily budget`);
    await recordForgeRun({ workflowId, need: req.need, name: req.name, status: 'running', attempts: [] });
  }

  try {
    return await synthesize();
  } catch (err) {
    // A step that failed for good (e.g. the model's reply never fit, even after the retry) ends the
    // forge with its reason on record, like a failed verification; the catalog is untouched.
    if (!(err instanceof ActivityFailure) || isCancellation(err)) throw err;
    const cause = err.cause instanceof Error ? err.cause.message : err.message;
    const failed = await fail(`the ${progress.phase} step failed: ${cause}`, progress.toolName);
    // A model server nobody could reach is a component down: the outcome says so, and where, for the surface's fix.
    const unreachable = err.cause instanceof ApplicationFailure && err.cause.type === LLM_UNREACHABLE;
    return unreachable && failed.status === 'failed' ? { ...failed, modelUnreachable: modelEndpointFrom(err.cause.details?.[0]) } : failed;
  }

  async function synthesize(): Promise<ForgeOutcome> {
    enter('spec');
    const spec: ToolSpec = await guarded(() => writeSpec({ need: req.need, name: req.name }));
    progress.toolName = spec.name;
    upsertSearchAttributes([{ key: TOOL_NAME, value: spec.name }]);

    enter('api');
    const apiSpec: ApiSpec | null =
      spec.permissions.network.length || req.apiDocs || req.openApi
        ? await guarded(() => extractApiSpec({ spec, apiDocs: req.apiDocs, openApi: req.openApi }))
        : null;

    enter('tests');
    const { tests } = await guarded(() => writeTests({ spec, apiSpec }));
    enter('implementation');
    let { source } = await guarded(() => writeImplementation({ spec, apiSpec, tests }));

    let report: VerifyReport | undefined;
    for (let attempt = 1; ; attempt++) {
      enter('verifying', `attempt ${attempt}`);
      const files = toolFiles(source, tests, apiSpec ?? undefined);
      report = await guarded(() => sandboxVerify({ files }));
      const summary = formatForRepair(report);
      progress.attempts.push({ attempt, passed: report.passed, summary: summary.slice(0, 4000) });
      if (report.passed) break;
      if (attempt > maxRepairs) {
        return fail(`verification failed after ${maxRepairs} repair(s): ${firstFailure(report)}`, spec.name, report);
      }
      enter('repairing', `repair ${attempt} of ${maxRepairs}`);
      const currentSource = source;
      const repaired = await guarded(() =>
        repairImplementation({ spec, apiSpec, tests, source: currentSource, failures: summary, attempt }),
      );
      source = repaired.source;
    }

    enter('registering');
    if (folded) {
      // The name check, the catalog write and the run's record: one local activity.
      const finished = await guarded(() =>
        finishForge({ workflowId, need: req.need, spec, source, tests, apiSpec: apiSpec ?? undefined, attempts: progress.attempts }),
      );
      if ('taken' in finished) return sameName(spec, source, tests, finished.taken, report);
      enter('registered', `${spec.name} v${finished.registered.version}`);
      return registeredOutcome(spec.name, finished.registered.version, report);
    }
    const taken = await compareWithCurrent({ workflowId, name: spec.name, source });
    if (taken.exists) return sameName(spec, source, tests, taken, report);
    const registered = await guarded(() => registerForgedTool({ workflowId, spec, source, tests, apiSpec: apiSpec ?? undefined }));
    enter('registered', `${spec.name} v${registered.version}`);
    await recordForgeRun({
      workflowId,
      need: req.need,
      name: spec.name,
      status: 'registered',
      version: registered.version,
      attempts: progress.attempts,
    });
    return registeredOutcome(spec.name, registered.version, report);
  }

  function registeredOutcome(name: string, version: number, report: VerifyReport): ForgeOutcome {
    return { status: 'registered', name, version, attempts: progress.attempts.length, report };
  }

  /**
   * A forge under a name the catalog already holds never quietly replaces it: the very same code
   * registers nothing (the tool is there), and other code becomes current only through the
   * tool's regression gate (its improve cycle, with this code as the candidate). Neither is a new
   * tool, so the run's ledger row says which (`unchanged`, `new-version`) and the daily budget,
   * which counts `registered` rows, does not count it.
   */
  async function sameName(
    spec: ToolSpec,
    source: string,
    tests: string,
    taken: { version: number; identical: boolean; archived?: { reason: string | null; replacedBy: string | null } },
    report: VerifyReport,
  ): Promise<ForgeOutcome> {
    // An archived tool is no longer offered or run: its name gives the agent nothing to call.
    if (taken.archived) {
      const { reason, replacedBy } = taken.archived;
      return fail(
        `${spec.name} is archived${reason ? ` (${reason})` : ''}: it is no longer offered or run${replacedBy ? `, and ${replacedBy} replaces it` : ''}. Forge it under another name`,
        spec.name,
        report,
      );
    }
    const done = async (status: 'unchanged' | 'new-version', version: number, note: string): Promise<ForgeOutcome> => {
      enter('registered', note);
      await recordForgeRun({
        workflowId,
        need: req.need,
        name: spec.name,
        status,
        version,
        reason: note,
        attempts: progress.attempts,
      });
      return { status: 'registered', name: spec.name, version, attempts: progress.attempts.length, report, note };
    };
    if (taken.identical)
      return done('unchanged', taken.version, `${spec.name} v${taken.version} already has exactly this code: nothing registered`);
    enter('gating', `${spec.name} exists (v${taken.version}): the new code must pass its regression gate`);
    let outcome: ImproveOutcome;
    try {
      outcome = await executeChild(improveWorkflow, {
        workflowId: improveWorkflowId(spec.name),
        args: [
          {
            tool: spec.name,
            trigger: 'forge',
            candidate: { source, tests },
            reason: `a forge wrote new code for ${spec.name}: ${req.need.slice(0, 300)}`,
            sandboxQueue: req.sandboxQueue,
          },
        ],
        typedSearchAttributes: [
          { key: CYCLE_KIND, value: 'improve' },
          { key: TOOL_NAME, value: spec.name },
        ],
      });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      return fail(
        `${spec.name} already exists and its improve cycle is running: forge again later, or under another name`,
        spec.name,
        report,
      );
    }
    if (outcome.status === 'promoted' && outcome.toVersion) {
      return done(
        'new-version',
        outcome.toVersion,
        `${spec.name} existed; the new code passed its regression gate and is v${outcome.toVersion}`,
      );
    }
    return fail(
      `${spec.name} already exists (v${taken.version}) and the new code was not made current: ${outcome.reason}. Forge it under another name to keep both`,
      spec.name,
      report,
    );
  }
}

function firstFailure(report: VerifyReport): string {
  const failed = report.stages.find((s) => s.status === 'failed');
  return failed ? `${failed.stage} stage: ${failed.reason ?? 'failed'}` : 'unknown failure';
}
