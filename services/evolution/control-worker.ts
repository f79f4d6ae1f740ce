import { createHash } from 'node:crypto';
import type Docker from 'dockerode';
import { ForgeError } from '../../domain/errors.ts';
import { containerLog, containerState, lastLines, removeContainer } from './containers.ts';
import { LABEL_TREE, modelsMount, WORKER_TMPFS } from './image.ts';

/**
 * The production control worker as a container: one per version (build id), from a worker image
 * (services/evolution/image.ts). Workflows, the model and Postgres; never the Docker socket. It
 * shares the host's loopback (Temporal, Postgres and the model listen there) and FORGE_HOME (tool
 * folders, the workflow bundle cache), runs as the user who runs Forge with every capability
 * dropped, and comes back by itself after a Docker engine restart.
 */
export const LABEL_CONTROL = 'forge.control';
export const LABEL_BUILD = 'forge.control.build';
/** the FORGE_HOME whose control worker it is: two Forge homes may share one Docker engine */
export const LABEL_HOME = 'forge.control.home';

const homeMark = (home: string) => createHash('sha256').update(home).digest('hex').slice(0, 8);

/**
 * The deployment as the start of a container name. The default deployment is `forge-` and the
 * control queue, itself `forge-control` by default, so its containers read forge-forge-control-…:
 * the repeated `forge-` is said once. (The deployment's own name, which Temporal keeps its
 * versions under, is left as it is.)
 */
const nameStem = (deployment: string) => deployment.replace(/^forge-forge-/, 'forge-');

/**
 * A version's container in one home: the home's mark in the name, so two homes on one Docker engine
 * that share a deployment name and a tree (the same build id) each have their own.
 */
export const controlContainerName = (deployment: string, buildId: string, home: string) =>
  `${nameStem(deployment)}-${buildId}-${homeMark(home)}`;

/**
 * The names a version's container had before, newest first: the deployment's name whole (before
 * the stem said `forge-` once), and before that without the home's mark. Each is renamed to the
 * current name by its own home.
 */
const earlierNames = (deployment: string, buildId: string, home: string): string[] =>
  [...new Set([`${deployment}-${buildId}-${homeMark(home)}`, `${deployment}-${buildId}`])].filter(
    (n) => n !== controlContainerName(deployment, buildId, home),
  );

export interface ControlWorkerSpec {
  deployment: string;
  buildId: string;
  image: string;
  /** the worker's environment: Temporal, the database, the model, the queues (candidateWorkerEnv and the like) */
  env: Record<string, string>;
  home: string;
  user: { uid: number; gid: number };
}

export class ControlWorkerStartError extends ForgeError {
  constructor(name: string, reason: string) {
    super(
      `the control worker container ${name} did not start: ${reason}`,
      'CONTROL_WORKER_FAILED',
      `read its log (docker logs ${name}); forge doctor checks Temporal, Postgres and the model it needs`,
      { container: name },
    );
  }
}

/**
 * A container under this home's name for a version that another Forge home started (by hand, or a
 * collision of the homes' marks): never taken for this home's own.
 */
export class ControlWorkerOfAnotherHomeError extends ForgeError {
  constructor(name: string, owner: string, home: string) {
    super(
      `the control worker container ${name} belongs to the Forge at ${owner}, not to this one (${home})`,
      'CONTROL_WORKER_OF_ANOTHER_HOME',
      `remove it if that Forge is gone (docker rm -f ${name}), or give this home a deployment of its own (FORGE_DEPLOYMENT), and run forge up again`,
      { container: name, owner, home },
    );
  }
}

interface ListedContainer {
  Labels: Record<string, string>;
  Mounts?: { Type?: string; Source?: string; Destination?: string }[];
}

/**
 * Which home a control container serves: its label, or, for one started before the label existed,
 * the FORGE_HOME it bind-mounts (every control container mounts its own home at the same path).
 */
function homeOf(c: ListedContainer): string | undefined {
  return c.Labels[LABEL_HOME] || c.Mounts?.find((m) => m.Type === 'bind' && m.Source === m.Destination)?.Source;
}

/**
 * The control worker containers of one Forge home (FORGE_HOME): it starts, lists, stops and removes
 * only its own, never those of another home on the same Docker engine.
 */
