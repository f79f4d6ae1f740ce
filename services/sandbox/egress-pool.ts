import { randomUUID } from 'node:crypto';
import type Docker from 'dockerode';
import { describeError } from '../../domain/errors.ts';
import type { SideEffect } from '../../domain/tool.ts';
import type { ProxyDecision } from '../../runner/proxy.ts';
import { config } from '../config.ts';
import { log } from '../log.ts';
import type { RunnerContainer } from './container.ts';
import { newJobId, runOnContainer, startContainer } from './docker.ts';
import { type Egress, EgressError, openEgress, reapEgress } from './stages/egress.ts';
import {
  DEFAULT_LIMITS,
  type RunOptions,
  resolveLimits,
  SandboxClosedError,
  type SandboxJob,
  type SandboxLimits,
  type SandboxResult,
  SandboxStartError,
  sandboxJobSchema,
} from './types.ts';

/**
 * Egress kept warm per tool version. Opening an egress (an internal network, a proxy container
 * booting node) costs a second or more; a version's calls share one instead. Its first call opens
 * it (concurrent first calls share that one open); it stays while the version is in use and is
 * closed after FORGE_EGRESS_IDLE_S without a call, when a call for a newer version of the tool
 * arrives, when a health check before reuse finds the proxy or the network gone (dockerd
 * restarted, someone pruned), and on close(). The key holds the version's allow list and side
 * effect too, so versions whose permissions differ never share a proxy. Leftovers of a crash
 * carry forge.egress / forge.sandbox labels and are reaped (reapEgress, reapOrphans).
 *
 * Each egress also keeps one tool container started ahead on its network, single-use like the
 * offline pool's (pool.ts): a call takes it and another is started behind it. This pool starts
 * the call's container itself, so it knows the container's address on the network before any of
 * the tool's code runs; the proxy tags each decision with the client's address (runner/proxy.ts),
 * and a call reports only the decisions made for its own container. The judge stays outside the
 * judged: the tool cannot choose or forge its address (no NET_ADMIN, no NET_RAW), and its
 * decisions come from the proxy.
 */
export interface EgressKey {
  tool: string;
  version: number;
  /** the version's declared domains */
  allow: readonly string[];
  sideEffect: SideEffect;
}

export interface EgressPoolOptions {
  docker: Docker;
  image: string;
  /** extra /etc/hosts lines for the proxies ("name:ip"); tests point names at chosen addresses */
  extraHosts?: string[];
  /** bench/test hook (stages/egress.ts EgressOptions.redirect) */
  redirect?: Record<string, string>;
  /** how long an unused egress stays open; default FORGE_EGRESS_IDLE_S */
  idleMs?: number;
}

export interface EgressCall {
  result: SandboxResult;
  /** the proxy's decisions for this call's container only */
  decisions: ProxyDecision[];
}

export interface EgressPoolStats {
  /** egresses open now */
  open: number;
  /** egresses opened so far */
  opened: number;
  /** egresses closed because their proxy or network was gone */
  replaced: number;
  warmJobs: number;
  coldJobs: number;
}

export interface EgressPool {
  /** Runs one call's job on its version's egress network, through its proxy. */
  run(key: EgressKey, job: SandboxJob, opts?: RunOptions): Promise<EgressCall>;
  stats(): EgressPoolStats;
  /** resolves once every open egress's spare container is ready (benches measure the warm path) */
  ready(): Promise<void>;
  /** closes every egress (in use or not) and refuses further calls */
  close(): Promise<void>;
}

interface Spare {
  handle: RunnerContainer;
  ip: string;
  ready: boolean;
}

interface Entry {
  id: string;
  key: EgressKey;
  /** its value in the map of open egresses (set once its opener sees it) */
  pending?: Promise<Entry>;
  egress: Egress;
  leases: number;
  retired: boolean;
  idleTimer?: NodeJS.Timeout;
  spare?: Promise<Spare | undefined>;
  /** every tool container started on this network, removed before the network */
  containers: Set<RunnerContainer>;
  closing?: Promise<void>;
}

const SPARE_LIMITS = resolveLimits(DEFAULT_LIMITS);

/** Docker names allow [a-zA-Z0-9_.-]: the tool's name in the network's makes `docker network ls` readable. */
const nameFor = (key: EgressKey) => `${key.tool.replace(/[^a-zA-Z0-9_.-]/g, '-').slice(0, 40)}-v${key.version}-${randomUUID().slice(0, 6)}`;

const idOf = (key: EgressKey) => JSON.stringify([key.tool, key.version, [...key.allow].sort(), key.sideEffect]);

const fitsSpare = (limits: SandboxLimits) =>
  limits.memoryMb === SPARE_LIMITS.memoryMb && limits.pids === SPARE_LIMITS.pids && limits.cpus === SPARE_LIMITS.cpus;

/** The container's address on the network: what the proxy will see as the client. */
async function addressOn(handle: RunnerContainer, network: string): Promise<string> {
  const info = await handle.container.inspect();
  const ip = info.NetworkSettings.Networks[network]?.IPAddress;
  if (!ip) throw new Error(`container ${handle.id.slice(0, 12)} has no address on ${network}`);
  return ip;
}

