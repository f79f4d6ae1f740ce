import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ForgeConfig } from '../domain/config.ts';
import { buildIdOf } from '../domain/deploy.ts';
import { ForgeError } from '../domain/errors.ts';
import { dockerClient } from '../infra/docker.ts';
import { openDatabase } from '../infra/postgres.ts';
import { tarStream } from '../infra/sandbox-image/tar.ts';
import { rootfsEntries, sharedLibraries } from '../infra/sandbox-image.ts';
import { temporalClient, temporalEndpoint } from '../infra/temporal.ts';
import { workerDeployments } from '../infra/worker-deployment.ts';
import { controlDeploymentName } from '../services/config.ts';
import { controlWorkers } from '../services/evolution/control-worker.ts';
import { createDeployer, versionRow } from '../services/evolution/deploy.ts';
import { ensureHistory } from '../services/evolution/history.ts';
import { createWorkerImages } from '../services/evolution/image.ts';
import { controlWorkerEnv } from '../services/evolution/replay.ts';
import { treeHashOf } from '../services/evolution/workspace.ts';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface ControlVersion {
  buildId: string;
  image: string;
  container: string;
  /** what forge up did: installed this tree's image, restarted the current version's container, or found it running */
  action: 'installed' | 'restarted' | 'running';
  /** the current version is an evolved harness, not this tree's: it stays (a note for the person) */
  evolvedOver?: string;
  ms: number;
}

export class ControlWorkerModeError extends ForgeError {
  constructor(reason: string) {
    super(
      `the control worker could not start in a container: ${reason}`,
      'CONTROL_CONTAINER_FAILED',
      'forge doctor shows what is down; FORGE_CONTROL_WORKER=host runs it as a host process instead',
      {},
    );
  }
}

/**
 * The control worker as a container, a version of the control worker's worker deployment (issue 12):
 * what `forge up` runs by default. The current version stays current (its container restarted if it
 * stopped); the first time, or when this tree changed and the current version was installed from a
 * tree (not evolved), the tree's worker image is built, started, and made current. An evolved
 * current version stays: the tree's change is not swapped over a harness a person consented to.
 */
export async function ensureControlContainer(cfg: ForgeConfig, step: (m: string) => void = () => {}): Promise<ControlVersion> {
  const t0 = Date.now();
  const docker = dockerClient(cfg);
  const client = await temporalClient(cfg);
  const sql = await openDatabase(cfg, { max: 2 });
  try {
    const deployment = controlDeploymentName(cfg);
    const ops = workerDeployments(client.workflowService, cfg.TEMPORAL_NAMESPACE);
    const deployer = createDeployer({
      sql,
      docker,
      deployment,
      home: cfg.home,
      workerEnv: controlWorkerEnv(cfg, temporalEndpoint(cfg).address),
      user: { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 },
      // forge up starts and records versions; it never probes, so the probe's Temporal parts are inert.
      temporal: {
        ...ops,
        async runTask() {
          return { error: 'forge up runs no probe tasks' };
        },
        async versionWorkflows() {
          return [];
        },
        async terminate() {},
      },
    });
    const state = await ops.describe(deployment);
    const current = state.current ? await versionRow(sql, state.current) : null;
    const { hash: treeHash } = await treeHashOf(root);
    const start = async (row: {
      build_id: string;
      image: string;
      image_digest: string;
      tree_hash: string;
      kind: string;
      ref: string | null;
    }) =>
      deployer.startVersion({
        buildId: row.build_id,
        image: row.image,
        imageDigest: row.image_digest,
        treeHash: row.tree_hash,
        kind: row.kind,
        ref: row.ref ?? row.build_id,
        timeoutMs: 300_000,
      });

    if (current && (current.kind !== 'install' || current.tree_hash === treeHash)) {
      const started = await start(current);
      return {
        buildId: current.build_id,
        image: current.image,
        container: started.container,
        action: started.started ? 'restarted' : 'running',
        ...(current.kind !== 'install' && current.tree_hash !== treeHash ? { evolvedOver: current.build_id } : {}),
        ms: Date.now() - t0,
      };
    }

    step('control worker: building the worker image of this tree');
    const images = createWorkerImages({ docker, kit: { nodeRootfs: (node) => rootfsEntries(node, []), sharedLibraries, tar: tarStream } });
    const built = await images.buildTreeImage({ tree: root, treeHash });
    const buildId = buildIdOf(built.digest);
    step(
      `control worker: ${built.tag} ${built.reused ? 'present' : `built in ${(built.ms / 1000).toFixed(1)} s`}; starting version ${buildId}`,
    );
    const started = await start({
      build_id: buildId,
      image: built.tag,
      image_digest: built.digest,
      tree_hash: treeHash,
      kind: 'install',
      ref: treeHash.slice(0, 12),
    });
    await ops.setCurrent(deployment, buildId);
    const revision = await ensureHistory(cfg.home, root, buildId);
    await deployer.markVersion({
      buildId,
      status: 'promoted',
      reason: `installed by forge up from the tree ${treeHash.slice(0, 12)}`,
      revision,
      promoted: true,
    });
    // The version it replaced drains its own workflows; its container goes once Temporal says so (forge up, later).
    if (state.current && state.current !== buildId)
      await deployer.markVersion({ buildId: state.current, status: 'retired', reason: `replaced by ${buildId} (forge up)` });
    return { buildId, image: built.tag, container: started.container, action: 'installed', ms: Date.now() - t0 };
  } catch (err) {
    if (err instanceof ForgeError) throw err;
    throw new ControlWorkerModeError(String((err as Error).message ?? err));
  } finally {
    await sql.end({ timeout: 2 });
    await client.connection.close();
  }
}

