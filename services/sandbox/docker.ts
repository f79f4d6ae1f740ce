import { randomBytes, randomUUID } from 'node:crypto';
import os from 'node:os';
import type Docker from 'dockerode';
import { ComponentDownError, describeError } from '../../domain/errors.ts';
import { type JobMessageInput, MAX_FRAME_BYTES, type RunnerResult, splitRunnerOutput } from '../../runner/protocol.ts';
import { log } from '../log.ts';
import { LABEL_DEPLOYMENT, LABEL_JOB, LABEL_OWNER, LABEL_SANDBOX, type Outcome, OWNER, RunnerContainer } from './container.ts';
import {
  type KilledBy,
  type RunOptions,
  resolveLimits,
  type SandboxBackend,
  SandboxCancelledError,
  type SandboxJob,
  type SandboxLimits,
  type SandboxResult,
  SandboxStartError,
  sandboxJobSchema,
} from './types.ts';

/**
 * The hardened Docker backend, cold path: one fresh container per job (see
 * container.ts for the container's limits), removed afterwards whatever happens.
 */

/** The runner honours the budget itself; the host kills this long after, for jobs that cannot stop. */
// The runner's own deadline fires at the limit and reports; the host kills only if it could not.
const KILL_GRACE_MS = 1000;
/** Time a fresh container gets to start node and load the runner before the job clock starts. */
const BOOT_TIMEOUT_MS = 20_000;

export interface JobClock {
  startedAt: number;
  warm: boolean;
}

export function newJobId(job: Pick<SandboxJob, 'id'>): string {
  return job.id ?? `job-${randomUUID().slice(0, 8)}`;
}

function jobMessage(job: SandboxJob, limits: SandboxLimits, nonce: string): JobMessageInput {
  return {
    nonce,
    outputBytes: limits.outputBytes,
    mode: job.mode,
    files: job.files,
    entry: job.entry,
    command: job.command,
    input: job.input,
    env: job.env ?? {},
    permissions: job.permissions,
    ...(job.sideEffect ? { sideEffect: job.sideEffect } : {}),
    limits: { timeoutMs: limits.timeoutMs },
    ...(job.proxyUrl ? { proxyUrl: job.proxyUrl } : {}),
    ...(job.declaredTests ? { declaredTests: job.declaredTests } : {}),
    ...(job.chooseInput ? { chooseInput: true } : {}),
    ...(job.allowOpaqueSchemas ? { allowOpaqueSchemas: true } : {}),
    ...(job.apiSpec ? { apiSpec: job.apiSpec } : {}),
    ...(job.seed !== undefined ? { seed: job.seed } : {}),
  };
}

/** What may reach the container's own streams: the judge's one frame (the judged output is inside it, capped). */
const CONTAINER_OUTPUT_BYTES = MAX_FRAME_BYTES + 64 * 1024;

const mib = (n: number) => `${n} MiB`;
const PIDS_HINT = /EAGAIN|Resource temporarily unavailable/;
const HEAP_HINT = /heap out of memory|Reached heap limit|ERR_MEMORY_ALLOCATION_FAILED|Cannot allocate memory|ENOMEM/;

interface Verdict {
  ok: boolean;
  exitCode: number | null;
  killedBy: KilledBy;
  reason?: string;
}

