/**
 * Sandbox overhead: cold (create + start + run) vs the single-use warm pool, measured in
 * the same run, plus throughput of N jobs with pool size K.
 *
 *   node --import tsx bench/sandbox.ts [--json] [--jobs N] [--pool K] [--samples S]
 *
 * Overhead = host wall clock for the job minus the time the runner spent on the job
 * itself, so it is what the sandbox costs, whatever the job. With --json the figures are
 * printed as ONE JSON line, last.
 */

import { dockerClient } from '../infra/docker.ts';
import { ensureSandboxImage } from '../infra/sandbox-image.ts';
import { config } from '../services/config.ts';
import { createSandbox, type Sandbox, type SandboxJob, type SandboxResult } from '../services/sandbox/index.ts';

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
