import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { type Duplex, PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import { describeError, ForgeError } from '../../../domain/errors.ts';
import type { SideEffect } from '../../../domain/tool.ts';
import { NODE_PATH } from '../../../runner/protocol.ts';
import { PROXY_PORT, PROXY_READY_MARKER, type ProxyDecision } from '../../../runner/proxy.ts';
import { REACH_BUDGET_MS, REACH_MARKER, type Reach } from '../../../runner/reach.ts';
import { log } from '../../log.ts';
import { bundleRunnerScript, repoRoot } from '../bundle.ts';
import { LABEL_DEPLOYMENT, LABEL_OWNER, LABEL_SANDBOX, OWNER, sandboxDeployment } from '../container.ts';
import { ownerIsGone } from '../docker.ts';

/**
 * An egress network: an internal Docker network (no route out, and no
 * host address on its bridge, so the host's own services are out of reach too) whose only
 * other member is a proxy container that is also on the default bridge. The tool container
 * joins the internal network and can talk to nothing but the proxy, which allows only the
 * tool's declared domains (runner/proxy.ts). Everything carries forge.sandbox=1 and is
 * removed by close(), or by reapEgress after a crash. The live stage opens one per call; a
 * registered tool's calls share one per version (egress-pool.ts), each following its own decisions.
 */
export const LABEL_EGRESS = 'forge.egress';
const READY_TIMEOUT_MS = 15_000;
const SETTLE_QUIET_MS = 200;
const SETTLE_MAX_MS = 2_000;
const NETWORK_REMOVE_WAIT_MS = 5_000;

export interface EgressOptions {
  image: string;
  /** the tool's declared domains */
  allow: readonly string[];
  /**
   * the tool's declared side effect: for `read` the proxy admits only GET, HEAD and OPTIONS and no
   * CONNECT tunnel. Default `read`: a caller that does not say the tool writes gets no writes.
   */
  sideEffect?: SideEffect;
  /** extra /etc/hosts lines for the proxy ("name:ip"); tests use them to point names at chosen addresses */
  extraHosts?: string[];
  /**
   * Bench and test hook, never from configuration: "address:port" → "host:port", where the proxy
   * connects for an allowed destination after all its checks (a local server standing in for a public address).
   */
  redirect?: Record<string, string>;
  id?: string;
  /** called once the network exists, before the proxy starts: a caller may start its tool container alongside */
  onNetwork?: (network: string) => void;
}

export interface Egress {
  /** the internal network the tool container joins */
  network: string;
  /** http://<proxy ip on the internal network>:3128 */
  proxyUrl: string;
  proxyIp: string;
  /** the proxy's allow/deny decisions received so far */
  decisions(): ProxyDecision[];
  /**
   * The decisions once the proxy's output has been quiet for a moment: its log arrives over
   * the attach stream, independently of the tool job's own result.
   */
  settledDecisions(): Promise<ProxyDecision[]>;
  /**
   * Forge's own check, run in the proxy's container, that host:port can be reached the way the
   * proxy would reach it (runner/reach.ts); undefined when the check itself could not run.
   */
  reach(host: string, port: number, tls: boolean): Promise<Reach | undefined>;
  /**
   * The decisions the proxy makes from now on for one client address (a call's container on the
   * network): what a call of a shared proxy (egress-pool.ts) reports as its own.
   */
  follow(client: string): Follow;
  /** whether the proxy still runs and is still on the network (dockerd restarts and prunes happen) */
  alive(): Promise<boolean>;
  close(): Promise<void>;
}

export class EgressError extends ForgeError {
  constructor(step: string, reason: string) {
    super(
      `could not set up the egress proxy (${step}): ${reason}`,
      'EGRESS_FAILED',
      'check dockerd (docker info) and that the sandbox image exists; leftovers are removed by reapEgress',
      { step },
    );
  }
}

let proxyCode: Promise<string> | undefined;
/** Bundled once per process: passed to `node -e`, so the image needs no rebuild for it. */
function proxyBundle(): Promise<string> {
  proxyCode ??= bundleRunnerScript(
    'the egress proxy',
    `import { startProxyFromEnv } from ${JSON.stringify(path.join(repoRoot, 'runner', 'proxy.ts'))};\nstartProxyFromEnv();\n`,
  );
  return proxyCode;
}

let reachCode: Promise<string> | undefined;
function reachBundle(): Promise<string> {
  reachCode ??= bundleRunnerScript(
    'the reachability check',
    `import { runReachFromEnv } from ${JSON.stringify(path.join(repoRoot, 'runner', 'reach.ts'))};\nrunReachFromEnv();\n`,
  );
  return reachCode;
}

/** Runs the reachability check beside the proxy (docker exec): same network view, none of the tool's code. */
async function reachFrom(
  docker: Docker,
  container: Docker.Container,
  allow: readonly string[],
  host: string,
  port: number,
  tls: boolean,
): Promise<Reach | undefined> {
  try {
    const exec = await container.exec({
      Cmd: [NODE_PATH, '--max-old-space-size=32', '--input-type=module', '-e', await reachBundle()],
      Env: [
        `FORGE_PROXY_ALLOW=${allow.join(',')}`,
        `FORGE_REACH_HOST=${host}`,
        `FORGE_REACH_PORT=${port}`,
        `FORGE_REACH_TLS=${tls ? '1' : '0'}`,
        'HOME=/tmp',
      ],
      User: '10001:10001',
      WorkingDir: '/tmp',
      AttachStdout: true,
      AttachStderr: true,
    });
    const stream = await exec.start({ hijack: true, stdin: false });
    let text = '';
    const out = new PassThrough();
    out.on('data', (c: Buffer) => {
      text += c.toString('utf8');
    });
    docker.modem.demuxStream(stream, out, new PassThrough().resume());
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, REACH_BUDGET_MS + 5_000);
      stream.once('end', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    stream.destroy();
    const at = text.lastIndexOf(REACH_MARKER);
    const reach = at < 0 ? undefined : (JSON.parse(text.slice(at + REACH_MARKER.length).split('\n')[0] ?? '') as Reach);
    if (reach && ['reachable', 'unreachable', 'refused'].includes(reach.status)) return reach;
    log.warn('the reachability check printed no verdict', { host, port, output: text.slice(-300) });
  } catch (err) {
    log.warn('the reachability check could not run', { host, port, reason: describeError(err) });
  }
  return undefined;
}

function proxySpec(opts: EgressOptions, name: string, code: string): Docker.ContainerCreateOptions {
  return {
    Image: opts.image,
    Cmd: [NODE_PATH, '--max-old-space-size=48', '--input-type=module', '-e', code],
    Env: [
      `FORGE_PROXY_ALLOW=${opts.allow.join(',')}`,
      `FORGE_PROXY_SIDE_EFFECT=${opts.sideEffect ?? 'read'}`,
      `FORGE_PROXY_PORT=${PROXY_PORT}`,
      ...(opts.redirect
        ? [
            `FORGE_PROXY_REDIRECT=${Object.entries(opts.redirect)
              .map(([from, to]) => `${from}=${to}`)
              .join(',')}`,
          ]
        : []),
      'HOME=/tmp',
    ],
    User: '10001:10001',
    WorkingDir: '/tmp',
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
    Labels: { [LABEL_SANDBOX]: '1', [LABEL_EGRESS]: name, [LABEL_OWNER]: OWNER, [LABEL_DEPLOYMENT]: sandboxDeployment() },
    HostConfig: {
      // The default bridge is the proxy's way out; the internal network is connected below.
      NetworkMode: 'bridge',
      ExtraHosts: opts.extraHosts ?? [],
      ReadonlyRootfs: true,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      PidsLimit: 64,
      Memory: 96 * 1024 * 1024,
      MemorySwap: 96 * 1024 * 1024,
      NanoCpus: 500_000_000,
      LogConfig: { Type: 'none', Config: {} },
      AutoRemove: false,
    },
  };
}

/** How many decisions an egress keeps for decisions(): a pooled proxy lives long; a call follows its own. */
const KEPT_DECISIONS = 1_000;

/** One call's view of a shared proxy: the decisions made for its container's address only. */
export interface Follow {
  decisions(): ProxyDecision[];
  /** its decisions once none has arrived for a moment (the proxy's log is asynchronous to the call's result) */
  settled(): Promise<ProxyDecision[]>;
  stop(): void;
}

/** Collects the proxy's stdout: the ready marker, then one JSON decision per line, handed to followers. */
interface Watch {
  /** the output's tail, for error messages */
  tail: () => string;
  ended: () => boolean;
  decisions: () => ProxyDecision[];
  wait: (what: string) => Promise<void>;
  quiet: (quietMs: number, maxMs: number) => Promise<void>;
  follow: (client: string) => Follow;
}

interface Follower {
  client: string;
  seen: ProxyDecision[];
  lastAt: number;
}

function watch(docker: Docker, stream: NodeJS.ReadWriteStream): Watch {
  let tail = '';
  let partial = '';
  let ready = false;
  let ended = false;
  let lastChunkAt = performance.now();
  const all: ProxyDecision[] = [];
  const followers = new Set<Follower>();
  const listeners = new Set<() => void>();
  const onText = (chunk: string) => {
    lastChunkAt = performance.now();
    tail = (tail + chunk).slice(-2_000);
    // stdout only: a stderr chunk in the middle of a line would break it.
    partial += chunk;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.startsWith(PROXY_READY_MARKER)) ready = true;
      const d = parseDecision(line);
      if (!d) continue;
      all.push(d);
      if (all.length > KEPT_DECISIONS) all.splice(0, all.length - KEPT_DECISIONS);
      for (const f of followers)
        if (f.client === d.client) {
          f.seen.push(d);
          f.lastAt = performance.now();
        }
    }
    for (const l of listeners) l();
  };
  // Decoded as streams, so a character split between two chunks stays whole.
  const out = new PassThrough().setEncoding('utf8');
  const err = new PassThrough().setEncoding('utf8');
  out.on('data', onText);
  err.on('data', (chunk: string) => {
    tail = (tail + chunk).slice(-2_000);
    for (const l of listeners) l();
  });
  docker.modem.demuxStream(stream, out, err);
  const end = () => {
    ended = true;
    for (const l of listeners) l();
  };
  stream.once('end', end);
  stream.once('close', end);
  stream.once('error', end);
  const wait = (what: string) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => done(new Error(`no ${what} within ${READY_TIMEOUT_MS} ms; output: ${tail.slice(-300)}`)),
        READY_TIMEOUT_MS,
      );
      const check = () => {
        if (what === PROXY_READY_MARKER ? ready : tail.includes(what)) done();
        else if (ended) done(new Error(`the proxy exited before ${what}; output: ${tail.slice(-300)}`));
      };
      const done = (e?: Error) => {
        clearTimeout(timer);
        listeners.delete(check);
        if (e) reject(e);
        else resolve();
      };
      listeners.add(check);
      check();
    });
  /** Quiet means no output for quietMs counted from now too: the last line may still be in flight. */
  const quietFor = async (last: () => number, quietMs: number, maxMs: number) => {
    const since = performance.now();
    const deadline = since + maxMs;
    while (!ended && performance.now() < deadline && performance.now() - Math.max(last(), since) < quietMs) {
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  const follow = (client: string): Follow => {
    const f: Follower = { client, seen: [], lastAt: 0 };
    followers.add(f);
    return {
      decisions: () => [...f.seen],
      settled: async () => {
        // Only this call's lines count: other calls of the same version keep a shared proxy talking.
        await quietFor(() => f.lastAt, SETTLE_QUIET_MS, SETTLE_MAX_MS);
        return [...f.seen];
      },
      stop: () => void followers.delete(f),
    };
  };
  return {
    tail: () => tail,
    ended: () => ended,
    decisions: () => [...all],
    wait,
    quiet: (quietMs, maxMs) => quietFor(() => lastChunkAt, quietMs, maxMs),
    follow,
  };
}

function parseDecision(line: string): ProxyDecision | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    return JSON.parse(line) as ProxyDecision;
  } catch {
    return undefined;
  }
}

