import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { type Duplex, Writable } from 'node:stream';
import type Docker from 'dockerode';
import { describeError } from '../../domain/errors.ts';
import {
  EGRESS_FLAG,
  type JobMessageInput,
  NODE_PATH,
  READY_MARKER,
  RUNNER_PATH,
  resultMarker,
  SANDBOX_PATH_ENV,
} from '../../runner/protocol.ts';
import { log } from '../log.ts';
import type { SandboxLimits } from './types.ts';

/**
 * One hardened container running the runner in `idle` mode, attached over a single
 * hijacked connection (stdin in; stdout/stderr demultiplexed out). Cold path and warm
 * pool both use it: cold = start one and send the job at once; warm = start it ahead.
 */
export const LABEL_SANDBOX = 'forge.sandbox';
export const LABEL_JOB = 'forge.job';
export const LABEL_OWNER = 'forge.owner';
export const LABEL_DEPLOYMENT = 'forge.deployment';

const TMPFS_MB = 16;

/**
 * Identifies this process, so start-up reaping can tell live containers from orphans.
 * The random part matters when a restarted worker gets the same host name and pid
 * (pid 1 in a container): its predecessor's containers are still orphans.
 */
export const OWNER = `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
/**
 * Which Forge deployment (namespace + sandbox queue) this process's sandboxes belong to, so
 * `forge freeze` kills this deployment's sandboxes and not those of another Forge on the same engine.
 * A process that never says (a one-off CLI command, a test, a bench) labels them as its own: a
 * freeze elsewhere never matches them, and one made with its own label kills only its own.
 */
let deployment = `process:${OWNER}`;
export function setSandboxDeployment(name: string): void {
  deployment = name;
}
export function sandboxDeployment(): string {
  return deployment;
}

export interface ContainerPlan {
  image: string;
  limits: Pick<SandboxLimits, 'memoryMb' | 'pids' | 'cpus'>;
  /** a Docker network name; none when absent */
  network?: string;
  /** label value: the job id on the cold path, a pool slot id for warm containers */
  jobId: string;
}

/** V8 gets about half the memory limit, so a JS heap bomb fails with a clear V8 error before the kernel's OOM killer. */
const heapMb = (memoryMb: number) => Math.max(16, Math.floor(memoryMb / 2));

export function containerSpec(plan: ContainerPlan): Docker.ContainerCreateOptions {
  const memory = plan.limits.memoryMb * 1024 * 1024;
  return {
    Image: plan.image,
    // Imported images have no usable defaults we rely on: absolute command, explicit env.
    // On a network (an egress one: the only kind a sandbox gets) the runner's judged process preloads
    // the proxy-aware fetch while the container waits for its call (runner/channel.ts EGRESS_FLAG).
    Cmd: [NODE_PATH, `--max-old-space-size=${heapMb(plan.limits.memoryMb)}`, RUNNER_PATH, 'idle', ...(plan.network ? [EGRESS_FLAG] : [])],
    Env: [`PATH=${SANDBOX_PATH_ENV}`, 'HOME=/tmp'],
    User: '10001:10001',
    WorkingDir: '/tmp',
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    OpenStdin: true,
    StdinOnce: true,
    Tty: false, // demuxStream needs the multiplexed (non-TTY) stream
    ...(plan.network ? {} : { NetworkDisabled: true }),
    Labels: { [LABEL_SANDBOX]: '1', [LABEL_JOB]: plan.jobId, [LABEL_OWNER]: OWNER, [LABEL_DEPLOYMENT]: deployment },
    StopTimeout: 1,
    HostConfig: {
      NetworkMode: plan.network ?? 'none',
      ReadonlyRootfs: true,
      Tmpfs: { '/tmp': `rw,noexec,nosuid,nodev,size=${TMPFS_MB}m,mode=1777` },
      // No /dev/shm: it would be a second writable place outside /tmp.
      IpcMode: 'none',
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      PidsLimit: plan.limits.pids,
      Memory: memory,
      MemorySwap: memory, // equal: no swap
      NanoCpus: Math.round(plan.limits.cpus * 1e9),
      Ulimits: [
        { Name: 'nofile', Soft: 1024, Hard: 1024 },
        { Name: 'core', Soft: 0, Hard: 0 },
      ],
      // Output goes only through our attach stream, capped; a json-file log could fill the host disk.
      LogConfig: { Type: 'none', Config: {} },
      OomScoreAdj: 500, // under host memory pressure a sandbox dies before the host's own processes
      AutoRemove: false, // we remove explicitly, after reading OOMKilled / the exit code
      Privileged: false,
    },
  };
}

export type Outcome = { kind: 'result' } | { kind: 'exited' } | { kind: 'timeout' } | { kind: 'output' } | { kind: 'cancelled' };

/** Collects one demultiplexed stream, counting bytes against the shared output budget. */
class Capture extends Writable {
  text = '';
  /** whether the runner's READY line went by (tracked here, since a sink may consume the text) */
  readySeen = false;
  private tail = '';
  /** set for long sessions (MCP): chunks go to the listener instead of piling up in `text` */
  sink?: (chunk: Buffer) => void;
  constructor(
    private readonly budget: OutputBudget,
    private readonly onChunk: () => void,
  ) {
    super();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    const allowed = this.budget.take(chunk.length);
    if (allowed > 0) {
      if (!this.readySeen) {
        this.tail = (this.tail + chunk.subarray(0, allowed).toString('utf8')).slice(-64);
        this.readySeen = this.tail.includes(READY_MARKER + '\n');
      }
      if (this.sink) this.sink(chunk.subarray(0, allowed));
      else this.text += chunk.subarray(0, allowed).toString('utf8');
    }
    this.onChunk();
    done();
  }
}

class OutputBudget {
  used = 0;
  exceeded = false;
  constructor(public limit: number) {}
  take(n: number): number {
    const allowed = Math.max(0, Math.min(n, this.limit - this.used));
    this.used += n;
    if (this.used > this.limit) this.exceeded = true;
    return allowed;
  }
}

export class RunnerContainer {
  readonly stdout: Capture;
  readonly stderr: Capture;
  readonly ready: Promise<void>;
  readonly ended: Promise<void>;
  readonly createdAt = performance.now();
  private readonly budget = new OutputBudget(Number.MAX_SAFE_INTEGER);
  private listeners = new Set<() => void>();
  private isEnded = false;
  private removal?: Promise<void>;

  private constructor(
    readonly docker: Docker,
    readonly container: Docker.Container,
    readonly plan: ContainerPlan,
    private readonly stream: NodeJS.ReadWriteStream,
  ) {
    const notify = () => {
      for (const l of this.listeners) l();
    };
    this.stdout = new Capture(this.budget, notify);
    this.stderr = new Capture(this.budget, notify);
    docker.modem.demuxStream(stream, this.stdout, this.stderr);
    this.ended = new Promise((resolve) => {
      const done = () => {
        this.isEnded = true;
        notify();
        resolve();
      };
      stream.once('end', done);
      stream.once('close', done);
      stream.once('error', done);
    });
    this.ready = this.waitFor(() => this.stdout.readySeen, 'the runner exited before it was ready');
    // Callers that never await `ready` (the cold path races it) must not see an unhandled rejection.
    this.ready.catch(() => undefined);
  }

  get id(): string {
    return this.container.id;
  }

  get exited(): boolean {
    return this.isEnded;
  }

  /** Creates, attaches (before start, so no output is lost) and starts one container. */
  static async start(docker: Docker, plan: ContainerPlan): Promise<RunnerContainer> {
    const container = await docker.createContainer(containerSpec(plan));
    let stream: NodeJS.ReadWriteStream | undefined;
    try {
      stream = await container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true });
      const handle = new RunnerContainer(docker, container, plan, stream);
      await container.start();
      return handle;
    } catch (err) {
      await container.remove({ force: true }).catch(() => undefined);
      closeConnection(stream);
      throw err;
    }
  }

  private waitFor(done: () => boolean, endedMessage: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (done()) {
          this.listeners.delete(check);
          resolve();
        } else if (this.isEnded) {
          this.listeners.delete(check);
          reject(new Error(`${endedMessage}; stderr: ${this.stderr.text.slice(-500) || '(empty)'}`));
        }
      };
      this.listeners.add(check);
      check();
    });
  }

  /**
   * Sends the job line; from here on stdout/stderr count against `outputBytes`. The judge holds the
   * judged code's own output to the job's limit; this budget is for what reaches the container's
   * streams: the judge's frame, and whatever an exec-mode command forces onto them.
   */
  send(job: JobMessageInput, outputBytes: number): void {
    this.budget.limit = this.budget.used + outputBytes;
    this.nonce = job.nonce;
    this.stream.write(JSON.stringify(job) + '\n');
  }

  /** the job's nonce: only a result frame carrying it is the judge's */
  nonce?: string;

  /** More stdin for the job (serve mode speaks MCP over it). */
  write(data: string): void {
    this.stream.write(data);
  }

  get outputExceeded(): boolean {
    return this.budget.exceeded;
  }

  private hasResult(): boolean {
    const at = this.stdout.text.indexOf(resultMarker(this.nonce));
    return at >= 0 && this.stdout.text.indexOf('\n', at) > at;
  }

  /** Waits until the job produced its result, the container ended, or a limit tripped. */
  outcome(timeoutMs: number, signal?: AbortSignal): Promise<Outcome> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (o: Outcome) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        signal?.removeEventListener('abort', onAbort);
        resolve(o);
      };
      const check = () => {
        if (this.budget.exceeded) finish({ kind: 'output' });
        else if (this.hasResult()) finish({ kind: 'result' });
        else if (this.isEnded) finish({ kind: 'exited' });
      };
      const onAbort = () => finish({ kind: 'cancelled' });
      timer = setTimeout(() => finish({ kind: 'timeout' }), timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.listeners.add(check);
      if (signal?.aborted) onAbort();
      else check();
    });
  }

  /** Exit facts for a container that ended on its own (before it is removed). */
  async exitState(): Promise<{ exitCode: number | null; oomKilled: boolean }> {
    try {
      const info = await this.container.inspect();
      return { exitCode: info.State.Running ? null : info.State.ExitCode, oomKilled: Boolean(info.State.OOMKilled) };
    } catch {
      return { exitCode: null, oomKilled: false };
    }
  }

  /**
   * Live resource facts of a running container: the pid count tells a fork bomb from an
   * ordinary timeout, and the memory peak tells an OOM-killed child (the runner survives
   * it, and the engine's OOMKilled flag only covers the container's main process).
   */
  async usage(): Promise<{ pids?: number; memoryPeakBytes?: number; memoryLimitBytes?: number }> {
    try {
      const stats = (await this.container.stats({ stream: false, 'one-shot': true } as { stream: false })) as {
        pids_stats?: { current?: number };
        memory_stats?: { max_usage?: number; limit?: number };
      };
      return {
        pids: stats.pids_stats?.current,
        memoryPeakBytes: stats.memory_stats?.max_usage,
        memoryLimitBytes: stats.memory_stats?.limit,
      };
    } catch {
      return {};
    }
  }

  /** Kills and removes; safe to call many times. Never throws: a leftover is reaped at start-up. */
  remove(): Promise<void> {
    this.removal ??= (async () => {
      try {
        this.stream.end();
        await this.container.remove({ force: true });
      } catch (err) {
        // 404: already gone; 409: the engine is already removing it (e.g. someone else's force remove).
        const status = (err as { statusCode?: number }).statusCode;
        if (status !== 404 && status !== 409) {
          log.warn('sandbox container not removed', { id: this.id.slice(0, 12), reason: describeError(err) });
        }
      } finally {
        closeConnection(this.stream);
      }
    })();
    return this.removal;
  }
}

/**
 * The engine does not always close an attach connection itself: for a container removed after the
 * attach and before its start (a freeze killing sandboxes while the pool refills), it stays open
 * with nothing on it, and an open socket holds the worker's process up after shutdown.
 */
function closeConnection(stream: NodeJS.ReadWriteStream | undefined): void {
  (stream as Duplex | undefined)?.destroy();
}
