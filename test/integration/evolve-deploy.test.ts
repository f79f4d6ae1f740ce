import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { DeployOutcome } from '../../domain/deploy.ts';
import type { EvolveOutcome } from '../../domain/evolve.ts';
import type { TaskResult } from '../../domain/task.ts';
import { dockerClient } from '../../infra/docker.ts';
import { createKillSwitch } from '../../services/control/kill-switch.ts';
import { controlWorkers } from '../../services/evolution/control-worker.ts';
import { revisions } from '../../services/evolution/history.ts';
import { deployProgressQuery } from '../../workflows/definitions.ts';
import { harnessCli } from '../helpers/cli.ts';
import { type EvolveRig, GOOD_RULE, startEvolveRig } from '../helpers/evolve-rig.ts';
import { until } from '../helpers/wait.ts';

// Self-evolution, part 2 (issue 12): a verified candidate → a person's consent from the CLI → the
// candidate's control worker container starts as a new version of the worker deployment and becomes
// current → probed (seconds here) → promoted, with a commit in the harness history; then a person
// rolls the harness back to the installed revision through the same swap and probe. Real Docker,
// Temporal (Worker Versioning on the dev server) and Postgres; the scripted model plays the agents.

describe('evolve → consent → swap → probe → promoted, then rolled back by hand', () => {
  let rig: EvolveRig;
  let cli: ReturnType<typeof harnessCli>;
  before(async () => {
    rig = await startEvolveRig();
    cli = harnessCli(rig.h, { user: 'operator', timeoutMs: 600_000 });
  });
  after(() => rig?.close());

  const versionOf = async (workflowId: string) => {
    const d = await rig.h.client.workflow.getHandle(workflowId).describe();
    return d.raw.workflowExecutionInfo?.versioningInfo?.deploymentVersion?.buildId ?? null;
  };

  it('approve from the CLI: the candidate becomes current, is probed healthy and promoted; new tasks run on it', async () => {
    assert.equal(await rig.current(), rig.install.buildId, 'forge up made the installed tree current');
    const { workflowId } = await rig.evolve('(reuse it)');
    const waiting = await rig.awaitingConsent(workflowId);

    const shown = await cli('evolve', 'show', waiting.candidateId);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /waiting for consent: forge evolve approve/);
    assert.ok(shown.stdout.includes(waiting.imageDigest), 'show prints the digest a consent must carry');

    const approved = await cli('evolve', 'approve', waiting.candidateId, '--wait', '--json');
    assert.equal(approved.code, 0, approved.stdout + approved.stderr);
    const outcome = approved.json().outcome as EvolveOutcome;
    assert.equal(outcome.status, 'promoted', outcome.reason);

    const deploy = rig.h.client.workflow.getHandle(`deploy-${waiting.candidateId}`);
    const result = (await deploy.result()) as DeployOutcome;
    assert.equal(result.previous, rig.install.buildId);
    assert.equal(await rig.current(), result.buildId, 'the candidate is the current version');
    const progress = await deploy.query(deployProgressQuery);
    assert.ok(progress.probes.length >= 2 && progress.probes.every((p) => p.healthy), JSON.stringify(progress.probes));
    assert.ok(
      progress.probes.every((p) => p.sample.containerRunning && p.sample.probeTasks.total >= 1),
      'each probe checked the container and ran a probe task',
    );
    // The evolve cycle and its deploy ran on the installed version: the candidate never judged itself.
    assert.equal(await versionOf(workflowId), rig.install.buildId);
    assert.equal(await versionOf(deploy.workflowId), rig.install.buildId);

    const after = await rig.task('count the words in "five six seven"');
    assert.equal(after.result.status, 'completed');
    assert.equal(await versionOf(after.workflowId), result.buildId, 'a new task runs on the promoted version');

    const [version] = await rig.h.db.sql<{ status: string; revision: string | null; kind: string }[]>`
      select status, revision, kind from deploy_versions where build_id = ${result.buildId}`;
    assert.deepEqual([version?.status, version?.kind], ['promoted', 'evolve']);
    const history = await revisions(rig.h.home);
    assert.equal(history.length, 2, 'the install and the promotion');
    assert.equal(history[0]!.sha, version?.revision);
    assert.equal(history[0]!.buildId, result.buildId);
    assert.match(history[0]!.subject, /^Promote harness candidate/);
    const [candidate] = await rig.h.db.sql<{ status: string; consent: { by: string } | null }[]>`
      select status, consent from evolve_candidates where id = ${waiting.candidateId}`;
    assert.deepEqual([candidate?.status, candidate?.consent?.by], ['promoted', 'operator']);
  });

  it('forge evolve rollback <install revision>: the same swap and probe bring the installed harness back', async () => {
    const history = await revisions(rig.h.home);
    const install = history.at(-1)!;
    assert.equal(install.buildId, rig.install.buildId);
    const promoted = await rig.current();
    const rolled = await cli('evolve', 'rollback', install.sha.slice(0, 10), '--wait', '--json');
    assert.equal(rolled.code, 0, rolled.stdout + rolled.stderr);
    const outcome = rolled.json().outcome as DeployOutcome;
    assert.equal(outcome.status, 'promoted', outcome.reason);
    assert.equal(await rig.current(), rig.install.buildId);
    assert.equal(outcome.previous, promoted);
    const now = await revisions(rig.h.home);
    assert.equal(now.length, 3);
    assert.match(now[0]!.subject, /^Roll back the harness to/);
    assert.equal(now[0]!.buildId, rig.install.buildId);

    const listed = await cli('evolve', 'history');
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /Roll back the harness to/);
    assert.match(listed.stdout, /Promote harness candidate/);
    assert.match(listed.stdout, /The harness as installed/);
    // The promoted version's container drains and goes once Temporal says so; the installed one runs.
    const workers = await controlWorkers(dockerClient(rig.h.cfg), rig.h.cfg.home).list(rig.deployment);
    assert.ok(workers.some((w) => w.buildId === rig.install.buildId && w.running));
    await until('the harness file is back as installed', async () => !(await fileHasRule(rig)));

    // Again, to the revision that now serves (by commit, then by build id): refused up front, exit 1, no deploy cycle.
    const deploys = async () => {
      let n = 0;
      for await (const _ of rig.h.client.workflow.list({ query: `WorkflowType = 'deployWorkflow'` })) n++;
      return n;
    };
    const before = await deploys();
    const again = await cli('evolve', 'rollback', install.sha.slice(0, 10), '--json');
    assert.equal(again.code, 1, again.stdout + again.stderr);
    assert.equal(again.json().error, 'REVISION_ALREADY_CURRENT');
    assert.match(
      String(again.json().message),
      new RegExp(`^${install.sha.slice(0, 12)} ".*" \\(${rig.install.buildId}\\) is already the current harness`),
    );
    const byBuild = await cli('evolve', 'rollback', rig.install.buildId);
    assert.equal(byBuild.code, 1, byBuild.stdout + byBuild.stderr);
    assert.match(byBuild.stderr, /is already the current harness: nothing to roll back\n {2}fix: forge evolve history lists the revisions/);
    await new Promise((r) => setTimeout(r, 1500)); // visibility lists a started workflow within moments
    assert.equal(await deploys(), before, 'no deploy cycle was started');
  });

  it('a version rolled back to and away again keeps its container while a workflow pinned to it from before still runs', async () => {
    // A task on the installed version waits for a person (a new tool's write); the harness goes to
    // the promoted revision, then back to the installed one, whose probe a freeze fails: the
    // rollback ends what started on it since, but the waiting task still needs its worker.
    const history = await revisions(rig.h.home);
    const promotedSha = history.find((r) => /^Promote harness candidate/.test(r.subject))!.sha;
    const installSha = history.at(-1)!.sha;
    const taskId = `rig-pinned-${Date.now()}`;
    const task = await rig.h.client.workflow.start('taskWorkflow', {
      taskQueue: rig.h.cfg.FORGE_TASK_QUEUE,
      workflowId: taskId,
      args: [{ task: 'create a note titled groceries with milk and eggs', sandboxQueue: rig.h.cfg.FORGE_SANDBOX_QUEUE }],
    });
    let approval = '';
    await until('the task waits for a person', async () => {
      const pending = (await cli('approvals', '--json')).json().pending as { id: string; workflow_id: string; kind: string }[];
      approval = pending.find((p) => p.workflow_id === taskId && p.kind === 'write')?.id ?? '';
      return approval !== '';
    });
    assert.equal(await versionOf(taskId), rig.install.buildId);

    const toPromoted = await cli('evolve', 'rollback', promotedSha.slice(0, 10), '--wait', '--json');
    assert.equal((toPromoted.json().outcome as DeployOutcome).status, 'promoted', toPromoted.stdout);
    const promoted = await rig.current();

    const back = cli('evolve', 'rollback', installSha.slice(0, 10), '--wait', '--json');
    await until('the installed version is current again, in its probe window', async () => (await rig.current()) === rig.install.buildId);
    // At once (the probe window is seconds here): the switch itself, as forge freeze flips it.
    await createKillSwitch(rig.h.db.sql).freeze('tester', 'fail the probe');
    const rolled = await back;
    assert.equal((rolled.json().outcome as DeployOutcome).status, 'rolled-back', rolled.stdout);
    assert.equal(await rig.current(), promoted);
    await createKillSwitch(rig.h.db.sql).thaw('tester');

    const workers = await controlWorkers(dockerClient(rig.h.cfg), rig.h.cfg.home).list(rig.deployment);
    assert.ok(
      workers.some((w) => w.buildId === rig.install.buildId && w.running),
      'the installed version keeps its container: a task pinned to it waits',
    );
    assert.equal((await cli('approve', approval)).code, 0);
    const result = (await Promise.race([
      task.result(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('the pinned task never finished')), 120_000)),
    ])) as TaskResult;
    assert.equal(result.status, 'completed', result.answer);
  });
});

async function fileHasRule(rig: EvolveRig): Promise<boolean> {
  const fs = await import('node:fs/promises');
  const text = await fs.readFile(`${rig.h.home}/harness-history/harness/prompts/agent.ts`, 'utf8');
  return text.includes(GOOD_RULE);
}
