import { isCancellation, setHandler, sleep, workflowInfo } from '@temporalio/workflow';
import {
  buildIdOf,
  type DeployOutcome,
  type DeployProgress,
  type DeployRequest,
  deployRequestSchema,
  judgeProbe,
  type ProbeSample,
  withOverrides,
} from '../domain/deploy.ts';
import { deploySteps } from './activities.ts';
import { failedWith, failureCause, parseWorkflowInput } from './common.ts';
import { deployProgressQuery } from './definitions.ts';
import { track } from './progress.ts';

/**
 * Self-evolution, part 2 (issue 12): a harness version goes live, or does not. The new version's
 * control worker starts beside the current one → it becomes current (new workflows go to it; those
 * already running finish where they started) → it is probed through the whole window → promoted,
 * with a commit in the harness history, or, at the first failing probe (or a freeze), rolled back:
 * the previous version current again, the new one's unfinished workflows ended, its container
 * removed, and an entry in the append-only rollback log. This workflow runs on the version being
 * replaced (a child of its evolve cycle, pinned there), so the candidate never judges itself.
 */
export async function deployWorkflow(raw: DeployRequest): Promise<DeployOutcome> {
  const req = parseWorkflowInput(deployRequestSchema, raw, 'deploy request', 'InvalidDeployRequest');
  try {
    return await deploy(req);
  } catch (err) {
    if (isCancellation(err)) throw err;
    throw failedWith(err, 'DeployFailed');
  }
}

async function deploy(req: ReturnType<typeof deployRequestSchema.parse>): Promise<DeployOutcome> {
  const { workflowId } = workflowInfo();
  const steps = deploySteps(req.sandboxQueue);
  const buildId = buildIdOf(req.imageDigest);
  const progress: DeployProgress = { phase: 'starting', buildId, probes: [], passesInARow: 0, history: [] };
  const { enter, note, guarded } = track(progress);
  setHandler(deployProgressQuery, () => progress);

  const policy = withOverrides(await steps.deployPolicy(), req.probe);
  enter('starting', `${req.kind} ${req.ref}: ${req.image}`);
  const { current: previous } = await steps.deploymentState();
  progress.previous = previous;
  if (previous === buildId) {
    enter('refused', `${buildId} is already the current version`);
    return { status: 'refused', buildId, previous, reason: `${buildId} is already the current version: nothing to swap` };
  }
  const sinceIso = new Date().toISOString();
  try {
    const started = await guarded(() =>
      steps.startVersion({
        buildId,
        image: req.image,
        imageDigest: req.imageDigest,
        treeHash: req.treeHash,
        kind: req.kind,
        ref: req.ref,
      }),
    );
    note(`${started.container} polling after ${Math.round(started.ms / 100) / 10} s`);
  } catch (err) {
    // Never current: nothing changed but a container, which goes.
    const reason = `the new version did not start: ${failureCause(err)}`;
    await steps.retireVersion({ buildId, reason, sinceIso });
    await steps.markVersion({ buildId, status: 'refused', reason });
    enter('refused', reason);
    return { status: 'refused', buildId, previous, reason };
  }

  // The swap: no swap while frozen (the step waits for forge thaw).
  enter('swapping', `${previous ?? 'unversioned'} → ${buildId}`);
  await guarded(() => steps.makeCurrent({ buildId, rollback: false }));
  const swappedAt = new Date().toISOString();
  await steps.markVersion({ buildId, status: 'probing', reason: `current since ${swappedAt}, probed for ${policy.probeWindowSeconds} s` });

  enter(
    'probing',
    `every ${policy.probeIntervalSeconds} s for ${policy.probeWindowSeconds} s; ${policy.passesNeeded} passes in a row promote`,
  );
  const windowEnds = Date.now() + policy.probeWindowSeconds * 1000;
  let failure: { reasons: string[]; sample?: ProbeSample } | undefined;
  for (let probeNo = 1; !failure && (Date.now() < windowEnds || progress.passesInARow < policy.passesNeeded); probeNo++) {
    await sleep(policy.probeIntervalSeconds * 1000);
    if ((await steps.killSwitchState()).frozen) {
      failure = { reasons: ['Forge was frozen during the probe window: back to the version that was known to be good'] };
      break;
    }
    let sample: ProbeSample;
    try {
      sample = await steps.probeVersion({ deployId: workflowId, buildId, sinceIso: swappedAt, probeNo });
    } catch (err) {
      failure = { reasons: [`probe ${probeNo} could not measure the new version: ${failureCause(err)}`] };
      break;
    }
    const verdict = judgeProbe(sample, policy);
    progress.probes.push({ ...verdict, at: sample.at, sample });
    if (!verdict.healthy) failure = { reasons: verdict.reasons, sample };
    else progress.passesInARow++;
    note(`probe ${probeNo}: ${verdict.healthy ? `healthy (${progress.passesInARow} in a row)` : verdict.reasons.join('; ')}`);
    // A window the interval does not fill still needs its passes; one that never ends is bounded.
    if (probeNo >= Math.ceil(policy.probeWindowSeconds / policy.probeIntervalSeconds) + policy.passesNeeded * 2 && !failure) break;
  }

  if (failure) return rollBack(failure);

  const health = `${progress.probes.length} probes over ${policy.probeWindowSeconds} s, every one healthy`;
  const { revision } = await steps.recordRevision({
    deployId: workflowId,
    buildId,
    subject:
      req.kind === 'evolve'
        ? `Promote harness candidate ${req.ref} (${buildId})`
        : `Roll back the harness to ${req.ref.slice(0, 12)} (${buildId})`,
    body: [req.record, `Consented or asked by: ${req.by}`, `Image: ${req.image} ${req.imageDigest}`, `Health: ${health}`]
      .filter(Boolean)
      .join('\n\n'),
    ...(req.kind === 'evolve' ? { candidateId: req.ref } : { restore: req.ref }),
  });
  await steps.markVersion({ buildId, status: 'promoted', reason: health, probes: progress.probes, revision, promoted: true });
  if (previous) await steps.markVersion({ buildId: previous, status: 'retired', reason: `${buildId} promoted; drains its own workflows` });
  enter('promoted', `${buildId} is current and last known good (revision ${revision.slice(0, 12)})`);
  return { status: 'promoted', buildId, previous, reason: health, revision };

  async function rollBack(f: { reasons: string[]; sample?: ProbeSample }): Promise<DeployOutcome> {
    const reason = f.reasons.join('; ');
    const failedAt = Date.now();
    enter('rolling-back', reason);
    // Never refused, not even while frozen: it returns to the version that was serving.
    const { ms: swapMs } = await steps.makeCurrent({ buildId: previous, rollback: true });
    const restoreMs = Date.now() - failedAt + swapMs;
    const { terminated } = await steps.retireVersion({
      buildId,
      reason: `the harness version ${buildId} was rolled back: ${reason}`.slice(0, 1000),
      sinceIso: swappedAt,
    });
    await steps.appendRollback({
      deployId: workflowId,
      fromBuild: buildId,
      toBuild: previous,
      reason,
      metrics: { probes: progress.probes, failing: f.sample ?? null, policy },
      restoreMs,
      terminated,
    });
    await steps.markVersion({ buildId, status: 'rolled-back', reason, probes: progress.probes });
    enter(
      'rolled-back',
      `${previous ?? 'unversioned workers'} serving again after ${restoreMs} ms; ${terminated.length} workflow(s) of ${buildId} ended`,
    );
    return { status: 'rolled-back', buildId, previous, reason, restoreMs };
  }
}
