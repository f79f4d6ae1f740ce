/**
 * Sandbox overhead: cold (create + start + run) vs the single-use warm pool, measured in
 * the same run, plus throughput of N jobs with pool size K; and a registered tool's call with
 * network permissions (through its version's egress proxy, to a local HTTP server) against the
 * same call of a tool without any, side by side.
 *
 *   node --import tsx bench/sandbox.ts [--json] [--jobs N] [--pool K] [--samples S]
 *
 * Overhead = host wall clock for the job minus the time the runner spent on the job
 * itself, so it is what the sandbox costs, whatever the job. The egress figure prints its table
 * and JSON line (bench/lib.ts report); with --json the rest is ONE JSON line, last.
 */

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { dockerClient } from '../infra/docker.ts';
import { ensureSandboxImage } from '../infra/sandbox-image.ts';
import { config } from '../services/config.ts';
import { createEgressPool } from '../services/sandbox/egress-pool.ts';
import { createSandbox, type Sandbox, type SandboxJob, type SandboxResult } from '../services/sandbox/index.ts';
import { createRegisteredToolRunner } from '../services/sandbox/run-registered.ts';
import { report as figure, summary as stats } from './lib.ts';

interface Args {
  json: boolean;
  jobs: number;
  pool: number;
  samples: number;
}

function parseArgs(argv: string[]): Args {
  const num = (flag: string, fallback: number) => {
    const at = argv.indexOf(flag);
    const v = at >= 0 ? Number(argv[at + 1]) : fallback;
    if (!Number.isInteger(v) || v < 0) throw new Error(`${flag} expects a whole number`);
    return v;
  };
  return { json: argv.includes('--json'), jobs: num('--jobs', 20), pool: num('--pool', 2), samples: num('--samples', 15) };
}

/** A trivial tool with hand-written schemas: loading zod would be job time, not overhead, but it would slow the bench. */
const TOOL = `
const schema = { safeParse: (v) => ({ success: true, data: v }) };
export const manifest = { name: 'echo', description: 'echo', permissions: { network: [], env: [] }, input: schema, output: schema };
export async function run(input) { return { echoed: input }; }
`;
// Hand-written schemas are opaque to the judge: it checks only that the output is JSON.
const job = (i: number): SandboxJob => ({
  mode: 'call',
  files: { 'tool.mjs': TOOL },
  entry: 'tool.mjs',
  input: { i },
  allowOpaqueSchemas: true,
});

