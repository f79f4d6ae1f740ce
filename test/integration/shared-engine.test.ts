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
  LABEL_HOME,
} from '../../services/evolution/control-worker.ts';
import { LABEL_DEPLOYMENT, LABEL_JOB, LABEL_OWNER, LABEL_SANDBOX, OWNER, sandboxDeployment } from '../../services/sandbox/container.ts';
import { reapOrphans, reapSandboxes } from '../../services/sandbox/docker.ts';
import { testConfig } from '../helpers/env.ts';

// Forges sharing one Docker engine. Two homes whose deployments share a name (both on the default task
// queue, each with its own Temporal) and a tree (the same build id): each runs its own container of
// that version, and one home's forge up, forge down and retirements never stop or remove the other's.

const cfg = testConfig();
const deployment = `test-homes-${process.pid}`;
/** A deployment named as the default one is (forge-<queue>, the queue forge-…), whose containers read forge-forge-… */
const forgeNamed = `forge-forge-test-${process.pid}`;
let docker: Docker;
let homeA: string;
let homeB: string;
const user = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };

/** The sandbox image with a command that stays up, as a control worker does (its own command ends at once without a job). */
const sleeper = `forge-test-sleeper:${process.pid}`;
const spec = (home: string, buildId: string) => ({ deployment, buildId, image: sleeper, env: {}, home, user });
const named = async (name: string) => (await docker.listContainers({ all: true, filters: { name: [`^/${name}$`] } }))[0];
const running = async (name: string) => (await named(name))?.State === 'running';
const exists = async (name: string) => (await named(name)) !== undefined;

before(async () => {
  docker = dockerClient(cfg);
  const base = await docker.createContainer({ Image: cfg.FORGE_SANDBOX_IMAGE });
  const [repo, tag] = sleeper.split(':') as [string, string];
  await base.commit({ repo, tag, changes: `CMD ["${NODE_PATH}", "-e", "setInterval(() => {}, 1e9)"]` });
  await base.remove();
  homeA = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-home-a-'));
  homeB = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-home-b-'));
});

after(async () => {
  const ours = [deployment, forgeNamed].map((d) => `${LABEL_CONTROL}=${d}`);
  for (const c of (await Promise.all(ours.map((label) => docker.listContainers({ all: true, filters: { label: [label] } })))).flat())
    await docker
      .getContainer(c.Id)
      .remove({ force: true })
      .catch(() => undefined);
  await docker
    .getImage(sleeper)
    .remove()
    .catch(() => undefined);
  fs.rmSync(homeA, { recursive: true, force: true });
  fs.rmSync(homeB, { recursive: true, force: true });
});

it("runs each home's own container of the same version, and lists, stops and removes only its own", async () => {
  const a = controlWorkers(docker, homeA);
  const b = controlWorkers(docker, homeB);
  const inA = await a.ensure(spec(homeA, 'build-shared'));
  const inB = await b.ensure(spec(homeB, 'build-shared'));
  await b.ensure(spec(homeB, 'build-b'));
  assert.notEqual(inA.name, inB.name, 'the same version, a container per home');
  assert.ok(inB.started, "B started its own, rather than taking A's");
  assert.ok((await running(inA.name)) && (await running(inB.name)));
  assert.deepEqual(
    (await a.list(deployment)).map((w) => w.buildId),
    ['build-shared'],
  );
  assert.deepEqual((await b.list(deployment)).map((w) => w.buildId).sort(), ['build-b', 'build-shared']);
  assert.equal((await a.state(deployment, 'build-shared')).running, true);

  // forge down in B stops B's containers only.
  const stopped = await stopControlContainers({ ...cfg, FORGE_DEPLOYMENT: deployment, home: homeB });
  assert.deepEqual(stopped.sort(), [controlContainerName(deployment, 'build-b', homeB), inB.name].sort());
  assert.ok(await running(inA.name), "A's container of the same version still runs");

  await b.remove(deployment, 'build-shared');
  await b.remove(deployment, 'build-b');
  assert.equal(await exists(inB.name), false);
  assert.ok(await running(inA.name));
  assert.deepEqual(
    (await a.list(deployment)).map((w) => w.buildId),
    ['build-shared'],
  );
});

