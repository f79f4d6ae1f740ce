import { ActivityFailure, ApplicationFailure, executeChild, isCancellation, setHandler, workflowInfo } from '@temporalio/workflow';
import type { ForgeOutcome } from '../domain/forge.ts';
import { toolFiles } from '../domain/forge.ts';
import {
  type CaseRun,
  type GateReport,
  type ImproveOutcome,
  type ImproveProgress,
  type ImproveRequest,
  type ImproveStatus,
  improveRequestSchema,
  judgeGate,
  type ObservedFailure,
  type RegressionCase,
} from '../domain/improve.ts';
import { LLM_UNREACHABLE, modelEndpointFrom } from '../domain/llm-retry.ts';
import { CYCLE_KIND, TOOL_NAME } from '../domain/search-attributes.ts';
import { mergeTestFiles, regressionTestFile, TestMergeError } from '../domain/test-merge.ts';
import { formatForRepair } from '../domain/verification.ts';
import { harness } from '../harness/index.ts';
import { bookkeeping, llmCalls, sandboxJobs } from './activities.ts';
import { failedWith, parseWorkflowInput } from './common.ts';
import { improveProgressQuery } from './definitions.ts';
import { forgeWorkflow } from './forge.ts';
import { track } from './progress.ts';

const { rewriteTool } = llmCalls;

/** The workflow id of a tool's improve cycle: one per tool, so two cycles never race on one tool. */
export const improveWorkflowId = (tool: string) => `improve-${tool}`;

const NEW_TESTS_TITLE = 'regressions found in production';
const FORGED_TESTS_TITLE = 'tests of a new forge under the same name';
const CASES_TITLE = 'regression cases: inputs that once failed in production';

/**
 * Improves one registered tool: evidence (the metrics, failed calls and their inputs, the source
 * and tests) → rewrite (same name and contract) → the regression gate (the whole old suite plus the
 * new tests, every regression case, replays of recorded read calls, error rate and latency) →
 * promote, or keep the current version, up to N attempts, each refusal fed back. A degraded tool
 * whose repair fails is archived and a replacement forged from scratch; a refused rewrite leaves
 * the catalog exactly as it was.
 */
export async function improveWorkflow(raw: ImproveRequest): Promise<ImproveOutcome> {
  const req = parseWorkflowInput(improveRequestSchema, raw, 'improve request', 'InvalidImproveRequest');
  try {
    return await improve(req);
  } catch (err) {
    if (isCancellation(err)) throw err;
    throw failedWith(err, 'ImproveFailed');
  }
}

