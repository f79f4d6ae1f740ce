import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { DeployOutcome } from '../../domain/deploy.ts';
import type { EvolveOutcome } from '../../domain/evolve.ts';
import { dockerClient } from '../../infra/docker.ts';
import { controlWorkers } from '../../services/evolution/control-worker.ts';
import { revisions } from '../../services/evolution/history.ts';
import { consentUpdate, deployProgressQuery } from '../../workflows/definitions.ts';
import { harnessCli } from '../helpers/cli.ts';
import { type EvolveRig, startEvolveRig } from '../helpers/evolve-rig.ts';
import { terminateWithTemporalCli } from '../helpers/temporal.ts';

// Self-evolution, part 2 (issue 12): the consent gate and the automatic rollback. A consent for
// another image is refused before it enters the workflow's history; a rejection or no answer in
// time changes nothing; a candidate that passed replay but fails a probe in production is rolled
// back by itself, the installed version serving again, the rollback in the append-only log.

describe('consent: a mismatched digest is refused; approve → probe fails → rolled back; reject and expiry change nothing', () => {
  let rig: EvolveRig;
  let cli: ReturnType<typeof harnessCli>;
  before(async () => {
    rig = await startEvolveRig();
    cli = harnessCli(rig.h, { user: 'operator', timeoutMs: 600_000 });
  });
  after(() => rig?.close());

  const updateEvents = async (workflowId: string) =>
    ((await rig.h.client.workflow.getHandle(workflowId).fetchHistory()).events ?? []).filter(
      (e) => e.workflowExecutionUpdateAcceptedEventAttributes,
    ).length;

  it('a candidate that passes replay but breaks a probe is rolled back automatically; a stale digest never reaches history', async () => {
    const { workflowId } = await rig.evolve('(a probe will catch it)');
    const waiting = await rig.awaitingConsent(workflowId);
    // Production, meanwhile, counts words worded "how many": the bad patch breaks exactly that.
    const meanwhile = await rig.task('how many words are in "seven eight nine"?');
    assert.equal(meanwhile.result.status, 'completed', meanwhile.result.answer);

    const handle = rig.h.client.workflow.getHandle(workflowId);
    await assert.rejects(
      handle.executeUpdate(consentUpdate, {
        args: [{ candidateId: waiting.candidateId, imageDigest: `sha256:${'0'.repeat(64)}`, approve: true, by: 'mallory' }],
      }),
      (err: Error & { cause?: Error }) => /stale or meant for another image/.test(err.cause?.message ?? err.message),
    );
    const wrong = await cli('evolve', 'approve', waiting.candidateId, '--digest', `sha256:${'1'.repeat(64)}`);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /refused the consent: .*not sha256:1111/);
    assert.equal(await updateEvents(workflowId), 0, 'no refused consent entered the history');

    const approved = await cli('evolve', 'approve', waiting.candidateId, '--wait', '--json');
    assert.equal(approved.code, 1, 'approved, but not promoted');
    const outcome = approved.json().outcome as EvolveOutcome;
    assert.equal(outcome.status, 'rolled-back', outcome.reason);
    assert.match(outcome.reason, /probe task\(s\) failed: "how many words are in/);
    assert.match(outcome.reason, /img-[0-9a-f]{16} served again \d+ ms after the failing probe/);
    assert.equal(await updateEvents(workflowId), 1, 'only the valid consent is in the history');

    const deploy = rig.h.client.workflow.getHandle(`deploy-${waiting.candidateId}`);
    const result = (await deploy.result()) as DeployOutcome;
    assert.equal(result.status, 'rolled-back');
    assert.ok(typeof result.restoreMs === 'number' && result.restoreMs >= 0);
    assert.equal(await rig.current(), rig.install.buildId, 'the installed version serves again');
    const after = await rig.task('count the words in "ten eleven"');
    assert.equal(after.result.status, 'completed');

    const workers = await controlWorkers(dockerClient(rig.h.cfg), rig.h.cfg.home).list(rig.deployment);
    assert.deepEqual(
      workers.map((w) => w.buildId),
      [rig.install.buildId],
      'the candidate container is removed',
    );
    const [logged] = await rig.h.db.sql<{ from_build: string; to_build: string; reason: string; restore_ms: number }[]>`
      select from_build, to_build, reason, restore_ms from deploy_rollbacks where deploy_id = ${deploy.workflowId}`;
    assert.deepEqual([logged?.from_build, logged?.to_build], [result.buildId, rig.install.buildId]);
    assert.equal(logged?.restore_ms, result.restoreMs);
    await assert.rejects(rig.h.db.sql`delete from deploy_rollbacks`, /append-only/);
    const progress = await deploy.query(deployProgressQuery);
    assert.ok(progress.probes.some((p) => !p.healthy));
    assert.equal((await revisions(rig.h.home)).length, 1, 'nothing promoted: the history holds the install alone');
    const listed = await cli('evolve', 'history');
    assert.match(listed.stdout, /rollbacks:\n.* → .* in \d+ ms: .*probe task/);
  });

  it('reject from the CLI: nothing changes', async () => {
    const { workflowId } = await rig.evolve('(reuse it, rejected)');
    const waiting = await rig.awaitingConsent(workflowId);
    // forge approvals lists it beside the approvals, with the commands that decide it.
    const listed = await cli('approvals', '--json');
    assert.ok(
      (listed.json().consents as { id: string }[]).some((c) => c.id === waiting.candidateId),
      listed.stdout,
    );
    const text = await cli('approvals');
    assert.match(text.stdout, new RegExp(`then forge evolve approve ${waiting.candidateId} --digest sha256:[0-9a-f]{64}`));
    const rejected = await cli('evolve', 'reject', waiting.candidateId, '--note', 'not tonight', '--wait', '--json');
    assert.equal(rejected.code, 0, rejected.stdout + rejected.stderr);
    const outcome = rejected.json().outcome as EvolveOutcome;
    assert.equal(outcome.status, 'rejected');
    assert.match(outcome.reason, /operator rejected the candidate: not tonight; nothing changed/);
    assert.equal(await rig.current(), rig.install.buildId);
    const again = await cli('evolve', 'approve', waiting.candidateId);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /is rejected, decided by operator: only a verified candidate waiting for consent/);
  });

  it('no answer within the consent timeout: the candidate expires and nothing changes', async () => {
    const { workflowId } = await rig.evolve('(reuse it, unanswered)', { consentTimeoutSeconds: 2 });
    const outcome = (await rig.h.client.workflow.getHandle(workflowId).result()) as EvolveOutcome;
    assert.equal(outcome.status, 'expired');
    assert.match(outcome.reason, /no consent within 2 s: the candidate expired and nothing changed/);
    assert.equal(await rig.current(), rig.install.buildId);
    assert.equal(await updateEvents(workflowId), 0);
    // What a person reads afterwards: expired, with its cause, and no longer waiting for anyone.
    const shown = await cli('evolve', 'show', outcome.candidateId!);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(
      shown.stdout,
      new RegExp(`^${outcome.candidateId}: expired — no consent within 2 s: the candidate expired and nothing changed\\n`),
    );
    assert.doesNotMatch(shown.stdout, /waiting for consent/);
    const waiting = (await cli('approvals', '--json')).json().consents as { id: string }[];
    assert.ok(!waiting.some((c) => c.id === outcome.candidateId), JSON.stringify(waiting));
  });

  it('terminated from the Temporal CLI while it waits for consent: it reads terminated with why, and its consent expired', async () => {
    const { workflowId } = await rig.evolve('(reuse it, terminated)');
    const waiting = await rig.awaitingConsent(workflowId);
    const consents = async () => ((await cli('approvals', '--json')).json().consents as { id: string }[]).map((c) => c.id);
    assert.ok((await consents()).includes(waiting.candidateId), 'it waits for a person');

    await terminateWithTemporalCli(rig.h.cfg, workflowId, 'the operator is away this week');
    // What a person reads afterwards: terminated, with who and why, no longer waiting for anyone.
    assert.ok(!(await consents()).includes(waiting.candidateId), 'nobody can consent to it any more');
    const shown = await cli('evolve', 'show', waiting.candidateId);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(
      shown.stdout,
      new RegExp(
        `^${waiting.candidateId}: terminated — terminated by temporal-cli:\\S+: the operator is away this week; the consent it waited for expired\\n`,
      ),
    );
    assert.doesNotMatch(shown.stdout, /waiting for consent/);
    const late = await cli('evolve', 'approve', waiting.candidateId);
    assert.equal(late.code, 1);
    assert.match(
      late.stderr,
      /is terminated \(terminated by temporal-cli:\S+: the operator is away this week; .*\): only a verified candidate/,
    );
    assert.equal(await rig.current(), rig.install.buildId, 'nothing changed');
  });
});
