import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, it } from 'node:test';
import type Docker from 'dockerode';
import { stopControlContainers } from '../../app/control-worker.ts';
import { dockerClient } from '../../infra/docker.ts';
import { NODE_PATH } from '../../runner/protocol.ts';
import { sandboxDeploymentName } from '../../services/config.ts';
import {
  ControlWorkerOfAnotherHomeError,
  controlContainerName,
  controlWorkers,
  LABEL_BUILD,
  LABEL_CONTROL,
} from '../../services/evolution/control-worker.ts';
import { LABEL_DEPLOYMENT, LABEL_JOB, LABEL_OWNER, LABEL_SANDBOX, OWNER, sandboxDeployment } from '../../services/sandbox/container.ts';
import { reapOrphans, reapSandboxes } from '../../services/sandbox/docker.ts';
import { testConfig } from '../helpers/env.ts';

// Forges sharing one Docker engine. Two homes whose deployments share a name (both on the default task
// queue, each with its own Temporal): one home's forge up, forge down and retirements must never
// stop or remove the other's control worker containers, and a version whose container name the
// other home holds is refused with the fix, rather than taken for this home's own.

const cfg = testConfig();
const deployment = `test-homes-${process.pid}`;
let docker: Docker;
let homeA: string;
let homeB: string;
const user = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };

const spec = (home: string, buildId: string) => ({ deployment, buildId, image: cfg.FORGE_SANDBOX_IMAGE, env: {}, home, user });
const exists = async (buildId: string) =>
  (await docker.listContainers({ all: true, filters: { name: [`^/${controlContainerName(deployment, buildId)}$`] } })).length === 1;

before(() => {
  docker = dockerClient(cfg);
  homeA = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-home-a-'));
  homeB = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-home-b-'));
});

after(async () => {
  for (const c of await docker.listContainers({ all: true, filters: { label: [`${LABEL_CONTROL}=${deployment}`] } }))
    await docker
      .getContainer(c.Id)
      .remove({ force: true })
      .catch(() => undefined);
  fs.rmSync(homeA, { recursive: true, force: true });
  fs.rmSync(homeB, { recursive: true, force: true });
});

it("lists, stops and removes only its own home's control containers, and refuses a version whose container another home holds", async () => {
  const a = controlWorkers(docker, homeA);
  const b = controlWorkers(docker, homeB);
  await a.ensure(spec(homeA, 'build-shared'));
  await b.ensure(spec(homeB, 'build-b'));

  assert.deepEqual(
    (await a.list(deployment)).map((w) => w.buildId),
    ['build-shared'],
  );
  assert.deepEqual(
    (await b.list(deployment)).map((w) => w.buildId),
    ['build-b'],
  );

  // The same tree makes the same build id in both homes: B may not take A's container for its own.
  await assert.rejects(b.ensure(spec(homeB, 'build-shared')), (err: unknown) => {
    assert.ok(err instanceof ControlWorkerOfAnotherHomeError);
    assert.match(err.message, new RegExp(`belongs to the Forge at ${homeA}`));
    assert.match(err.fix ?? '', /FORGE_DEPLOYMENT/);
    return true;
  });
  await assert.rejects(b.remove(deployment, 'build-shared'), ControlWorkerOfAnotherHomeError);
  await assert.rejects(b.state(deployment, 'build-shared'), ControlWorkerOfAnotherHomeError);
  assert.ok(await exists('build-shared'), "A's container is still there");

  // forge down in B stops B's containers only.
  const stopped = await stopControlContainers({ ...cfg, FORGE_DEPLOYMENT: deployment, home: homeB });
  assert.ok(stopped.every((name) => name === controlContainerName(deployment, 'build-b')));
  assert.ok(await exists('build-shared'));

  await b.remove(deployment, 'build-b');
  assert.equal(await exists('build-b'), false);
  assert.ok(await exists('build-shared'));
});

it('counts a container made before the home label by the home it mounts', async () => {
  // As `ensure` made them before: the deployment and build labels and the home bind-mounted at its own path.
  const name = controlContainerName(deployment, 'build-legacy');
  const image = await docker.getImage(cfg.FORGE_SANDBOX_IMAGE).inspect();
  await docker.createContainer({
    name,
    Image: image.Id,
    Labels: { [LABEL_CONTROL]: deployment, [LABEL_BUILD]: 'build-legacy' },
    HostConfig: { Mounts: [{ Type: 'bind', Source: homeA, Target: homeA }] },
  });
  assert.ok((await controlWorkers(docker, homeA).list(deployment)).some((w) => w.buildId === 'build-legacy'));
  assert.ok(!(await controlWorkers(docker, homeB).list(deployment)).some((w) => w.buildId === 'build-legacy'));
  await assert.rejects(controlWorkers(docker, homeB).remove(deployment, 'build-legacy'), ControlWorkerOfAnotherHomeError);
  await controlWorkers(docker, homeA).remove(deployment, 'build-legacy');
  assert.equal(await exists('build-legacy'), false);
});