async function improve(req: ReturnType<typeof improveRequestSchema.parse>): Promise<ImproveOutcome> {
  const { workflowId, runId } = workflowInfo();
  // The tool's workflow id is reused by its next cycle: its writes are keyed by this run.
  const cycleKey = `${workflowId}@${runId}`;
  const { sandboxVerify, sandboxRunCases } = sandboxJobs(req.sandboxQueue);
  const { archiveDegraded, beginImprove, finishImprove, gatherEvidence, inheritCases, promoteRewrite } = bookkeeping();
  const policy = harness.policy.improve;
  const maxAttempts = Math.min(req.maxAttempts, policy.attempts);

  const progress: ImproveProgress = { phase: 'starting', tool: req.tool, history: [], attempts: [] };
  const { enter, guarded } = track(progress);
  setHandler(improveProgressQuery, () => progress);

  const end = async (status: ImproveStatus, reason: string, extra: Partial<ImproveOutcome> = {}): Promise<ImproveOutcome> => {
    enter(status, reason);
    await finishImprove({
      workflowId: cycleKey,
      status,
      reason,
      toVersion: extra.toVersion,
      report: extra.gate,
      attempts: progress.attempts,
    });
    return { status, tool: req.tool, reason, attempts: progress.attempts, ...extra };
  };

  enter('starting');
  const start = await beginImprove({ workflowId: cycleKey, tool: req.tool, trigger: req.trigger, reason: req.reason });
  const fromVersion = start.fromVersion;
  const automatic = req.trigger !== 'manual';
  if (start.status === 'archived') return end('skipped', `${req.tool} is archived: nothing to improve`, { fromVersion });
  if (automatic && start.pinned) {
    return end(
      'skipped',
      `${req.tool} is pinned: it is never rewritten automatically (forge tools unpin ${req.tool}, or forge improve ${req.tool})`,
      {
        fromVersion,
      },
    );
  }
  if (automatic && start.rewritesToday >= policy.rewritesPerDay) {
    return end(
      'skipped',
      `${req.tool} was already rewritten ${start.rewritesToday} time(s) today, the cap per tool per day (forge improve ${req.tool} to run one by hand)`,
      {
        fromVersion,
      },
    );
  }

  enter('gathering');
  const evidence = await gatherEvidence({ tool: req.tool, version: fromVersion, failures: req.failures, replays: policy.replays });
  const reason =
    [req.reason, start.evaluation && start.evaluation.verdict !== 'insufficient-data' ? start.evaluation.reason : undefined]
      .filter(Boolean)
      .join('; ') || `${req.trigger === 'manual' ? 'a person asked' : req.trigger}: make it more robust`;
  // Earlier cycles' cases are in the suite already; this cycle's failures join it as Forge's own tests.
  const newCases: RegressionCase[] = evidence.failures.map((f, i) => ({
    name: `production failure ${evidence.cases.length + i + 1}: ${f.error.split('\n')[0]!.slice(0, 120)}`,
    input: f.input,
  }));
  const regression: RegressionCase[] = [...evidence.cases, ...newCases];
  // The current version, today, on the recorded calls: the yardstick for error rate and latency.
  const current: CaseRun[] = evidence.recorded.length
    ? await guarded(() => sandboxRunCases({ name: req.tool, version: fromVersion, inputs: evidence.recorded.map((r) => r.input) }))
    : [];

  let previous: string | undefined;
  let lastGate: GateReport | undefined;
  try {
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      progress.attempt = attempt;
      enter('rewriting', `attempt ${attempt} of ${maxAttempts}`);
      const rewrite = req.candidate
        ? { ...req.candidate, diagnosis: 'new code from a forge under the same name', differences: undefined }
        : await guarded(() =>
            rewriteTool({
              manifest: evidence.manifest,
              apiSpec: evidence.apiSpec,
              source: evidence.source,
              tests: evidence.tests,
              reason,
              failures: evidence.failures,
              attempt,
              previous,
            }),
          );
      if (rewrite.source === evidence.source) {
        // The same code again is no improvement: nothing to gate, nothing to register.
        previous = 'the rewrite is the current tool.ts unchanged: change the code to fix what the evidence shows';
        progress.attempts.push({ attempt, passed: false, summary: previous });
        if (req.candidate) break;
        continue;
      }
      let tests: string;
      try {
        const withNew = mergeTestFiles(evidence.tests, rewrite.tests, req.candidate ? FORGED_TESTS_TITLE : NEW_TESTS_TITLE);
        tests = mergeTestFiles(withNew, regressionTestFile(newCases), CASES_TITLE);
      } catch (err) {
        if (!(err instanceof TestMergeError)) throw err;
        previous = `the new tests could not join the existing suite: ${err.message}; import only what the existing tests do not, or use other names`;
        progress.attempts.push({ attempt, passed: false, summary: previous });
        continue;
      }
      enter('gating', `attempt ${attempt}`);
      const gate = await runGate(rewrite.source, tests, rewrite.differences);
      lastGate = gate;
      progress.attempts.push({ attempt, passed: gate.passed, summary: gate.summary.slice(0, 4000) });
      if (gate.passed) {
        enter('promoting');
        const promoted = await guarded(() =>
          promoteRewrite({
            workflowId: cycleKey,
            tool: req.tool,
            fromVersion,
            source: rewrite.source,
            tests,
            cases: newCases,
            gate,
            reason: `${reason} — ${rewrite.diagnosis}`,
          }),
        );
        return end('promoted', `v${promoted.version} passed the regression gate (${gate.summary}) and is current: ${rewrite.diagnosis}`, {
          fromVersion,
          toVersion: promoted.version,
          gate,
        });
      }
      if (req.candidate) break; // a forge's code is gated as it is: nothing to rewrite
      previous = gate.cases
        .filter((c) => !c.pass)
        .map((c) => `- ${c.name}: ${c.detail ?? 'failed'}`)
        .join('\n');
    }
  } catch (err) {
    // A step that failed for good (the model's reply never fit) ends the cycle with its reason, the
    // catalog untouched; it says nothing about the tool, so it never leads to an archive.
    if (!(err instanceof ActivityFailure) || isCancellation(err)) throw err;
    const cause = err.cause instanceof Error ? err.cause.message : err.message;
    // A model server nobody could reach is a component down: the outcome says so, and where, for the surface's fix.
    const unreachable = err.cause instanceof ApplicationFailure && err.cause.type === LLM_UNREACHABLE;
    return end(
      'failed',
      `the ${progress.phase} step failed: ${cause}; ${req.tool} v${fromVersion} stays ${start.status === 'quarantined' ? 'quarantined' : 'current'}`,
      {
        fromVersion,
        gate: lastGate,
        ...(unreachable ? { modelUnreachable: modelEndpointFrom(err.cause.details?.[0]) } : {}),
      },
    );
  }

  if (req.candidate) {
    return end(
      'refused',
      `the new code did not pass ${req.tool}'s regression gate${lastGate ? `: ${lastGate.summary}` : previous ? `: ${previous}` : ''}; ${req.tool} v${fromVersion} stays current`,
      { fromVersion, gate: lastGate },
    );
  }
  const refused = `no rewrite passed the regression gate in ${progress.attempts.length} attempt(s)${lastGate ? `: ${lastGate.summary}` : previous ? `: ${previous}` : ''}`;
  if (start.status !== 'quarantined')
    return end('refused', `${refused}; ${req.tool} v${fromVersion} stays current`, { fromVersion, gate: lastGate });
  return archiveAndReforge(refused, evidence.failures);

  /** The gate, judged here from what the sandbox reported; the candidate's code never computes a verdict. */
  async function runGate(source: string, tests: string, differences: string | undefined): Promise<GateReport> {
    const report = await guarded(() => sandboxVerify({ files: toolFiles(source, tests, evidence.apiSpec ?? undefined) }));
    const runCases = (inputs: unknown[]) =>
      inputs.length
        ? guarded(() => sandboxRunCases({ name: req.tool, version: fromVersion, candidateSource: source, inputs }))
        : Promise.resolve([]);
    const regressionRuns = await runCases(regression.map((c) => c.input));
    const replayRuns = await runCases(evidence.recorded.map((r) => r.input));
    return judgeGate({
      suite: { passed: report.passed, summary: formatForRepair(report) },
      regression: regression.map((c, i) => ({ case: c, run: regressionRuns[i]! })),
      replays: evidence.recorded.map((call, i) => ({ call, candidate: replayRuns[i]!, current: current[i]! })),
      declaredDifferences: differences,
    });
  }

  /** seed 000: a degraded tool that cannot be repaired is archived, and a replacement forged from scratch inherits its cases. */
  async function archiveAndReforge(refused: string, failures: ObservedFailure[]): Promise<ImproveOutcome> {
    enter('archiving', refused);
    await guarded(() => archiveDegraded({ workflowId: cycleKey, tool: req.tool, reason: `degraded, and its repair failed: ${refused}` }));
    enter('reforging');
    const name = replacementName(req.tool);
    const need = [
      evidence.manifest.description,
      `It replaces ${req.tool}, archived because it degraded and could not be repaired. It must handle the inputs that broke it:`,
      ...failures
        .slice(0, 5)
        .map((f) => `- ${JSON.stringify(f.input).slice(0, 300)} (failed with: ${f.error.split('\n')[0]!.slice(0, 200)})`),
    ].join('\n');
    const forged: ForgeOutcome = await executeChild(forgeWorkflow, {
      workflowId: `${workflowId}.reforge.${runId.slice(0, 8)}`,
      args: [{ need, name, sandboxQueue: req.sandboxQueue }],
      typedSearchAttributes: [
        { key: CYCLE_KIND, value: 'forge' },
        { key: TOOL_NAME, value: name },
      ],
    });
    if (forged.status !== 'registered') {
      return end('archived', `${refused}; ${req.tool} is archived, and forging a replacement failed: ${forged.reason}`, { fromVersion });
    }
    await inheritCases({ workflowId: cycleKey, from: req.tool, to: forged.name });
    return end('archived', `${refused}; ${req.tool} is archived and ${forged.name} v${forged.version} replaces it`, {
      fromVersion,
      replacement: { name: forged.name, version: forged.version },
    });
  }
}

/** count_words → count_words_2 → count_words_3: a replacement needs a name of its own (names are never reused). */
export function replacementName(tool: string): string {
  const m = /^(.*)_(\d+)$/.exec(tool);
  return m ? `${m[1]}_${Number(m[2]) + 1}` : `${tool}_2`;
}