export function controlWorkers(docker: Docker, home: string) {
  /** This home's container of that name, if there is one; another home's is refused, naming the fix. */
  async function own(name: string): Promise<boolean> {
    const [found] = await docker.listContainers({ all: true, filters: { name: [`^/${name}$`] } });
    if (!found) return false;
    const owner = homeOf(found);
    if (owner && owner !== home) throw new ControlWorkerOfAnotherHomeError(name, owner, home);
    return true;
  }

  /**
   * The version's container name in this home. A container this home made under an earlier name
   * (earlierNames) is renamed to it (running or not: a rename does not stop it); one of another
   * home under an old name is left to that home.
   */
  async function nameOf(deployment: string, buildId: string): Promise<string> {
    const name = controlContainerName(deployment, buildId, home);
    for (const old of earlierNames(deployment, buildId, home)) {
      const [found] = await docker.listContainers({ all: true, filters: { name: [`^/${old}$`] } });
      if (found && homeOf(found) === home && !(await own(name)))
        await docker
          .getContainer(found.Id)
          .rename({ name })
          .catch((err: unknown) => {
            // a concurrent start of the same home renamed it first
            if ((err as { statusCode?: number }).statusCode !== 404 && (err as { statusCode?: number }).statusCode !== 409) throw err;
          });
    }
    await own(name);
    return name;
  }

  /** Starts the version's container unless it already runs (a retried start is a no-op); returns its name. */
  async function ensure(spec: ControlWorkerSpec): Promise<{ name: string; started: boolean }> {
    const name = await nameOf(spec.deployment, spec.buildId);
    const state = await containerState(docker.getContainer(name));
    if (state.running) return { name, started: false };
    // A stopped one (a crash, an engine restart without its restart) is made again from the spec.
    await removeContainer(docker, name);
    const image = await docker.getImage(spec.image).inspect();
    const container = await docker.createContainer({
      name,
      Image: image.Id,
      User: `${spec.user.uid}:${spec.user.gid}`,
      Env: Object.entries({
        ...spec.env,
        FORGE_WORKER_ROLE: 'control',
        FORGE_DEPLOYMENT: spec.deployment,
        FORGE_BUILD_ID: spec.buildId,
        FORGE_HOME: spec.home,
        FORGE_WATCH_TOOLS: '0',
        HOME: '/tmp',
      }).map(([k, v]) => `${k}=${v}`),
      Labels: {
        [LABEL_CONTROL]: spec.deployment,
        [LABEL_BUILD]: spec.buildId,
        [LABEL_HOME]: spec.home,
        [LABEL_TREE]: image.Config?.Labels?.[LABEL_TREE] ?? '',
      },
      HostConfig: {
        NetworkMode: 'host',
        Mounts: [{ Type: 'bind', Source: spec.home, Target: spec.home }, ...modelsMount(spec.env.FORGE_MODELS_DIR)],
        ReadonlyRootfs: true,
        Tmpfs: WORKER_TMPFS,
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges'],
        PidsLimit: 512,
        Memory: 2 * 1024 ** 3,
        RestartPolicy: { Name: 'unless-stopped' },
      },
    });
    await container.start();
    return { name, started: true };
  }

  /** Whether it runs, and if not, why (its exit code and last log lines). */
  async function state(deployment: string, buildId: string) {
    return containerState(docker.getContainer(await nameOf(deployment, buildId)));
  }

  /** The end of its log, for an error a person reads. */
  async function logTail(deployment: string, buildId: string): Promise<string> {
    return lastLines(await containerLog(docker.getContainer(await nameOf(deployment, buildId))).catch(() => ''));
  }

  async function remove(deployment: string, buildId: string): Promise<void> {
    const name = await nameOf(deployment, buildId);
    if (await own(name)) await removeContainer(docker, name);
  }

  /** The versions of a deployment that have a container of this home here, running or not. */
  async function list(deployment: string): Promise<{ buildId: string; name: string; running: boolean; image: string }[]> {
    const found = await docker.listContainers({ all: true, filters: { label: [`${LABEL_CONTROL}=${deployment}`] } });
    return found
      .filter((c) => (homeOf(c) ?? home) === home)
      .map((c) => ({
        buildId: c.Labels[LABEL_BUILD] ?? '',
        name: (c.Names[0] ?? '').replace(/^\//, ''),
        running: c.State === 'running',
        image: c.Image,
      }));
  }

  return { ensure, state, logTail, remove, list };
}

export type ControlWorkers = ReturnType<typeof controlWorkers>;