async function removeQuietly(what: string, fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 404) log.warn('egress cleanup failed', { what, reason: describeError(err) });
  }
}

/** Whether the container is still an endpoint of the network (false too when the network is gone). */
async function attached(docker: Docker, network: string, containerId: string): Promise<boolean> {
  try {
    const info = (await docker.getNetwork(network).inspect()) as { Containers?: Record<string, unknown> };
    return Object.hasOwn(info.Containers ?? {}, containerId);
  } catch {
    return false;
  }
}

/**
 * The tool container is removed in the background (docker.ts), and until it is gone the network
 * still has its endpoint and refuses removal: wait for it briefly instead of leaking the network.
 */
async function removeNetwork(network: Docker.Network): Promise<void> {
  const deadline = performance.now() + NETWORK_REMOVE_WAIT_MS;
  for (;;) {
    try {
      return void (await network.remove());
    } catch (err) {
      if (!/active endpoints/i.test(describeError(err)) || performance.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export async function openEgress(docker: Docker, opts: EgressOptions): Promise<Egress> {
  const name = `forge-egress-${opts.id ?? randomUUID().slice(0, 8)}`;
  let step = 'create the internal network';
  let network: Docker.Network | undefined;
  let container: Docker.Container | undefined;
  let stream: NodeJS.ReadWriteStream | undefined;
  const close = async () => {
    if (container) await removeQuietly('proxy container', () => container!.remove({ force: true }));
    // The engine may keep the output stream of a removed container open (container.ts closeConnection).
    (stream as Duplex | undefined)?.destroy();
    if (network) await removeQuietly('egress network', () => removeNetwork(network!));
  };
  try {
    network = await docker.createNetwork({
      Name: name,
      Driver: 'bridge',
      Internal: true,
      CheckDuplicate: true,
      // Without this the host gets an address on the bridge, and its services listening on
      // 0.0.0.0 would be reachable from the "internal" network (measured here).
      Options: { 'com.docker.network.bridge.inhibit_ipv4': 'true' },
      Labels: { [LABEL_SANDBOX]: '1', [LABEL_EGRESS]: name, [LABEL_OWNER]: OWNER, [LABEL_DEPLOYMENT]: sandboxDeployment() },
    });
    opts.onNetwork?.(name);
    step = 'bundle the proxy';
    const code = await proxyBundle();
    step = 'create the proxy container';
    container = await docker.createContainer(proxySpec(opts, name, code));
    await network.connect({ Container: container.id });
    stream = await container.attach({ stream: true, stdout: true, stderr: true });
    const output = watch(docker, stream);
    step = 'start the proxy';
    await container.start();
    await output.wait(PROXY_READY_MARKER);
    const info = await container.inspect();
    const proxyIp = info.NetworkSettings.Networks[name]?.IPAddress;
    if (!proxyIp) throw new Error(`the proxy has no address on ${name}`);
    return {
      network: name,
      proxyIp,
      proxyUrl: `http://${proxyIp}:${PROXY_PORT}`,
      decisions: () => output.decisions(),
      settledDecisions: async () => {
        await output.quiet(SETTLE_QUIET_MS, SETTLE_MAX_MS);
        return output.decisions();
      },
      follow: (client) => output.follow(client),
      alive: async () => !output.ended() && (await attached(docker, name, container!.id)),
      reach: (host, port, tls) => reachFrom(docker, container!, opts.allow, host, port, tls),
      close,
    };
  } catch (err) {
    await close();
    throw new EgressError(step, describeError(err));
  }
}

/** Removes egress proxies and networks left by a crashed process (same ownership rule as reapOrphans). */
export async function reapEgress(docker: Docker, opts: { all?: boolean } = {}): Promise<number> {
  const doomed = (labels: Record<string, string> | undefined) => opts.all || ownerIsGone(labels?.[LABEL_OWNER]);
  const containers = await docker.listContainers({ all: true, filters: { label: [LABEL_EGRESS] } });
  const deadContainers = containers.filter((c) => doomed(c.Labels));
  await Promise.all(deadContainers.map((c) => removeQuietly('proxy container', () => docker.getContainer(c.Id).remove({ force: true }))));
  const networks = await docker.listNetworks({ filters: { label: [LABEL_EGRESS] } });
  const deadNetworks = networks.filter((n) => doomed(n.Labels));
  await Promise.all(deadNetworks.map((n) => removeQuietly('egress network', () => docker.getNetwork(n.Id).remove())));
  if (deadContainers.length + deadNetworks.length)
    log.info('reaped egress leftovers', { containers: deadContainers.length, networks: deadNetworks.length });
  return deadContainers.length + deadNetworks.length;
}