function percentile(values: number[], p: number): number {
  if (!values.length) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const summary = (values: number[]) => ({
  n: values.length,
  p50: percentile(values, 50),
  p95: percentile(values, 95),
  min: Math.min(...values),
  max: Math.max(...values),
});

function check(r: SandboxResult): SandboxResult {
  if (!r.ok) throw new Error(`bench job failed: ${r.reason}`);
  return r;
}

async function measure(
  sandbox: Sandbox,
  samples: number,
  waitForPool: boolean,
): Promise<{ overhead: number[]; total: number[]; warm: number }> {
  const overhead: number[] = [];
  const total: number[] = [];
  let warm = 0;
  for (let i = 0; i < samples; i++) {
    // Measure the warm path itself, not a pool still refilling from the previous job.
    if (waitForPool) await sandbox.ready();
    const r = check(await sandbox.runJob(job(i)));
    overhead.push(r.overheadMs ?? r.durationMs);
    total.push(r.durationMs);
    if (r.warm) warm++;
  }
  return { overhead, total, warm };
}

async function throughput(sandbox: Sandbox, jobs: number, concurrency: number) {
  await sandbox.ready();
  const started = performance.now();
  let next = 0;
  let warm = 0;
  const worker = async () => {
    while (next < jobs) {
      const r = check(await sandbox.runJob(job(next++)));
      if (r.warm) warm++;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  const wallMs = performance.now() - started;
  return {
    jobs,
    concurrency: Math.max(1, concurrency),
    wallMs: Math.round(wallMs),
    jobsPerSec: Number(((jobs * 1000) / wallMs).toFixed(2)),
    warm,
    cold: jobs - warm,
  };
}

/**
 * Two registered tools of the same kind: one reads a URL through ctx.fetch (network permission
 * for bench.example), one returns at once (no network). Real zod schemas, as a forged tool has.
 */
const registeredSource = (name: string, network: boolean) => `
import { z } from 'zod';
import type { ToolContext } from '@forge/tool';

export const manifest = {
  name: '${name}',
  description: 'Bench tool.',
  sideEffect: 'read',
  permissions: { network: ${network ? "['bench.example']" : '[]'}, env: [] },
  input: z.object({ i: z.number() }),
  output: z.object({ status: z.number(), fetchMs: z.number() }),
};

export async function run(input: z.output<typeof manifest.input>, ctx: ToolContext) {
  ${
    network
      ? "const t = performance.now(); const res = await ctx.fetch('http://bench.example/ping?i=' + input.i); await res.text(); return { status: res.status, fetchMs: performance.now() - t };"
      : 'return { status: 200, fetchMs: 0 };'
  }
}
`;

function writeRegistered(dir: string, name: string, network: boolean): void {
  const source = registeredSource(name, network);
  const at = path.join(dir, name, 'v1');
  fs.mkdirSync(at, { recursive: true });
  fs.writeFileSync(path.join(at, 'tool.ts'), source);
  fs.writeFileSync(
    path.join(at, 'manifest.json'),
    JSON.stringify({
      name,
      version: 1,
      description: 'Bench tool.',
      sideEffect: 'read',
      destructive: false,
      permissions: { network: network ? ['bench.example'] : [], env: [] },
      inputSchema: { type: 'object' },
      outputSchema: { type: 'object' },
      createdAt: new Date().toISOString(),
      createdBy: 'human',
      sourceSha256: createHash('sha256').update(source).digest('hex'),
      status: 'verified',
    }),
  );
}

/**
 * The host's address on Docker's default bridge: where a proxy container reaches a server on this host.
 * Some engines leave the gateway out of the network's IPAM config (and node lists no bridge interface
 * while no container is on it); the engine then gives the bridge its subnet's first address.
 */
async function bridgeGateway(docker: Docker): Promise<string> {
  const info = (await docker.getNetwork('bridge').inspect()) as { IPAM?: { Config?: Array<{ Gateway?: string; Subnet?: string }> } };
  const v4 = info.IPAM?.Config?.filter((c) => !(c.Subnet ?? c.Gateway ?? '').includes(':')) ?? [];
  const gateway = v4.find((c) => c.Gateway)?.Gateway;
  if (gateway) return gateway;
  const network = v4.find((c) => c.Subnet)?.Subnet?.match(/^(\d+\.\d+\.\d+)\.0\/\d+$/)?.[1];
  if (!network) throw new Error('the default bridge has no IPv4 gateway or subnet');
  return `${network}.1`;
}

/**
 * A network tool call (its version's egress reused, the proxy forwarding to a local HTTP server)
 * against an offline call of the same kind, interleaved in the same run; and a few calls with a
 * fresh egress each, as every network call paid before the egress pool. Overhead = wall clock of
 * the sandbox run − the runner's time for the job; job = the runner's time (the judged process,
 * the tool, and for a network job the proxy-aware fetch it loads); its fetch = the tool's request.
 */
async function egressFigure(docker: Docker, image: string, samples: number, poolSize: number) {
  const server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('pong'));
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  const port = (server.address() as AddressInfo).port;
  // bench.example resolves to a public address (the proxy refuses private ones); the proxy then
  // connects to this host's server instead (a bench hook: EgressOptions.redirect).
  const egressDeps = {
    docker,
    image,
    extraHosts: ['bench.example:93.184.216.34'],
    redirect: { '93.184.216.34:80': `${await bridgeGateway(docker)}:${port}` },
  };
  const toolsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-bench-egress-'));
  writeRegistered(toolsDir, 'bench_net', true);
  writeRegistered(toolsDir, 'bench_offline', false);
  const sandbox = createSandbox({ docker, image, poolSize: Math.max(1, poolSize) });
  const pool = createEgressPool({ ...egressDeps, idleMs: 600_000 });
  const runner = createRegisteredToolRunner({ sandbox, toolsDir, egress: { ...egressDeps, pool } });
  const call = async (name: string, i: number) => {
    const started = performance.now();
    const r = await runner.run({ name, version: 1, input: { i } });
    const wall = performance.now() - started;
    const out = r.output as { status: number; fetchMs: number } | undefined;
    if (!r.ok || out?.status !== 200) throw new Error(`bench call ${name} failed: ${r.reason}`);
    const overhead = r.overheadMs ?? r.durationMs;
    return { wall, overhead, job: r.durationMs - overhead, fetch: out.fetchMs, warm: r.warm === true };
  };
  const samplesOf = () => ({ wall: [] as number[], overhead: [] as number[], job: [] as number[], fetch: [] as number[], warm: 0 });
  const offline = samplesOf();
  const network = samplesOf();
  const perCall = { wall: [] as number[], overhead: [] as number[] };
  let first: { wall: number; overhead: number } | undefined;
  try {
    // The first network call opens the version's egress; the first calls of each also warm the bundler.
    await call('bench_offline', -1);
    first = await call('bench_net', -1);
    for (let i = 0; i < samples; i++) {
      await Promise.all([sandbox.ready(), pool.ready()]);
      for (const [name, into] of [
        ['bench_offline', offline],
        ['bench_net', network],
      ] as const) {
        const r = await call(name, i);
        into.wall.push(r.wall);
        into.overhead.push(r.overhead);
        into.job.push(r.job);
        into.fetch.push(r.fetch);
        if (r.warm) into.warm++;
      }
    }
    // Before the pool: an egress opened and closed around every call.
    for (let i = 0; i < Math.max(1, Math.ceil(samples / 5)); i++) {
      const fresh = createRegisteredToolRunner({ sandbox, toolsDir, egress: egressDeps });
      const started = performance.now();
      const r = await fresh.run({ name: 'bench_net', version: 1, input: { i } });
      await fresh.close();
      if (!r.ok) throw new Error(`bench call with a fresh egress failed: ${r.reason}`);
      perCall.wall.push(performance.now() - started);
      perCall.overhead.push(r.overheadMs ?? r.durationMs);
    }
  } finally {
    await pool.close();
    await sandbox.close();
    server.close();
    fs.rmSync(toolsDir, { recursive: true, force: true });
  }
  const o = stats(offline.overhead);
  const n = stats(network.overhead);
  const extraP50 = Math.round(n.p50 - o.p50);
  const row = (label: string, s: { wall: number[]; overhead: number[]; job?: number[]; fetch?: number[] }, warm?: number) => {
    const w = stats(s.wall);
    const v = stats(s.overhead);
    const job = s.job ? stats(s.job).p50 : '-';
    const fetch = s.fetch ? stats(s.fetch).p50 : '-';
    return [label, v.p50, v.p95, job, fetch, w.p50, w.p95, warm === undefined ? '-' : `${warm}/${s.wall.length}`];
  };
  figure(
    'sandbox',
    'egress',
    `a registered tool's call with network permissions vs the same kind offline (${samples} each, interleaved, same run)`,
    ['call', 'overhead p50 ms', 'overhead p95 ms', 'job p50 ms', 'its fetch p50 ms', 'wall p50 ms', 'wall p95 ms', 'warm'],
    [
      row('offline (warm pool)', offline, offline.warm),
      row('network: egress reused per version', network, network.warm),
      row('network: egress per call (before)', perCall),
      row('network: a version’s first call (opens it)', { wall: first ? [first.wall] : [], overhead: first ? [first.overhead] : [] }),
    ],
    {
      samples,
      overheadMs: { offline: o, network: n, perCallEgress: stats(perCall.overhead) },
      wallMs: { offline: stats(offline.wall), network: stats(network.wall), perCallEgress: stats(perCall.wall) },
      // The runner's time for the job (a network job also loads the proxy-aware fetch), and the tool's own request.
      jobMs: { offline: stats(offline.job), network: stats(network.job) },
      toolFetchMs: stats(network.fetch),
      firstCallMs: first ? { overhead: first.overhead, wall: Math.round(first.wall) } : null,
      warm: { offline: offline.warm, network: network.warm },
      networkExtraP50Ms: extraP50,
      target: { networkExtraP50MaxMs: 150, met: extraP50 <= 150 },
    },
  );
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const cfg = config();
  const docker = dockerClient(cfg);
  const image = cfg.FORGE_SANDBOX_IMAGE;
  await ensureSandboxImage(docker, { tag: image });
  const say = (line: string) => !args.json && process.stdout.write(line + '\n');

  const cold = createSandbox({ docker, image, poolSize: 0 });
  await measure(cold, 1, false); // first start warms dockerd's caches; not counted
  const coldRun = await measure(cold, args.samples, false);
  await cold.close();
  say(`cold: overhead p50 ${percentile(coldRun.overhead, 50)} ms, p95 ${percentile(coldRun.overhead, 95)} ms`);

  const pool = createSandbox({ docker, image, poolSize: Math.max(1, args.pool) });
  const warmRun = await measure(pool, args.samples, true);
  say(
    `warm: overhead p50 ${percentile(warmRun.overhead, 50)} ms, p95 ${percentile(warmRun.overhead, 95)} ms (${warmRun.warm}/${args.samples} served warm)`,
  );
  await pool.close();

  const tpPool = createSandbox({ docker, image, poolSize: args.pool });
  const tp = await throughput(tpPool, args.jobs, args.pool || 1);
  await tpPool.close();
  say(`throughput: ${tp.jobs} jobs, pool ${args.pool}: ${tp.jobsPerSec} jobs/s (${tp.warm} warm, ${tp.cold} cold)`);

  await egressFigure(docker, image, args.samples, args.pool);

  const coldS = summary(coldRun.overhead);
  const warmS = summary(warmRun.overhead);
  const report = {
    bench: 'sandbox',
    samples: args.samples,
    pool: args.pool,
    overheadMs: { cold: coldS, warm: warmS },
    totalMs: { cold: summary(coldRun.total), warm: summary(warmRun.total) },
    ratio: { p50: Number((coldS.p50 / warmS.p50).toFixed(1)), p95: Number((coldS.p95 / warmS.p95).toFixed(1)) },
    warmServed: warmRun.warm,
    throughput: { ...tp, pool: args.pool },
    target: { warmP50MaxMs: 30, met: warmS.p50 <= 30 },
  };
  if (args.json) process.stdout.write(JSON.stringify(report) + '\n');
  else
    say(
      `ratio cold/warm: p50 ${report.ratio.p50}x, p95 ${report.ratio.p95}x; warm p50 target ≤ 30 ms ${report.target.met ? 'met' : 'NOT met'}`,
    );
}

await main();