it('adopts a container made before names carried the home: its own home renames it, another leaves it be', async () => {
  // As `ensure` made them before: named <deployment>-<build id>, the home bind-mounted at its own path, no home label.
  const old = `${deployment}-build-legacy`;
  const image = await docker.getImage(cfg.FORGE_SANDBOX_IMAGE).inspect();
  const made = await docker.createContainer({
    name: old,
    Image: image.Id,
    Cmd: [NODE_PATH, '-e', 'setTimeout(() => {}, 600000)'],
    Labels: { [LABEL_CONTROL]: deployment, [LABEL_BUILD]: 'build-legacy' },
    HostConfig: { Mounts: [{ Type: 'bind', Source: homeA, Target: homeA }] },
  });
  await made.start();
  assert.ok((await controlWorkers(docker, homeA).list(deployment)).some((w) => w.buildId === 'build-legacy'));
  assert.ok(!(await controlWorkers(docker, homeB).list(deployment)).some((w) => w.buildId === 'build-legacy'));

  // B's state of that version is its own (none): A's old container is not B's, and stays as it is.
  assert.equal((await controlWorkers(docker, homeB).state(deployment, 'build-legacy')).running, false);
  assert.ok(await running(old));

  // A finds it under its new name, still running: a rename does not restart it.
  assert.equal((await controlWorkers(docker, homeA).state(deployment, 'build-legacy')).running, true);
  assert.equal(await named(old), undefined);
  const renamed = controlContainerName(deployment, 'build-legacy', homeA);
  assert.equal((await named(renamed))?.Id, made.id);
  assert.ok(await running(renamed));
  await controlWorkers(docker, homeA).remove(deployment, 'build-legacy');
  assert.equal(await named(renamed), undefined);
});

it('a deployment named forge-forge-… (the default) names its containers forge-…, and renames its own made under the old name', async () => {
  const a = controlWorkers(docker, homeA);
  const fresh = await a.ensure({ ...spec(homeA, 'build-new'), deployment: forgeNamed });
  assert.match(fresh.name, new RegExp(`^forge-test-${process.pid}-build-new-[0-9a-f]{8}$`));
  assert.equal(fresh.name, controlContainerName(forgeNamed, 'build-new', homeA));

  // As `ensure` named them before: the deployment whole, then the build id and the home's mark (labelled with its home).
  const current = controlContainerName(forgeNamed, 'build-old', homeA);
  const old = `${forgeNamed}-build-old-${current.slice(-8)}`;
  const made = await docker.createContainer({
    name: old,
    Image: sleeper,
    Labels: { [LABEL_CONTROL]: forgeNamed, [LABEL_BUILD]: 'build-old', [LABEL_HOME]: homeA },
  });
  await made.start();
  // Another home leaves it be; its own home finds it under the new name, still running.
  assert.equal((await controlWorkers(docker, homeB).state(forgeNamed, 'build-old')).running, false);
  assert.ok(await running(old));
  assert.equal((await a.state(forgeNamed, 'build-old')).running, true);
  assert.equal(await named(old), undefined);
  assert.equal((await named(current))?.Id, made.id);
  assert.deepEqual((await a.list(forgeNamed)).map((w) => w.name).sort(), [current, fresh.name].sort());
  assert.ok((await a.list(forgeNamed)).every((w) => !w.name.startsWith('forge-forge-')));
});

it('refuses a container under its name that another home made, naming the fix', async () => {
  const name = controlContainerName(deployment, 'build-taken', homeB);
  const image = await docker.getImage(cfg.FORGE_SANDBOX_IMAGE).inspect();
  await docker.createContainer({ name, Image: image.Id, Labels: { [LABEL_CONTROL]: deployment, [LABEL_HOME]: homeA } });
  await assert.rejects(controlWorkers(docker, homeB).ensure(spec(homeB, 'build-taken')), (err: unknown) => {
    assert.ok(err instanceof ControlWorkerOfAnotherHomeError);
    assert.match(err.message, new RegExp(`belongs to the Forge at ${homeA}`));
    assert.match(err.fix ?? '', /docker rm -f/);
    return true;
  });
  assert.ok(await named(name), 'left as it was');
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
