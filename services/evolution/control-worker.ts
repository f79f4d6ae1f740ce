import type Docker from 'dockerode';
import { ForgeError } from '../../domain/errors.ts';
import { containerLog, containerState, lastLines, removeContainer } from './containers.ts';
import { LABEL_TREE, WORKER_TMPFS } from './image.ts';

/**
 * The production control worker as a container: one per version (build id), from a worker image
 * (services/evolution/image.ts). Workflows, the model and Postgres; never the Docker socket. It
 * shares the host's loopback (Temporal, Postgres and the model listen there) and FORGE_HOME (tool
 * folders, the workflow bundle cache), runs as the user who runs Forge with every capability
 * dropped, and comes back by itself after a Docker engine restart.
 */
export const LABEL_CONTROL = 'forge.control';
export const LABEL_BUILD = 'forge.control.build';

export const controlContainerName = (deployment: string, buildId: string) => `${deployment}-${buildId}`;

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

export function controlWorkers(docker: Docker) {
  /** Starts the version's container unless it already runs (a retried start is a no-op); returns its name. */
  async function ensure(spec: ControlWorkerSpec): Promise<{ name: string; started: boolean }> {
    const name = controlContainerName(spec.deployment, spec.buildId);
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
        [LABEL_TREE]: image.Config?.Labels?.[LABEL_TREE] ?? '',
      },
      HostConfig: {
        NetworkMode: 'host',
        Mounts: [{ Type: 'bind', Source: spec.home, Target: spec.home }],
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
    return containerState(docker.getContainer(controlContainerName(deployment, buildId)));
  }

  /** The end of its log, for an error a person reads. */
  async function logTail(deployment: string, buildId: string): Promise<string> {
    return lastLines(await containerLog(docker.getContainer(controlContainerName(deployment, buildId))).catch(() => ''));
  }

  async function remove(deployment: string, buildId: string): Promise<void> {
    await removeContainer(docker, controlContainerName(deployment, buildId));
  }

  /** The versions of a deployment that have a container here, running or not. */
  async function list(deployment: string): Promise<{ buildId: string; name: string; running: boolean; image: string }[]> {
    const found = await docker.listContainers({ all: true, filters: { label: [`${LABEL_CONTROL}=${deployment}`] } });
    return found.map((c) => ({
      buildId: c.Labels[LABEL_BUILD] ?? '',
      name: (c.Names[0] ?? '').replace(/^\//, ''),
      running: c.State === 'running',
      image: c.Image,
    }));
  }

  return { ensure, state, logTail, remove, list };
}

export type ControlWorkers = ReturnType<typeof controlWorkers>;
