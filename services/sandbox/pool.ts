import { randomUUID } from 'node:crypto';
import type Docker from 'dockerode';
import { describeError } from '../../domain/errors.ts';
import { log } from '../log.ts';
import type { RunnerContainer } from './container.ts';
import { createDockerBackend, newJobId, runOnContainer, startContainer } from './docker.ts';
import { CHECKS_CPUS } from './stages/checks.ts';
import {
  DEFAULT_LIMITS,
  resolveLimits,
  type SandboxBackend,
  SandboxClosedError,
  type SandboxJob,
  type SandboxLimits,
  sandboxJobSchema,
} from './types.ts';

/**
 * Single-use warm pool. Starting a container costs ~300 ms here, nearly all of it in
 * `docker start`; pre-creating saves only ~30 ms. So we keep K containers already
 * running the runner in `idle` mode, each waiting for ONE job on stdin. A job takes one,
 * the container is destroyed after it, and the pool refills in the background once the job
 * is done (REFILL_AFTER_MS, SETTLE_MS). No
 * container ever sees two jobs, so nothing leaks between them.
 */
export interface PoolStats {
  size: number;
  idle: number;
  filling: number;
  warmJobs: number;
  coldJobs: number;
}

export interface Sandbox extends SandboxBackend {
  /** resolves once the pool holds `poolSize` ready containers (at once when poolSize is 0) */
  ready(timeoutMs?: number): Promise<void>;
  stats(): PoolStats;
  /** stops refilling and removes every container this sandbox started */
  close(): Promise<void>;
}

export interface CreateSandboxOptions {
  docker: Docker;
  image: string;
  /** 0 = always cold */
  poolSize: number;
  /** limits the pool's containers are created with; jobs asking for other memory/pids go cold */
  limits?: Partial<SandboxLimits>;
  /**
   * How many of the pool's containers are created with more CPU, and how much (default: two of a
   * pool of four or more, at CHECKS_CPUS — a verification's two jobs, stages/checks.ts): jobs that
   * ask for that much start on it as created. 0 keeps every container at `limits`.
   */
  wide?: { count: number; cpus: number };
}

/** Parallel starts beyond two only make them queue inside dockerd on a small host. */
const MAX_PARALLEL_FILLS = 2;
/**
 * A taken container is replaced once its job is done, or after this long for a job that goes on
 * (an MCP session): starting one costs 0.2–0.35 CPU-s, and started at the take it competed with
 * the very job it was taken for (a verification, whose two jobs take two containers at once, took
 * 2.1 s p50 against 1.3 s with the replacements started after the jobs, same run, loaded 2 cores).
 */
const REFILL_AFTER_MS = 2000;
/**
 * While the pool still holds a verification's worth of containers (MIN_SPARE: its two jobs take two
 * at once), a finished job's container is removed and replaced this long after the job, not at
 * once: what follows a job — the task's next model turn and bookkeeping, a forge cycle registering
 * the tool — then has the CPU to itself instead of sharing it with a container's start (0.2–0.35
 * CPU-s) and removal. A task with one call, beyond the model and the job, p50 in three runs
 * alternating task by task: 327 → 265, 248 → 225, 228 → 215 ms (docs/benchmarks.md, session 15).
 */
const SETTLE_MS = 1500;
const MIN_SPARE = 2;
/**
 * Changing a container's CPU quota (docker update) costs ~16 ms of CPU in dockerd and runc and
 * ~18 ms of wall time, twice per verification when every container had the default half CPU:
 * the pool keeps some at a verification's width instead. A job whose quota differs from its
 * container's still takes it: a higher one is raised while the job is sent (CPU is a share, not a
 * boundary, stages/checks.ts), a lower one is set before the job is sent, as it must hold from the
 * job's first instruction — either way ~18 ms against a cold start's ~300.
 */
