/**
 * Verification of a small tool (examples/tools/fetch_exchange_rate: static + mock stages), the way
 * verifyTool runs it now — the static stage in its long-lived type-checker thread while the
 * tests' bundle is built, then the tests in the sandbox — against the path before it (baseline,
 * same run): the static stage on the caller's event loop, then bundle, then tests, one after the
 * other. Besides the time, how long the caller's event loop was blocked at most (a 5 ms timer's
 * worst lateness): a sandbox worker's activities, heartbeats and polls wait that long.
 *
 *   node --import tsx bench/verify.ts [--samples N]
 */
import fs from 'node:fs';
import path from 'node:path';
import { dockerClient } from '../infra/docker.ts';
import { ensureSandboxImage } from '../infra/sandbox-image.ts';
import { config } from '../services/config.ts';
import { bundleTests } from '../services/sandbox/bundle.ts';
import { createSandbox } from '../services/sandbox/index.ts';
import { mockStage } from '../services/sandbox/stages/mock.ts';
import { analyzeStatic } from '../services/sandbox/stages/static.ts';
import { analyzeStaticOffThread, stopStaticThread, warmStaticChecker } from '../services/sandbox/stages/static-thread.ts';
import { machine, report, summary } from './lib.ts';

const argv = process.argv.slice(2);
const samples = argv.includes('--samples') ? Number(argv[argv.indexOf('--samples') + 1]) : 5;
const dir = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'examples', 'tools', 'fetch_exchange_rate');
const input = {
  source: fs.readFileSync(path.join(dir, 'tool.ts'), 'utf8'),
  tests: fs.readFileSync(path.join(dir, 'tool.test.ts'), 'utf8'),
  apiSpec: JSON.parse(fs.readFileSync(path.join(dir, 'api-spec.json'), 'utf8')),
};

/** The worst lateness of a 5 ms timer while `f` runs: how long the event loop was blocked. */
async function blocked<T>(f: () => Promise<T>): Promise<{ value: T; ms: number; blockedMs: number }> {
  let last = performance.now();
  let worst = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - 5);
    last = now;
  }, 5);
  const started = performance.now();
  try {
    const value = await f();
    return { value, ms: performance.now() - started, blockedMs: Math.max(worst, performance.now() - last - 5) };
  } finally {
    clearInterval(timer);
  }
}

const cfg = config();
const docker = dockerClient(cfg);
await ensureSandboxImage(docker, { tag: cfg.FORGE_SANDBOX_IMAGE });
const sandbox = createSandbox({ docker, image: cfg.FORGE_SANDBOX_IMAGE, poolSize: 2 });

async function before() {
  const s = await blocked(() => analyzeStatic(input));
  if (s.value.result.status !== 'passed') throw new Error(`static failed: ${s.value.result.reason}`);
  const m = await blocked(() => mockStage(input, sandbox));
  if (m.value.status !== 'passed') throw new Error(`mock failed: ${m.value.reason}`);
  return { staticMs: s.ms, totalMs: s.ms + m.ms, blockedMs: Math.max(s.blockedMs, m.blockedMs) };
}

async function now() {
  const r = await blocked(async () => {
    const bundle = bundleTests(input);
    bundle.catch(() => {});
    const started = performance.now();
    const s = await analyzeStaticOffThread(input);
    const staticMs = performance.now() - started;
    if (s.result.status !== 'passed') throw new Error(`static failed: ${s.result.reason}`);
    const m = await mockStage({ ...input, bundle }, sandbox);
    if (m.status !== 'passed') throw new Error(`mock failed: ${m.reason}`);
    return staticMs;
  });
  return { staticMs: r.value, totalMs: r.ms, blockedMs: r.blockedMs };
}

try {
  await warmStaticChecker(); // as the sandbox worker does when it starts
  await before(); // warms this thread's caches the same way
  const runs = { before: [] as Awaited<ReturnType<typeof before>>[], now: [] as Awaited<ReturnType<typeof now>>[] };
  for (let i = 0; i < samples; i++) {
    await sandbox.ready();
    runs.before.push(await before());
    await sandbox.ready();
    runs.now.push(await now());
  }
  const row = (label: string, list: { staticMs: number; totalMs: number; blockedMs: number }[]) => {
    const t = summary(list.map((r) => r.totalMs));
    const s = summary(list.map((r) => r.staticMs));
    const b = summary(list.map((r) => r.blockedMs));
    return { label, total: t, static: s, blocked: b };
  };
  const rows = [
    row('baseline: static on the event loop, then mock', runs.before),
    row('now: static in its thread, bundle alongside', runs.now),
  ];
  report(
    'verify',
    'static-mock',
    `verification of examples/tools/fetch_exchange_rate (static + mock), ${samples} runs each, warm, interleaved`,
    ['', 'total p50 ms', 'total p95 ms', 'static p50 ms', 'event loop blocked p50 ms', 'blocked max ms'],
    rows.map((r) => [
      r.label,
      r.total.p50,
      r.total.p95,
      r.static.p50,
      r.blocked.p50,
      Math.round(Math.max(...(r.label.startsWith('now') ? runs.now : runs.before).map((x) => x.blockedMs))),
    ]),
    { machine: machine(), samples, rows },
  );
} finally {
  await sandbox.close();
  await stopStaticThread();
}
