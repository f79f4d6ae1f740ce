import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, it } from 'node:test';
import type { DeployOutcome } from '../../domain/deploy.ts';
import type { EvolveOutcome } from '../../domain/evolve.ts';
import { dockerClient } from '../../infra/docker.ts';
import { controlWorkers } from '../../services/evolution/control-worker.ts';
import { consentUpdate, deployProgressQuery } from '../../workflows/definitions.ts';
import { type DockerEngine, startDockerd } from '../chaos/components.ts';
import { type EvolveRig, startEvolveRig } from '../helpers/evolve-rig.ts';
import { until } from '../helpers/wait.ts';

// Self-evolution, part 2 (issue 12, item 6): the Docker engine restarts in the probe window. This
// file's Forge runs on a dockerd of its own (its socket and data root: nothing else on the machine
// loses its containers). The engine stops every container and brings back those with a restart
// policy; the deploy ends promoted or rolled back, with exactly one current version all along and
// the containers that should run running.

let dir: string;
let dockerd: DockerEngine;
let rig: EvolveRig;
let watch: ReturnType<EvolveRig['watchCurrent']> | undefined;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-deploy-dockerd-'));
  dockerd = await startDockerd(dir);
  rig = await startEvolveRig({ DOCKER_HOST: dockerd.host, FORGE_PROBE_WINDOW_S: '12', FORGE_PROBE_INTERVAL_S: '2' });
  watch = rig.watchCurrent();
});

after(async () => {
  await watch?.stop();
  await rig?.close();
  await dockerd?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

it('a dockerd restart in the probe window ends in one consistent state: promoted or rolled back, one current version', async () => {
  const { workflowId } = await rig.evolve('(reuse it, engine restarted)');
  const waiting = await rig.awaitingConsent(workflowId);
  await rig.h.client.workflow.getHandle(workflowId).executeUpdate(consentUpdate, {
    args: [{ candidateId: waiting.candidateId, imageDigest: waiting.imageDigest, approve: true, by: 'tester' }],
  });
  const deploy = rig.h.client.workflow.getHandle(`deploy-${waiting.candidateId}`);
  await until(
    'the deploy probes',
    async () => (await deploy.query(deployProgressQuery).catch(() => undefined))?.phase === 'probing',
    300_000,
    200,
  );

  await dockerd.restart();

  const result = (await deploy.result()) as DeployOutcome;
  const outcome = (await rig.h.client.workflow.getHandle(workflowId).result()) as EvolveOutcome;
  assert.ok(['promoted', 'rolled-back'].includes(result.status), result.reason);
  assert.equal(outcome.status, result.status);
  const current = await rig.current();
  assert.equal(current, result.status === 'promoted' ? result.buildId : rig.install.buildId);
  assert.ok(!watch?.seen.has(null), `a version was current all along (saw ${[...(watch?.seen ?? [])].join(', ')})`);
  // The current version's container came back with the engine and serves: a new task completes on it.
  await until(
    'the current version runs again',
    async () => (await controlWorkers(dockerClient(rig.h.cfg), rig.h.cfg.home).state(rig.deployment, current!)).running,
    120_000,
    500,
  );
  const after = await rig.task('count the words in "after the engine restart"');
  assert.equal(after.result.status, 'completed', after.result.answer);
  const containers = await controlWorkers(dockerClient(rig.h.cfg), rig.h.cfg.home).list(rig.deployment);
  assert.equal(
    containers.some((c) => c.buildId === result.buildId),
    result.status === 'promoted',
    'the candidate container is there exactly when it was promoted',
  );
});