const pools = new Set<EgressPool>();

/** Closes every egress pool of this process: the sandbox worker's shutdown. */
export async function closeEgressPools(): Promise<void> {
  await Promise.all([...pools].map((p) => p.close()));
}

export function createEgressPool(opts: EgressPoolOptions): EgressPool {
  const idleMs = opts.idleMs ?? config().FORGE_EGRESS_IDLE_S * 1000;
  const entries = new Map<string, Promise<Entry>>();
  const open = new Set<Entry>();
  const closings = new Set<Promise<void>>();
  let reaped: Promise<unknown> | undefined;
  let closed = false;
  const counts = { opened: 0, replaced: 0, warmJobs: 0, coldJobs: 0 };

  function closeEntry(entry: Entry): Promise<void> {
    entry.closing ??= (async () => {
      open.delete(entry);
      clearTimeout(entry.idleTimer);
      // A spare still starting is waited for, so it is removed rather than left on the network.
      await entry.spare;
      entry.spare = undefined;
      await Promise.all([...entry.containers].map((h) => h.remove()));
      await entry.egress.close();
      log.debug('egress closed', { network: entry.egress.network, tool: entry.key.tool, version: entry.key.version });
    })();
    closings.add(entry.closing);
    void entry.closing.finally(() => closings.delete(entry.closing!));
    return entry.closing;
  }

  /** No new calls; closed now when unused, else when its last call ends. */
  function retire(entry: Entry, why: string): void {
    if (entry.retired) return;
    entry.retired = true;
    if (entries.get(entry.id) === entry.pending) entries.delete(entry.id);
    log.debug('egress retired', { network: entry.egress.network, why, inUse: entry.leases });
    if (entry.leases === 0) void closeEntry(entry);
  }

  /** A container started ahead on the network, with its address there; undefined when it could not start. */
  function startSpare(network: string, containers: Set<RunnerContainer>): Promise<Spare | undefined> {
    return (async () => {
      const handle = await startContainer(opts.docker, opts.image, `egress-spare-${randomUUID().slice(0, 8)}`, SPARE_LIMITS, network);
      containers.add(handle);
      void handle.ended.then(() => containers.delete(handle));
      try {
        const spare: Spare = { handle, ip: await addressOn(handle, network), ready: false };
        handle.ready.then(
          () => (spare.ready = true),
          () => undefined,
        );
        return spare;
      } catch (err) {
        await handle.remove();
        throw err;
      }
    })().catch((err: unknown) => {
      log.warn('could not start a spare container on the egress network', { network, reason: describeError(err) });
      return undefined;
    });
  }

  function fillSpare(entry: Entry): void {
    if (closed || entry.retired || entry.spare) return;
    entry.spare = startSpare(entry.egress.network, entry.containers);
  }

  async function openEntry(key: EgressKey): Promise<Entry> {
    const containers = new Set<RunnerContainer>();
    // The first call's container starts while the proxy boots, not after it.
    let early: Promise<Spare | undefined> | undefined;
    let network: string | undefined;
    let egress: Egress;
    try {
      egress = await openEgress(opts.docker, {
        image: opts.image,
        allow: key.allow,
        sideEffect: key.sideEffect,
        extraHosts: opts.extraHosts,
        redirect: opts.redirect,
        id: nameFor(key),
        onNetwork: (name) => {
          network = name;
          early = startSpare(name, containers);
        },
      });
    } catch (err) {
      // openEgress could not remove its network while this container was on it: both go now.
      await early;
      await Promise.all([...containers].map((h) => h.remove()));
      if (network)
        await opts.docker
          .getNetwork(network)
          .remove()
          .catch(() => undefined);
      throw err;
    }
    counts.opened++;
    const entry: Entry = { id: idOf(key), key, egress, leases: 0, retired: false, containers, spare: early };
    open.add(entry);
    if (closed) {
      await closeEntry(entry);
      throw new SandboxClosedError();
    }
    fillSpare(entry);
    return entry;
  }

  /** The key's egress, opened once however many calls ask at the same time, and checked before reuse. */
  async function lease(key: EgressKey): Promise<Entry> {
    // A newer version of the tool is in use: the older ones' egresses go (when their calls end).
    for (const e of open) if (e.key.tool === key.tool && e.key.version < key.version) retire(e, `v${key.version} is in use`);
    const id = idOf(key);
    for (let attempt = 0; ; attempt++) {
      if (closed) throw new SandboxClosedError();
      if (attempt >= 3) throw new EgressError('reuse', `the egress for ${key.tool} v${key.version} was gone ${attempt} times in a row`);
      let pending = entries.get(id);
      if (!pending) {
        // The entry knows its own map value, so retire() removes it and never a newer one.
        const opening: Promise<Entry> = openEntry(key).then((entry) => {
          entry.pending = opening;
          return entry;
        });
        entries.set(id, opening);
        opening.catch(() => entries.get(id) === opening && entries.delete(id));
        pending = opening;
      }
      const entry = await pending;
      if (entry.retired) {
        // Retired before its opener saw it: never hand it out again.
        if (entries.get(id) === pending) entries.delete(id);
        continue;
      }
      if (entries.get(id) !== pending) continue;
      entry.leases++;
      clearTimeout(entry.idleTimer);
      if (await entry.egress.alive()) return entry;
      if (!entry.retired) {
        counts.replaced++;
        log.warn('the egress proxy or its network is gone; opening a new one', { network: entry.egress.network, tool: key.tool });
        retire(entry, 'proxy gone');
      }
      release(entry);
    }
  }

  function release(entry: Entry): void {
    entry.leases--;
    if (entry.leases > 0) return;
    if (entry.retired || closed) return void closeEntry(entry);
    clearTimeout(entry.idleTimer);
    entry.idleTimer = setTimeout(() => entry.leases === 0 && retire(entry, 'idle'), idleMs);
    // An idle egress must not keep the process alive; reapEgress clears it after an exit.
    entry.idleTimer.unref();
  }

  /** The spare when it fits (even one still booting is further along than a new one), else a new container. */
  async function takeContainer(
    entry: Entry,
    limits: SandboxLimits,
    jobId: string,
  ): Promise<{ handle: RunnerContainer; ip: string; warm: boolean }> {
    const pending = fitsSpare(limits) ? entry.spare : undefined;
    if (pending) {
      entry.spare = undefined;
      const spare = await pending;
      fillSpare(entry);
      if (spare && !spare.handle.exited) return { handle: spare.handle, ip: spare.ip, warm: spare.ready };
      if (spare) void spare.handle.remove();
    }
    const network = entry.egress.network;
    const handle = await startContainer(opts.docker, opts.image, jobId, limits, network);
    entry.containers.add(handle);
    void handle.ended.then(() => entry.containers.delete(handle));
    try {
      return { handle, ip: await addressOn(handle, network), warm: false };
    } catch (err) {
      await handle.remove();
      throw err;
    }
  }

  async function runOnce(key: EgressKey, job: SandboxJob, runOpts: RunOptions, startedAt: number): Promise<EgressCall> {
    const limits = resolveLimits(job.limits);
    const jobId = newJobId(job);
    const entry = await lease(key);
    try {
      const { handle, ip, warm } = await takeContainer(entry, limits, jobId).catch((err: unknown) => {
        // Most likely the network was removed under us: no further call goes to this egress.
        if (err instanceof SandboxStartError) retire(entry, 'a container could not start on its network');
        throw err;
      });
      if (warm) counts.warmJobs++;
      else counts.coldJobs++;
      // Followed from before the job is sent: an address freed by an earlier call's container
      // is only handed out again after that container was removed, its last decisions long logged.
      const follow = entry.egress.follow(ip);
      try {
        const onNetwork = { ...job, id: jobId, network: entry.egress.network, proxyUrl: entry.egress.proxyUrl };
        const result = await runOnContainer(handle, onNetwork, limits, { startedAt, warm }, runOpts);
        if (result.ok) return { result, decisions: follow.decisions() };
        // A failure may stem from a refusal whose log line is still in flight; a success need not wait.
        const decisions = await follow.settled();
        if (await entry.egress.alive()) return { result, decisions };
        if (!entry.retired) counts.replaced++;
        retire(entry, 'proxy gone during a call');
        return {
          result: {
            ...result,
            reason: `${result.reason ?? 'the call failed'}; the egress proxy stopped during the call (the next call gets a new one)`,
          },
          decisions,
        };
      } finally {
        follow.stop();
      }
    } finally {
      release(entry);
    }
  }

  const pool: EgressPool = {
    async run(key, raw, runOpts = {}) {
      const startedAt = performance.now();
      // Checked before any container is taken: a job refused here leaves nothing to remove.
      const job = sandboxJobSchema.parse(raw) as SandboxJob;
      // Leftovers of a crashed worker would pile up networks (and their address ranges): clear them once.
      reaped ??= reapEgress(opts.docker).catch((err: unknown) =>
        log.warn('could not reap egress leftovers', { reason: describeError(err) }),
      );
      await reaped;
      try {
        return await runOnce(key, job, runOpts, startedAt);
      } catch (err) {
        // A container that could not start on the network (removed under us): once more, on a new egress.
        // Nothing of the tool ran, so this never repeats a call.
        if (!(err instanceof SandboxStartError) || closed) throw err;
        counts.replaced++;
        log.warn('a tool container could not start on its egress network; retrying on a new one', { reason: err.message });
        return runOnce(key, job, runOpts, startedAt);
      }
    },

    stats: () => ({ open: open.size, ...counts }),

    async ready() {
      await Promise.all([...open].map((e) => e.spare?.then((spare) => spare?.handle.ready.catch(() => undefined))));
    },

    async close() {
      closed = true;
      pools.delete(pool);
      await Promise.allSettled([...entries.values()]);
      entries.clear();
      await Promise.all([...open].map((e) => closeEntry(e)));
      await Promise.all([...closings]);
    },
  };
  pools.add(pool);
  return pool;
}