/**
 * Containers of versions that are neither current nor ramping and that Temporal says have drained
 * (no workflow pinned to them still runs): stopped and removed. Returns their build ids.
 */
export async function removeDrainedVersions(cfg: ForgeConfig): Promise<string[]> {
  const docker = dockerClient(cfg);
  const client = await temporalClient(cfg);
  try {
    const deployment = controlDeploymentName(cfg);
    const state = await workerDeployments(client.workflowService, cfg.TEMPORAL_NAMESPACE).describe(deployment);
    const workers = controlWorkers(docker, cfg.home);
    const removed: string[] = [];
    for (const c of await workers.list(deployment)) {
      if (c.buildId === state.current || c.buildId === state.ramping) continue;
      const v = state.versions.find((x) => x.buildId === c.buildId);
      if (v && !v.drained) continue;
      await workers.remove(deployment, c.buildId);
      removed.push(c.buildId);
    }
    return removed;
  } finally {
    await client.connection.close();
  }
}

/** Stops every control worker container of this deployment (forge down): they stay stopped until forge up. */
export async function stopControlContainers(cfg: ForgeConfig): Promise<string[]> {
  const docker = dockerClient(cfg);
  const deployment = controlDeploymentName(cfg);
  const stopped: string[] = [];
  for (const c of await controlWorkers(docker, cfg.home).list(deployment)) {
    if (!c.running) continue;
    await docker
      .getContainer(c.name)
      .stop({ t: 15 })
      .catch(() => {});
    stopped.push(c.name);
  }
  return stopped;
}

/**
 * Host-process mode (FORGE_CONTROL_WORKER=host): new workflows go to unversioned workers again and
 * the containers stop. Returns the version that was current, if one was.
 */
export async function serveUnversioned(cfg: ForgeConfig): Promise<string | null> {
  const client = await temporalClient(cfg);
  try {
    const deployment = controlDeploymentName(cfg);
    const ops = workerDeployments(client.workflowService, cfg.TEMPORAL_NAMESPACE);
    const { current } = await ops.describe(deployment);
    if (!current) return null;
    await ops.setCurrent(deployment, null);
    await stopControlContainers(cfg);
    return current;
  } finally {
    await client.connection.close();
  }
}

/** forge doctor's line: which version serves new workflows, its container and its heartbeat. */
export async function checkControlWorker(cfg: ForgeConfig): Promise<{ component: string; ok: boolean; detail: string; fix?: string }> {
  const component = 'control worker';
  const deployment = controlDeploymentName(cfg);
  try {
    const client = await temporalClient(cfg);
    let state: Awaited<ReturnType<ReturnType<typeof workerDeployments>['describe']>>;
    try {
      state = await workerDeployments(client.workflowService, cfg.TEMPORAL_NAMESPACE).describe(deployment);
    } finally {
      await client.connection.close();
    }
    if (!state.current) {
      const host = cfg.FORGE_CONTROL_WORKER === 'host';
      return {
        component,
        ok: host,
        detail: `no current version in worker deployment ${deployment}: unversioned workers get new workflows${host ? ' (FORGE_CONTROL_WORKER=host)' : ''}`,
        fix: host ? undefined : 'forge up (installs the tree as the first version)',
      };
    }
    const running = await controlWorkers(dockerClient(cfg), cfg.home).state(deployment, state.current);
    const sql = await openDatabase(cfg, { max: 1 });
    const [beat] = await sql<{ age: number }[]>`
      select extract(epoch from now() - beat_at)::float8 as age from worker_heartbeats where build_id = ${state.current}`.finally(() =>
      sql.end({ timeout: 2 }),
    );
    const fresh = beat !== undefined && beat.age < 30;
    return {
      component,
      ok: running.running && fresh,
      detail: `current version ${state.current} of ${deployment}${state.ramping ? ` (ramping ${state.ramping})` : ''}: container ${running.running ? 'running' : `down (${running.why.split('\n')[0]})`}, heartbeat ${beat ? `${Math.round(beat.age)} s ago` : 'never'}`,
      ...(running.running && fresh ? {} : { fix: "forge up (restarts the current version's container)" }),
    };
  } catch (err) {
    return {
      component,
      ok: false,
      detail: String((err as Error).message ?? err),
      fix: (err instanceof ForgeError && err.fix) || 'forge up',
    };
  }
}
