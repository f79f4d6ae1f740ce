import { condition, executeChild, isCancellation, ParentClosePolicy, patched, setHandler, workflowInfo } from '@temporalio/workflow';
import { type Consent, consentProblem, consentSchema, type DeployOutcome } from '../domain/deploy.ts';
import type { FailureEvidence } from '../domain/evidence.ts';
import {
  acceptReplay,
  addedLines,
  type EvolveOutcome,
  type EvolveProgress,
  type EvolveRequest,
  type EvolveStatus,
  evolveRequestSchema,
  type HarnessPatch,
  overfittingProblems,
  REPLAY_POLICY,
  type ReplayReport,
  resolveEdits,
  scopeProblems,
} from '../domain/evolve.ts';
import { databaseWork, deploySteps, evolveJobs, llmCalls, treeChecks } from './activities.ts';
import { failedWith, parseWorkflowInput } from './common.ts';
import { consentUpdate, evolveProgressQuery } from './definitions.ts';
import { deployWorkflow } from './deploy.ts';
import { track } from './progress.ts';

const { writeHarnessPatch } = llmCalls;
const { beginEvolve, harnessSnapshot, loadEvidence, recordCandidate, recordEvolveAttempts } = databaseWork;
const { checkHarnessPatch } = treeChecks;

/** Patch marker: a failed cycle records its failure in the ledger (cycles that failed before did not). */
const EVOLVE_FAILURE_RECORDED = 'evolve-failure-recorded';

/**
 * Self-evolution, part 1 (issue 11): a batch of failure evidence → a harness patch from the coding
 * agent → reviews that need nothing to run (scope, overfitting) → checks on a scratch tree (apply,
 * scope on the whole tree, type check, lint, the harness's unit tests) → a candidate image → replay
 * of the batch and a held-out set in throwaway containers, judged here. Up to N attempts, each fed
 * the previous refusal. A verified candidate waits for part 2's consent; a refused one keeps its reasons.
 */
export async function evolveWorkflow(raw: EvolveRequest): Promise<EvolveOutcome> {
  const req = parseWorkflowInput(evolveRequestSchema, raw, 'evolve request', 'InvalidEvolveRequest');
  try {
    return await evolve(req);
  } catch (err) {
    if (isCancellation(err)) throw err;
    const failure = failedWith(err, 'EvolveFailed');
    // The ledger (forge evolve ls, the dashboard) says failed, with why, not running forever.
    // Patched: a cycle that failed on earlier code has no such step in its history.
    if (patched(EVOLVE_FAILURE_RECORDED))
      await recordCandidate({ workflowId: workflowInfo().workflowId, status: 'failed', reason: failure.message }).catch(() => undefined);
    throw failure;
  }
}

