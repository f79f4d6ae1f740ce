/**
 * Verification of a small tool (examples/tools/fetch_exchange_rate: the static and mock stages),
 * the way verifyTool runs them now (staticAndMockStages: the tests start in the sandbox at once
 * while the long-lived type-checker thread checks the tool against the program it kept from the
 * previous check; the static verdict still decides) against the path before issue 14 (baseline,
 * same run): a whole new program type-checked on the caller's event loop, then the bundle, then
 * the tests, one after the other. Each run verifies a new text (a comment with the run's number
 * appended to tool.ts and tool.test.ts), as every forge attempt does, so no cache of the tool's
 * own files flatters either path.
 *
 * Besides the time: the tests' own time (what the runner reports for the tests themselves: this
 * example's retry tests sleep ~0.8 s of backoff, a floor no verification path can go under), and
 * how long the caller's event loop was blocked at most (a 5 ms timer's worst lateness): a sandbox
 * worker's activities, heartbeats and polls wait that long.
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
import type { StageResult } from '../services/sandbox/stages/index.ts';
import { staticAndMockStages } from '../services/sandbox/stages/index.ts';
import { mockStage } from '../services/sandbox/stages/mock.ts';
import { analyzeStatic } from '../services/sandbox/stages/static.ts';
import { stopStaticThread, warmStaticChecker } from '../services/sandbox/stages/static-thread.ts';
import { machine, report, summary } from './lib.ts';

const argv = process.argv.slice(2);
const samples = argv.includes('--samples') ? Number(argv[argv.indexOf('--samples') + 1]) : 5;
const dir = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'examples', 'tools', 'fetch_exchange_rate');
const example = {
  source: fs.readFileSync(path.join(dir, 'tool.ts'), 'utf8'),
  tests: fs.readFileSync(path.join(dir, 'tool.test.ts'), 'utf8'),
  apiSpec: JSON.parse(fs.readFileSync(path.join(dir, 'api-spec.json'), 'utf8')),
};
let runs = 0;
/** The example with a new text: what a forge attempt hands verification. */
const nextInput = () => {
  const mark = `\n// bench run ${++runs}\n`;
  return { ...example, source: example.source + mark, tests: example.tests + mark };
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

interface Run {
  totalMs: number;
  staticMs: number;
  testsOwnMs: number;
  blockedMs: number;
}

const testsOwnMs = (mock: StageResult) => (mock.tests ?? []).reduce((sum, t) => sum + t.durationMs, 0);

async function before(): Promise<Run> {
  const input = nextInput();
  const s = await blocked(() => analyzeStatic(input, { reuse: false }));
  if (s.value.result.status !== 'passed') throw new Error(`static failed: ${s.value.result.reason}`);
  const m = await blocked(() => mockStage({ ...input, bundle: bundleTests(input) }, sandbox));
  if (m.value.status !== 'passed') throw new Error(`mock failed: ${m.value.reason}`);
  return { staticMs: s.ms, totalMs: s.ms + m.ms, testsOwnMs: testsOwnMs(m.value), blockedMs: Math.max(s.blockedMs, m.blockedMs) };
}

async function now(): Promise<Run> {
  const input = nextInput();
  const r = await blocked(() => staticAndMockStages({ ...input, problems: [] }, sandbox));
  const { static: s, mock } = r.value;
  if (s.status !== 'passed' || !mock) throw new Error(`static failed: ${s.reason}`);
  if (mock.status !== 'passed') throw new Error(`mock failed: ${mock.reason}`);
  return { staticMs: s.durationMs, totalMs: r.ms, testsOwnMs: testsOwnMs(mock), blockedMs: r.blockedMs };
}

try {
  await warmStaticChecker(); // as the sandbox worker does when it starts
  await before(); // warms this thread's caches (zod's typings, esbuild) the same way
  await sandbox.ready();
  await now();
  const results = { before: [] as Run[], now: [] as Run[] };
  for (let i = 0; i < samples; i++) {
    await sandbox.ready();
    results.before.push(await before());
    await sandbox.ready();
    results.now.push(await now());
  }
  const row = (label: string, list: Run[]) => ({
    label,
    total: summary(list.map((r) => r.totalMs)),
    static: summary(list.map((r) => r.staticMs)),
    testsOwn: summary(list.map((r) => r.testsOwnMs)),
    blocked: summary(list.map((r) => r.blockedMs)),
    blockedMaxMs: Math.round(Math.max(...list.map((r) => r.blockedMs))),
  });
  const rows = [
    row('baseline: new program on the event loop, then bundle, then tests', results.before),
    row('now: tests at once, static alongside in its warm thread', results.now),
  ];
  const speedup = Math.round((rows[0]!.total.p50 / rows[1]!.total.p50) * 10) / 10;
  report(
    'verify',
    'static-mock',
    `verification of examples/tools/fetch_exchange_rate (static + mock), ${samples} runs each, warm, interleaved; now ${speedup}× faster at p50`,
    ['', 'total p50 ms', 'total p95 ms', 'static p50 ms', "tests' own p50 ms", 'event loop blocked p50 ms', 'blocked max ms'],
    rows.map((r) => [r.label, r.total.p50, r.total.p95, r.static.p50, r.testsOwn.p50, r.blocked.p50, r.blockedMaxMs]),
    { machine: machine(), samples, speedup, rows },
  );

  // The static stage alone, on this thread: what keeping the parsed files and the previous program buys.
  const alone = { fresh: [] as number[], reused: [] as number[] };
  await analyzeStatic(nextInput());
  for (let i = 0; i < samples * 4; i++) {
    for (const reuse of [false, true]) {
      const input = nextInput();
      const started = performance.now();
      const r = await analyzeStatic(input, { reuse });
      if (r.result.status !== 'passed') throw new Error(`static failed: ${r.result.reason}`);
      (reuse ? alone.reused : alone.fresh).push(performance.now() - started);
    }
  }
  const fresh = summary(alone.fresh);
  const reused = summary(alone.reused);
  report(
    'verify',
    'static-alone',
    `the static stage alone (type-check + rules of a new text), ${samples * 4} runs each, interleaved`,
    ['', 'p50 ms', 'p95 ms'],
    [
      ["baseline: a whole new program, Forge's files parsed again", fresh.p50, fresh.p95],
      ['now: parsed files kept, the previous program reused', reused.p50, reused.p95],
    ],
    { machine: machine(), samples: samples * 4, fresh, reused },
  );
} finally {
  await sandbox.close();
  await stopStaticThread();
}
