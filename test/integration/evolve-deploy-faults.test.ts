import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freeze, thaw } from '../../app/control.ts';
import type { DeployOutcome, DeployProgress } from '../../domain/deploy.ts';
import type { EvolveOutcome } from '../../domain/evolve.ts';
import { dockerClient } from '../../infra/docker.ts';
import { ensureTemporalCli } from '../../infra/temporal-cli.ts';
import { controlContainerName, controlWorkers } from '../../services/evolution/control-worker.ts';
import { revisions } from '../../services/evolution/history.ts';
import { consentUpdate, deployProgressQuery } from '../../workflows/definitions.ts';
import { startTemporal, type TemporalServer } from '../chaos/components.ts';
import { testConfig } from '../helpers/env.ts';
import { type EvolveRig, startEvolveRig } from '../helpers/evolve-rig.ts';
import { until } from '../helpers/wait.ts';

// Self-evolution, part 2 (issue 12, item 6): the swap and the probe window survive faults. The
// worker running the evolve and deploy cycles (the installed version's container) is SIGKILLed in
// the probe window, and this file's own Temporal dev server is restarted in it: each ends promoted
// or rolled back with exactly one current version all along. A freeze holds the swap until thaw,
// and a freeze in the probe window rolls the new version back.

describe('deploy faults: SIGKILL and a Temporal restart in the probe window, freeze before and during it', () => {
  let rig: EvolveRig;
  let temporal: TemporalServer;
  let dir: string;
  let watch: ReturnType<EvolveRig['watchCurrent']> | undefined;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-deploy-faults-'));
    temporal = await startTemporal(await ensureTemporalCli(testConfig()), dir);
    // Longer windows: the faults land inside them.
    rig = await startEvolveRig({ TEMPORAL_ADDRESS: temporal.address, FORGE_PROBE_WINDOW_S: '12', FORGE_PROBE_INTERVAL_S: '2' });
    watch = rig.watchCurrent();
  });
  after(async () => {
    await watch?.stop();
    await rig?.close();
    await temporal?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function consented(marker: string) {
    const { workflowId } = await rig.evolve(marker);
    const waiting = await rig.awaitingConsent(workflowId);
    return { workflowId, waiting, deploy: rig.h.client.workflow.getHandle(`deploy-${waiting.candidateId}`) };
  }
  const approve = (workflowId: string, waiting: { candidateId: string; imageDigest: string }) =>
    rig.h.client.workflow.getHandle(workflowId).executeUpdate(consentUpdate, {
      args: [{ candidateId: waiting.candidateId, imageDigest: waiting.imageDigest, approve: true, by: 'tester' }],
    });
  const phase = async (deploy: { query: (q: typeof deployProgressQuery) => Promise<DeployProgress> }) =>
    (await deploy.query(deployProgressQuery).catch(() => undefined))?.phase;

  it('SIGKILL of the worker running the cycle, then a Temporal restart, in the probe window: it resumes to one outcome', async () => {
    const { workflowId, waiting, deploy } = await consented('(reuse it, crashed)');
    await approve(workflowId, waiting);
    await until('the deploy probes', async () => (await phase(deploy)) === 'probing', 300_000, 200);

    // The installed version's container runs the evolve and deploy workflows: kill its process as a crash would.
    const docker = dockerClient(rig.h.cfg);
    const name = controlContainerName(rig.deployment, rig.install.buildId, rig.h.cfg.home);
    const pid = (await docker.getContainer(name).inspect()).State.Pid;
    process.kill(pid, 'SIGKILL');
    await temporal.restart();

    const outcome = (await rig.h.client.workflow.getHandle(workflowId).result()) as EvolveOutcome;
    const result = (await deploy.result()) as DeployOutcome;
    assert.ok(['promoted', 'rolled-back'].includes(result.status), result.reason);
    assert.equal(outcome.status, result.status);
    assert.equal(await rig.current(), result.status === 'promoted' ? result.buildId : rig.install.buildId);
    const rows = await rig.h.db.sql<{ n: number }[]>`select count(*)::int as n from deploy_versions where build_id = ${result.buildId}`;
    assert.equal(rows[0]?.n, 1);
    const commits = (await revisions(rig.h.home)).filter((r) => r.buildId === result.buildId);
    assert.equal(commits.length, result.status === 'promoted' ? 1 : 0, 'one commit for a promotion, none twice');
    const rollbacks = await rig.h.db.sql`select 1 from deploy_rollbacks where deploy_id = ${deploy.workflowId}`;
    assert.equal(rollbacks.length, result.status === 'rolled-back' ? 1 : 0);
    assert.ok(!watch?.seen.has(null), `a version was current all along (saw ${[...(watch?.seen ?? [])].join(', ')})`);
    // Back to the installed version for the next case, through the same cycle.
    if (result.status === 'promoted') {
      const install = (await revisions(rig.h.home)).at(-1)!;
      const back = await rig.h.client.workflow.execute('deployWorkflow', {
        taskQueue: rig.h.cfg.FORGE_TASK_QUEUE,
        workflowId: `deploy-back-${Date.now()}`,
        args: [
          {
            kind: 'rollback',
            ref: install.sha,
            image: (await controlWorkers(docker, rig.h.cfg.home).list(rig.deployment)).find((w) => w.buildId === rig.install.buildId)!
              .image,
            imageDigest: (
              await rig.h.db.sql<{ d: string }[]>`select image_digest as d from deploy_versions where build_id = ${rig.install.buildId}`
            )[0]!.d,
            treeHash: (
              await rig.h.db.sql<{ t: string }[]>`select tree_hash as t from deploy_versions where build_id = ${rig.install.buildId}`
            )[0]!.t,
            sandboxQueue: rig.h.cfg.FORGE_SANDBOX_QUEUE,
            by: 'tester',
          },
        ],
      });
      assert.equal((back as DeployOutcome).status, 'promoted');
    }
  });

  it('frozen: no swap until thaw; a freeze in the probe window rolls the new version back', async () => {
    const { workflowId, waiting, deploy } = await consented('(reuse it, frozen)');
    const before = await rig.current();
    await freeze(rig.h.cfg, 'tester', 'holding the swap');
    try {
      await approve(workflowId, waiting);
      await until(
        'the deploy waits for thaw',
        async () => (await deploy.query(deployProgressQuery).catch(() => undefined))?.frozen === true,
        120_000,
        200,
      );
      await new Promise((r) => setTimeout(r, 4000));
      assert.equal(await rig.current(), before, 'no swap while frozen');
    } finally {
      await thaw(rig.h.cfg, 'tester');
    }
    await until('the deploy probes', async () => (await phase(deploy)) === 'probing', 300_000, 200);
    await freeze(rig.h.cfg, 'tester', 'stop evolving');
    try {
      const result = (await deploy.result()) as DeployOutcome;
      assert.equal(result.status, 'rolled-back');
      assert.match(result.reason, /frozen during the probe window/);
      assert.equal(await rig.current(), before, 'the version that served before serves again');
      const outcome = (await rig.h.client.workflow.getHandle(workflowId).result()) as EvolveOutcome;
      assert.equal(outcome.status, 'rolled-back');
    } finally {
      await thaw(rig.h.cfg, 'tester');
    }
  });
});