async function evolve(req: ReturnType<typeof evolveRequestSchema.parse>): Promise<EvolveOutcome> {
  const { workflowId } = workflowInfo();
  const candidateId = workflowId;
  const { buildCandidateImage, replayCandidate } = evolveJobs(req.sandboxQueue);
  const progress: EvolveProgress = { phase: 'gathering', history: [], attempts: [] };
  const { enter, guarded } = track(progress);
  setHandler(evolveProgressQuery, () => progress);
  // Registered from the start, so a consent sent too early is refused with a reason rather than unknown.
  let waiting: { candidateId: string; imageDigest: string } | undefined;
  let consent: Consent | undefined;
  setHandler(
    consentUpdate,
    (raw) => {
      consent = consentSchema.parse(raw);
      return { accepted: true, candidateId, approve: consent.approve };
    },
    {
      validator: (raw) => {
        const problem = consentProblem(raw, waiting, consent !== undefined);
        if (problem) throw new Error(problem);
      },
    },
  );

  const end = async (status: EvolveStatus, reason: string, extra: Partial<Parameters<typeof recordCandidate>[0]> = {}) => {
    enter(status, reason);
    await recordCandidate({ workflowId, status, reason, ...extra });
    return { status, candidateId, reason };
  };

  enter('gathering');
  const evidence: FailureEvidence[] = await loadEvidence({ ids: req.evidenceIds });
  const snapshot = await harnessSnapshot();
  await beginEvolve({
    id: candidateId,
    workflowId,
    batchKey: req.batchKey,
    failureType: req.failureType,
    evidenceIds: req.evidenceIds,
    revision: snapshot.revision,
  });
  // What the coding agent sees of each case; the judge keeps the expectations to itself as well.
  const cases = evidence.map((e) => ({
    id: e.id,
    failureType: e.failureType,
    expected: e.expected,
    happened: e.happened,
    expectations: e.expectations,
    trace: e.trace,
  }));
  const evidenceTexts = evidence.map((e) => ({
    workflowId: e.workflowId,
    texts: [e.trace.task, e.expected, e.happened, e.trace.answer ?? '', ...e.expectations.map((x) => ('text' in x ? x.text : ''))].filter(
      (t) => t.length >= 12,
    ),
  }));

  let accepted: { patch: HarnessPatch; diff: string; treeHash: string } | undefined;
  let previous: string | undefined;
  for (let attempt = 1; attempt <= req.maxAttempts && !accepted; attempt++) {
    enter('patching', `attempt ${attempt} of ${req.maxAttempts}`);
    const { patch } = await guarded(() =>
      writeHarnessPatch({ failureType: req.failureType, evidence: cases, files: snapshot.files, attempt, previous }),
    );
    const refuse = async (stage: string, reason: string) => {
      progress.attempts.push({ attempt, stage, passed: false, reason: reason.slice(0, 4000) });
      await recordEvolveAttempts({ workflowId, attempts: progress.attempts });
      previous = `refused at ${stage}: ${reason}`;
    };
    // Reviews that need nothing to run come first: a patch outside scope never reaches a build.
    const scope = scopeProblems(patch.edits, snapshot.evolvable, new Set(snapshot.existing));
    if (scope.length) {
      await refuse('scope', scope.join('; '));
      continue;
    }
    const resolved = resolveEdits(patch.edits, snapshot.files);
    if (!resolved.ok) {
      await refuse('apply', `the patch does not apply to the current harness: ${resolved.reason}`);
      continue;
    }
    const overfit = overfittingProblems(addedLines(resolved.files, snapshot.files), evidenceTexts);
    if (overfit.length) {
      await refuse('overfitting', `the patch must generalise, but ${overfit.join('; ')}`);
      continue;
    }
    enter('checking', `attempt ${attempt}`);
    const check = await guarded(() => checkHarnessPatch({ candidateId, revision: snapshot.revision, edits: resolved.files }));
    if (!check.ok) {
      await refuse(check.stage, check.reason);
      continue;
    }
    progress.attempts.push({ attempt, stage: 'checks', passed: true, reason: `changed ${check.changed.join(', ')}` });
    await recordEvolveAttempts({ workflowId, attempts: progress.attempts });
    accepted = { patch, diff: check.diff, treeHash: check.treeHash };
  }
  if (!accepted) return end('refused', `no patch passed the checks in ${req.maxAttempts} attempt(s): ${previous ?? 'no attempt'}`);
  const { patch, diff, treeHash } = accepted;
  await recordCandidate({
    workflowId,
    status: 'checked',
    reason: 'the patch passed every check',
    rationale: patch.rationale,
    patch,
    diff,
    treeHash,
  });

  enter('building');
  const image = await guarded(() => buildCandidateImage({ candidateId, treeHash }));
  enter('replaying');
  const replay = await guarded(() =>
    replayCandidate({
      candidateId,
      image: image.image,
      evidenceIds: req.evidenceIds,
      runsPerCase: REPLAY_POLICY.runsPerCase,
      heldOut: REPLAY_POLICY.heldOut,
      sample: REPLAY_POLICY.sample,
    }),
  );
  const verdict = acceptReplay(replay, REPLAY_POLICY.passThreshold);
  if (!verdict.accepted) return end('refused', refusal(verdict.reason, replay), { image: image.image, imageDigest: image.digest, replay });
  enter('verified', verdict.reason);
  await recordCandidate({ workflowId, status: 'verified', reason: verdict.reason, image: image.image, imageDigest: image.digest, replay });

  // ---- part 2: a person's consent, then the swap and the probe (workflows/deploy.ts)
  const timeoutSeconds = req.consentTimeoutSeconds ?? (await deploySteps(req.sandboxQueue).deployPolicy()).consentTimeoutSeconds;
  const expiresAt = new Date(Date.now() + timeoutSeconds * 1000).toISOString();
  waiting = { candidateId, imageDigest: image.digest };
  progress.awaitingConsent = { ...waiting, expiresAt };
  enter('awaiting-consent', `until ${expiresAt}: forge evolve approve|reject ${candidateId}`);
  const answered = await condition(() => consent !== undefined, timeoutSeconds * 1000);
  progress.awaitingConsent = undefined;
  if (!answered || !consent) return end('expired', `no consent within ${timeoutSeconds} s: the candidate expired and nothing changed`);
  const given = { ...consent, at: new Date().toISOString() };
  if (!consent.approve)
    return end('rejected', `${consent.by} rejected the candidate${consent.note ? `: ${consent.note}` : ''}; nothing changed`, {
      consent: given,
    });
  await recordCandidate({ workflowId, status: 'verified', reason: `${consent.by} consented; deploying`, consent: given });
  enter('deploying', `${consent.by} consented`);
  const deployed: DeployOutcome = await executeChild(deployWorkflow, {
    workflowId: `deploy-${candidateId}`,
    // A deploy in its probe window finishes (promoted or rolled back) whatever becomes of this cycle.
    parentClosePolicy: ParentClosePolicy.ABANDON,
    args: [
      {
        kind: 'evolve',
        ref: candidateId,
        image: image.image,
        imageDigest: image.digest,
        treeHash,
        sandboxQueue: req.sandboxQueue,
        by: consent.by,
        record: commitRecord({ patch, evidence, replay, consent }),
        ...(req.probe ? { probe: req.probe } : {}),
      },
    ],
  });
  const status = deployed.status === 'promoted' ? 'promoted' : deployed.status === 'rolled-back' ? 'rolled-back' : 'refused';
  // A rollback says how long the previous version took to serve again (measured from the failing probe).
  const reason =
    deployed.status === 'rolled-back' && deployed.restoreMs !== undefined
      ? `${deployed.reason}; ${deployed.previous ?? 'the unversioned workers'} served again ${deployed.restoreMs} ms after the failing probe`
      : deployed.reason;
  return end(status, reason, { deploy: { ...deployed } });
}