/** Turns what we observed into the result's ok / killedBy / reason. */
async function judge(
  outcome: Outcome,
  handle: RunnerContainer,
  limits: SandboxLimits,
  r: RunnerResult | undefined,
  errorText: string,
): Promise<Verdict> {
  const runnerOk = r?.ok;
  const runnerExit = r?.exitCode;
  switch (outcome.kind) {
    case 'result': {
      if (runnerOk) return { ok: true, exitCode: runnerExit ?? 0, killedBy: null };
      const exitCode = runnerExit ?? 1;
      if (r?.error?.code === 'OUTPUT_LIMIT') {
        return {
          ok: false,
          exitCode,
          killedBy: 'output',
          reason: `the job wrote more than ${limits.outputBytes} bytes to stdout/stderr and was killed; output truncated`,
        };
      }
      // The runner survived, but something it started may have been OOM-killed or refused a pid.
      if ((r?.resources?.oomKills ?? 0) > 0) {
        return {
          ok: false,
          exitCode,
          killedBy: 'memory',
          reason: `the job exceeded its ${mib(limits.memoryMb)} memory limit; the kernel killed a process (${errorText})`,
        };
      }
      if (HEAP_HINT.test(errorText)) {
        return {
          ok: false,
          exitCode,
          killedBy: 'memory',
          reason: `the job exceeded its ${mib(limits.memoryMb)} memory limit (${errorText})`,
        };
      }
      if ((r?.resources?.pidsLimitHits ?? 0) > 0 || PIDS_HINT.test(errorText)) {
        return {
          ok: false,
          exitCode,
          killedBy: 'pids',
          reason: `the job hit the limit of ${limits.pids} processes/threads (EAGAIN on spawn): ${errorText}`,
        };
      }
      if (r?.error?.code === 'TIMEOUT') {
        return {
          ok: false,
          exitCode,
          killedBy: 'timeout',
          reason: `the job did not finish within its ${limits.timeoutMs} ms wall-clock limit and was stopped: ${errorText}`,
        };
      }
      return { ok: false, exitCode, killedBy: null, reason: errorText || `the job failed with exit code ${exitCode}` };
    }
    case 'timeout': {
      // A fork bomb looks like a timeout from outside; the pid count says which it was.
      const { pids } = await handle.usage();
      if (pids !== undefined && pids >= limits.pids - 2) {
        return {
          ok: false,
          exitCode: null,
          killedBy: 'pids',
          reason: `the job ran into the limit of ${limits.pids} processes/threads (${pids} running) and was killed after ${limits.timeoutMs} ms`,
        };
      }
      return {
        ok: false,
        exitCode: null,
        killedBy: 'timeout',
        reason: `the job did not finish within its ${limits.timeoutMs} ms wall-clock limit and was killed`,
      };
    }
    case 'output':
      return {
        ok: false,
        exitCode: null,
        killedBy: 'output',
        reason: `the job wrote more than ${limits.outputBytes} bytes to stdout/stderr and was killed; output truncated`,
      };
    case 'exited': {
      const state = await handle.exitState();
      if (state.oomKilled || HEAP_HINT.test(handle.stderr.text)) {
        return {
          ok: false,
          exitCode: state.exitCode,
          killedBy: 'memory',
          reason: `the job exceeded its ${mib(limits.memoryMb)} memory limit and was killed`,
        };
      }
      if (PIDS_HINT.test(handle.stderr.text)) {
        return {
          ok: false,
          exitCode: state.exitCode,
          killedBy: 'pids',
          reason: `the job hit the limit of ${limits.pids} processes/threads and the runner died`,
        };
      }
      const tail = handle.stderr.text.trim().split('\n').slice(-3).join(' | ');
      return {
        ok: false,
        exitCode: state.exitCode,
        killedBy: null,
        reason: `the sandbox runner exited with code ${state.exitCode} without a result${tail ? `: ${tail}` : ''}`,
      };
    }
    case 'cancelled':
      return { ok: false, exitCode: null, killedBy: null, reason: 'cancelled' };
  }
}

/**
 * Runs one job on a started container and always removes the container. Shared by
 * the cold path and the warm pool. Throws only on cancellation.
 */
export async function runOnContainer(
  handle: RunnerContainer,
  job: SandboxJob,
  limits: SandboxLimits,
  clock: JobClock,
  opts: RunOptions = {},
): Promise<SandboxResult> {
  const jobId = newJobId(job);
  // Per job, from the host: the judge's frame carries it; the judged process never sees it.
  const nonce = randomBytes(24).toString('hex');
  try {
    handle.send(jobMessage(job, limits, nonce), CONTAINER_OUTPUT_BYTES);
    if (!clock.warm) await bootOrEnd(handle);
    const outcome = await handle.outcome(limits.timeoutMs + KILL_GRACE_MS, opts.signal);
    if (outcome.kind === 'cancelled') throw new SandboxCancelledError(jobId);
    const split = splitRunnerOutput(handle.stdout.text, nonce);
    const r = split.result;
    const errorText = r?.error?.message ?? (split.malformed ? `the runner's result frame was refused: ${split.malformed}` : '');
    const verdict = await judge(outcome, handle, limits, r, errorText);
    const durationMs = Math.round(performance.now() - clock.startedAt);
    // The judge's own stderr (not the judged code's): only when it had something to say.
    const judgeStderr = handle.stderr.text.trim();
    const result: SandboxResult = {
      ok: verdict.ok,
      exitCode: verdict.exitCode,
      ...(r?.output !== undefined ? { output: r.output } : {}),
      stdout: r?.stdout ?? split.stdout,
      stderr: [r?.stderr, judgeStderr].filter(Boolean).join(r?.stderr && judgeStderr ? '\n' : ''),
      durationMs,
      ...(r ? { overheadMs: Math.max(0, durationMs - r.durationMs) } : {}),
      killedBy: verdict.killedBy,
      ...(verdict.reason ? { reason: verdict.reason } : {}),
      ...(r?.error ? { error: r.error } : {}),
      ...(r?.logs?.length ? { logs: r.logs } : {}),
      ...(handle.outputExceeded || r?.logsTruncated ? { truncated: true } : {}),
      ...(r?.logsTruncated ? { logsTruncated: true } : {}),
      ...(r?.logBytes ? { logBytes: r.logBytes } : {}),
      ...(r?.input !== undefined ? { input: r.input } : {}),
      ...(r?.skipped !== undefined ? { skipped: r.skipped } : {}),
      warm: clock.warm,
      containerId: handle.id.slice(0, 12),
    };
    log.debug('sandbox job done', {
      jobId,
      mode: job.mode,
      ok: result.ok,
      killedBy: result.killedBy,
      ms: durationMs,
      overheadMs: result.overheadMs,
      warm: clock.warm,
    });
    return result;
  } finally {
    // Single use, whatever happened: removal runs in the background so the caller gets the result at once.
    void handle.remove();
  }
}