const defaultWide = (poolSize: number) => ({ count: poolSize >= 4 ? MIN_SPARE : 0, cpus: CHECKS_CPUS });
const READY_TIMEOUT_MS = 20_000;

export function createSandbox(opts: CreateSandboxOptions): Sandbox {
  const poolLimits = resolveLimits({ ...DEFAULT_LIMITS, ...opts.limits });
  const wide = opts.wide ?? defaultWide(opts.poolSize);
  const wideCount = wide.cpus === poolLimits.cpus ? 0 : wide.count;
  const wideLimits = { ...poolLimits, cpus: wide.cpus };
  const isWide = (h: RunnerContainer) => h.plan.limits.cpus === wide.cpus;
  const cold = createDockerBackend({ docker: opts.docker, image: opts.image });
  const idle: RunnerContainer[] = [];
  const busy = new Set<RunnerContainer>();
  /** used containers still being removed: close() waits for them */
  const retiring = new Set<Promise<void>>();
  /** used containers waiting out SETTLE_MS before their removal: close() removes them at once */
  const settling = new Map<RunnerContainer, NodeJS.Timeout>();
  const waiters = new Set<() => void>();
  let filling = 0;
  let fillingWide = 0;
  let closed = false;
  let backoffMs = 0;
  let warmJobs = 0;
  let coldJobs = 0;

  const full = () => idle.length >= opts.poolSize;
  const notify = () => {
    for (const w of waiters) w();
  };

  async function fillOne(limits: SandboxLimits): Promise<void> {
    const slot = `pool-${randomUUID().slice(0, 8)}`;
    const handle = await startContainer(opts.docker, opts.image, slot, limits);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        handle.ready,
        new Promise(
          (_, reject) => (timer = setTimeout(() => reject(new Error(`not ready within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS)),
        ),
      ]);
    } catch (err) {
      await handle.remove();
      throw err;
    } finally {
      clearTimeout(timer);
    }
    if (closed) return void (await handle.remove());
    // An idle container that dies (someone removed it, the engine restarted) leaves the pool.
    void handle.ended.then(() => {
      const at = idle.indexOf(handle);
      if (at >= 0 && !busy.has(handle)) {
        idle.splice(at, 1);
        void handle.remove();
        refill();
      }
    });
    idle.push(handle);
    notify();
  }

  function refill(): void {
    while (!closed && idle.length + filling < opts.poolSize && filling < MAX_PARALLEL_FILLS) {
      const widen = idle.filter(isWide).length + fillingWide < wideCount;
      filling++;
      if (widen) fillingWide++;
      void fillOne(widen ? wideLimits : poolLimits)
        .then(() => (backoffMs = 0))
        .catch((err) => {
          // Back off so a broken engine or image does not turn into a hot loop of failing starts.
          backoffMs = Math.min(30_000, backoffMs ? backoffMs * 2 : 500);
          log.warn('sandbox pool could not start a container', { reason: describeError(err), retryInMs: backoffMs });
          return new Promise((r) => setTimeout(r, backoffMs).unref());
        })
        .finally(() => {
          filling--;
          if (widen) fillingWide--;
          refill();
        });
    }
  }

  /** Memory, pids and a network must hold before the job's first instruction: a job asking for other ones goes cold. */
  const fitsPool = (job: SandboxJob, limits: SandboxLimits) =>
    !job.network && limits.memoryMb === poolLimits.memoryMb && limits.pids === poolLimits.pids;

  function raiseCpus(handle: RunnerContainer, cpus: number): void {
    handle.container.update({ NanoCpus: Math.round(cpus * 1e9) }).catch((err: unknown) => {
      // Gone or going already (the job ended first): nothing to raise. Otherwise the job runs on the pool's share, only slower.
      const status = (err as { statusCode?: number }).statusCode;
      if (status !== 404 && status !== 409 && !/marked for removal|stopped container/.test(describeError(err)))
        log.warn('sandbox container CPU not raised', { id: handle.id.slice(0, 12), reason: describeError(err) });
    });
  }

  /** A used container: removed and replaced now, or SETTLE_MS later while the pool has spares. */
  function retire(handle: RunnerContainer): void {
    if (closed || idle.length < MIN_SPARE) {
      settle(handle);
      return;
    }
    settling.set(
      handle,
      setTimeout(() => settle(handle), SETTLE_MS),
    );
  }

  /** Removes a used container and refills the pool. */
  function settle(handle: RunnerContainer): void {
    settling.delete(handle);
    refill();
    const removal = handle.remove();
    retiring.add(removal);
    void removal.finally(() => retiring.delete(removal));
  }

  /** An idle container for `cpus`: one created with it, else one with less (raised), else one with more (lowered). */
  function takeIdle(cpus: number): RunnerContainer | undefined {
    for (const gone of idle.filter((h) => h.exited)) {
      idle.splice(idle.indexOf(gone), 1);
      void gone.remove();
    }
    const has = (h: RunnerContainer) => h.plan.limits.cpus;
    const handle = idle.find((h) => has(h) === cpus) ?? idle.find((h) => has(h) < cpus) ?? idle[0];
    if (handle) idle.splice(idle.indexOf(handle), 1);
    return handle;
  }

  /**
   * The taken container's quota made the job's: raised while the job is sent, lowered before it is;
   * false when it could not be lowered.
   */
  async function fitQuota(handle: RunnerContainer, cpus: number): Promise<boolean> {
    if (cpus > handle.plan.limits.cpus) raiseCpus(handle, cpus);
    if (cpus >= handle.plan.limits.cpus) return true;
    try {
      await handle.container.update({ NanoCpus: Math.round(cpus * 1e9) });
      return true;
    } catch (err) {
      log.warn('sandbox container CPU not lowered: the job goes cold', { id: handle.id.slice(0, 12), reason: describeError(err) });
      return false;
    }
  }

  refill();

  return {
    async runJob(raw, runOpts) {
      // A job started after close() would run in a container nobody removes.
      if (closed) throw new SandboxClosedError();
      const job = sandboxJobSchema.parse(raw) as SandboxJob;
      const startedAt = performance.now();
      const limits = resolveLimits(job.limits);
      const handle = fitsPool(job, limits) ? takeIdle(limits.cpus) : undefined;
      if (handle) busy.add(handle);
      const fits = handle ? await fitQuota(handle, limits.cpus) : false;
      // Closed while the quota was lowered: close() took the container, and no job may start now.
      if (handle && (!fits || closed)) {
        busy.delete(handle);
        settle(handle);
      }
      if (closed) throw new SandboxClosedError();
      if (!handle || !fits) {
        coldJobs++;
        return cold.runJob(job, runOpts);
      }
      warmJobs++;
      const replace = setTimeout(refill, REFILL_AFTER_MS);
      try {
        return await runOnContainer(handle, { ...job, id: newJobId(job) }, limits, { startedAt, warm: true }, runOpts);
      } finally {
        clearTimeout(replace);
        busy.delete(handle);
        retire(handle);
      }
    },

    ready(timeoutMs = 60_000) {
      if (full()) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`the sandbox pool did not fill to ${opts.poolSize} within ${timeoutMs} ms (has ${idle.length})`));
        }, timeoutMs);
        const check = () => {
          if (!full()) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
      });
    },

    stats: () => ({ size: opts.poolSize, idle: idle.length, filling, warmJobs, coldJobs }),

    async close() {
      closed = true;
      // Fills in flight see `closed` and remove their container themselves; wait for them.
      while (filling > 0) await new Promise((r) => setTimeout(r, 20));
      for (const timer of settling.values()) clearTimeout(timer);
      const all = [...idle.splice(0), ...busy, ...settling.keys()];
      settling.clear();
      await Promise.all([...all.map((h) => h.remove()), ...retiring, cold.drain()]);
    },
  };
}