/** The harness history's commit body: the rationale, the evidence, the replay report and the consent. */
function commitRecord(input: { patch: HarnessPatch; evidence: FailureEvidence[]; replay: ReplayReport; consent: Consent }): string {
  const { patch, evidence, replay, consent } = input;
  return [
    `Rationale: ${patch.rationale}`,
    `Evidence (${evidence.length}):\n${evidence.map((e) => `- #${e.id} ${e.failureType}: expected ${e.expected}; happened ${e.happened}`.slice(0, 300)).join('\n')}`,
    `Replay: batch ${pct(replay.batchPassRate)}, held-out ${pct(replay.heldOutPassRate)} (${replay.heldOutRegressions} regressions), ${replay.cases.length} runs, ${replay.tokens.input + replay.tokens.output} tokens, $${replay.costUsd.toFixed(4)}\n${replay.cases
      .map((c) => `- ${c.kind} ${c.case} run ${c.run}: ${c.pass ? 'pass' : `FAIL ${c.reasons.join('; ')}`}`.slice(0, 300))
      .join('\n')}`,
    `Consent: ${consent.approve ? 'approved' : 'rejected'} by ${consent.by}${consent.note ? ` (${consent.note})` : ''}, image ${consent.imageDigest}`,
  ].join('\n\n');
}

const pct = (x: number) => `${Math.round(x * 100)} %`;

/**
 * A replay's refusal as the person reads it first: with held-out regressions, which tasks and why
 * (the replay's reasons say when a task could not be replayed faithfully), not only how many.
 */
function refusal(reason: string, replay: ReplayReport): string {
  const failed = replay.heldOutRegressions > 0 ? replay.cases.filter((c) => c.kind === 'held-out' && !c.pass) : [];
  if (!failed.length) return reason;
  const why = failed.map((c) => `"${c.task.length > 80 ? `${c.task.slice(0, 80)}…` : c.task}": ${c.reasons.join('; ')}`).join(' | ');
  return `${reason} — ${why.length > 1500 ? `${why.slice(0, 1500)}…` : why}`;
}