async function bootOrEnd(handle: RunnerContainer): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const boot = new Promise<void>((resolve) => (timer = setTimeout(resolve, BOOT_TIMEOUT_MS)));
  // A runner that dies while booting is reported by outcome() as 'exited'.
  await Promise.race([handle.ready.catch(() => undefined), boot]);
  clearTimeout(timer);
}

const DOCKER_DOWN = /ENOENT|ECONNREFUSED|EACCES|socket hang up/;

export async function startContainer(
  docker: Docker,
  image: string,
  jobId: string,
  limits: SandboxLimits,
  network?: string,
): Promise<RunnerContainer> {
  try {
    return await RunnerContainer.start(docker, { image, limits, network, jobId });
  } catch (err) {
    const reason = describeError(err);
    if (DOCKER_DOWN.test(reason)) throw new ComponentDownError('Docker', reason, 'start dockerd (forge provisions it) or set DOCKER_HOST');
    throw new SandboxStartError(jobId, image, reason);
  }
}

export interface DockerBackend extends SandboxBackend {
  /** the removals still running in the background */
  drain(): Promise<void>;
}

export function createDockerBackend(opts: { docker: Docker; image: string }): DockerBackend {
  const live = new Set<RunnerContainer>();
  return {
    async runJob(raw, runOpts) {
      const job = sandboxJobSchema.parse(raw) as SandboxJob;
      const limits = resolveLimits(job.limits);
      const startedAt = performance.now();
      const jobId = newJobId(job);
      const handle = await startContainer(opts.docker, opts.image, jobId, limits, job.network);
      live.add(handle);
      try {
        return await runOnContainer(handle, { ...job, id: jobId }, limits, { startedAt, warm: false }, runOpts);
      } finally {
        void handle.remove().finally(() => live.delete(handle));
      }
    },
    async drain() {
      await Promise.all([...live].map((h) => h.remove()));
    },
  };
}

/** Whether the process that started a container is gone (only knowable for this host). */
export function ownerIsGone(owner: string | undefined, self = OWNER, host = os.hostname()): boolean {
  if (!owner) return true;
  if (owner === self) return false;
  const [ownerHost, pid] = owner.split(':');
  if (ownerHost !== host) return false;
  // Same host and pid but another nonce: a restarted process reusing the pid; its predecessor is gone.
  if (Number(pid) === process.pid) return true;
  try {
    process.kill(Number(pid), 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * What a reap removed, by what each container was doing: running a job it was started for, a
 * warm-pool container (started ahead of any job: idle, or running a job handed to it; the label
 * cannot tell which), or not running at all (exited, never started). `forge freeze` reports them
 * apart: a warm pool refilled since the last freeze is not a sandbox that was running a tool.
 */
export interface ReapCounts {
  total: number;
  jobs: number;
  warmPool: number;
  stopped: number;
}

/** The slot ids the warm pools start containers under (pool.ts, egress-pool.ts), before any job exists. */
const isWarmSlot = (jobLabel: string | undefined) => /^(pool|egress-spare)-/.test(jobLabel ?? '');

/**
 * Removes leftover sandbox containers (a worker killed mid-job leaves them). By default
 * only those whose owning process on this host is gone, or that are older than
 * staleAfterMs, so two workers (or test files) sharing one engine do not kill each
 * other's jobs; `all: true` removes every forge.sandbox container.
 */
export async function reapSandboxes(
  docker: Docker,
  opts: { all?: boolean; staleAfterMs?: number; deployment?: string } = {},
): Promise<ReapCounts> {
  const staleAfterMs = opts.staleAfterMs ?? 6 * 3600_000;
  const label = [`${LABEL_SANDBOX}=1`, ...(opts.deployment ? [`${LABEL_DEPLOYMENT}=${opts.deployment}`] : [])];
  const containers = await docker.listContainers({ all: true, filters: { label } });
  const doomed = containers.filter((c) => opts.all || ownerIsGone(c.Labels[LABEL_OWNER]) || Date.now() - c.Created * 1000 > staleAfterMs);
  await Promise.all(
    doomed.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => undefined),
    ),
  );
  if (doomed.length) log.info('reaped orphan sandbox containers', { count: doomed.length });
  const counts: ReapCounts = { total: doomed.length, jobs: 0, warmPool: 0, stopped: 0 };
  for (const c of doomed) {
    if (c.State !== 'running') counts.stopped++;
    else if (isWarmSlot(c.Labels[LABEL_JOB])) counts.warmPool++;
    else counts.jobs++;
  }
  return counts;
}

/** reapSandboxes, counting only how many it removed. */
export async function reapOrphans(docker: Docker, opts: Parameters<typeof reapSandboxes>[1] = {}): Promise<number> {
  return (await reapSandboxes(docker, opts)).total;
}

export { OWNER };