it('freezing one home kills its own sandboxes, not those of another home on the same queues', async () => {
  // forge freeze reaps every sandbox container of its deployment (services/control/kill-switch.ts).
  const image = await docker.getImage(cfg.FORGE_SANDBOX_IMAGE).inspect();
  const sandboxOf = (home: string) =>
    docker.createContainer({
      Image: image.Id,
      Labels: { [LABEL_SANDBOX]: '1', [LABEL_OWNER]: OWNER, [LABEL_DEPLOYMENT]: sandboxDeploymentName({ ...cfg, home }) },
    });
  const ofA = await sandboxOf(homeA);
  const ofB = await sandboxOf(homeB);
  const alive = async (c: Docker.Container) => (await docker.listContainers({ all: true, filters: { id: [c.id] } })).length === 1;
  try {
    assert.equal(await reapOrphans(docker, { all: true, deployment: sandboxDeploymentName({ ...cfg, home: homeA }) }), 1);
    assert.equal(await alive(ofA), false);
    assert.ok(await alive(ofB), "the other home's sandbox survives");
  } finally {
    await ofB.remove({ force: true }).catch(() => undefined);
  }
});

it("a process that never named its deployment (a test, a CLI command) labels its sandboxes as its own: another's freeze spares them", async () => {
  // Another such process on the same engine: a CI run's evolve test froze its own sandboxes with its label.
  const other = execFileSync(
    process.execPath,
    ['--import', 'tsx', '-e', "import('./services/sandbox/container.ts').then((m) => process.stdout.write(m.sandboxDeployment()))"],
    { encoding: 'utf8' },
  );
  assert.notEqual(other, sandboxDeployment());
  const image = await docker.getImage(cfg.FORGE_SANDBOX_IMAGE).inspect();
  const labelled = (deployment: string) =>
    docker.createContainer({ Image: image.Id, Labels: { [LABEL_SANDBOX]: '1', [LABEL_OWNER]: OWNER, [LABEL_DEPLOYMENT]: deployment } });
  const mine = await labelled(sandboxDeployment());
  const theirs = await labelled(other);
  try {
    assert.equal(await reapOrphans(docker, { all: true, deployment: other }), 1);
    assert.equal((await docker.listContainers({ all: true, filters: { id: [theirs.id] } })).length, 0);
    assert.equal((await docker.listContainers({ all: true, filters: { id: [mine.id] } })).length, 1, "this process's sandbox survives");
  } finally {
    await mine.remove({ force: true }).catch(() => undefined);
  }
});

it("a freeze tells the sandboxes it killed mid-job from the warm pools' and from stopped ones, and removes them all", async () => {
  // forge freeze words these apart: a warm pool refilled since the last freeze is no tool that was running.
  const deployment = `test-freeze-${process.pid}`;
  const image = await docker.getImage(cfg.FORGE_SANDBOX_IMAGE).inspect();
  const sandbox = async (job: string, running: boolean) => {
    const c = await docker.createContainer({
      Image: image.Id,
      Cmd: [NODE_PATH, '-e', 'setInterval(() => {}, 1e9)'],
      Labels: { [LABEL_SANDBOX]: '1', [LABEL_OWNER]: OWNER, [LABEL_DEPLOYMENT]: deployment, [LABEL_JOB]: job },
    });
    if (running) await c.start();
    return c.id;
  };
  const ids = [
    await sandbox('pool-1a2b3c4d', true),
    await sandbox('egress-spare-3a4b5c6d', true),
    await sandbox('job-5e6f7a8b', true),
    await sandbox('verify-task-x.1', true),
    await sandbox('job-9c0d1e2f', false),
  ];
  assert.deepEqual(await reapSandboxes(docker, { all: true, deployment }), { total: 5, jobs: 2, warmPool: 2, stopped: 1 });
  assert.deepEqual(await docker.listContainers({ all: true, filters: { id: ids } }), []);
});
