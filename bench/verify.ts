/**
 * Verification of a small tool, the way the sandbox worker runs it now (verifyTool: the tests and
 * Forge's own checks start in the sandbox at once, beside the static stage in its long-lived
 * type-checker thread; the verdicts still decide in the sequential order) against the path before
 * issue 14 (baseline, same run): a whole new program type-checked on the caller's event loop, then
 * the bundle and the tests, then the checks, one after the other, each bundle inlining zod as the
 * old path's did (oldPathBundle; the image's zod came later). The primary figure is the word
 * count tool (count_words: its spec, tests and code are what scenarios/forge-word-count.json has
 * the scripted model answer, read from there); examples/tools/fetch_exchange_rate follows, whose
 * own tests sleep 0.75 s (retry backoff), a floor no verification path goes under. Each run
 * verifies a new text (a comment with the run's number appended to tool.ts and tool.test.ts), as
 * every forge attempt does, so no cache of the tool's own files flatters either path.
 *
 * Besides the time: the stages' own times, and how long the caller's event loop was blocked at
 * most (a 5 ms timer's worst lateness): a sandbox worker's activities, heartbeats and polls wait
 * that long. Then the static stage alone, and `forge sandbox verify <dir>` as a person runs it:
 * through a running Forge's sandbox worker (a whole Forge started here, bench/stack.ts) against
 * the CLI verifying in its own process (Forge down), and the CLI's start alone (`forge help`).
 *
 *   node --import tsx bench/verify.ts [--samples N] [--cli-samples N] [--no-cli]
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as esbuild from 'esbuild';
import type { ApiSpec } from '../domain/tool.ts';
import { dockerClient } from '../infra/docker.ts';
import { freePort } from '../infra/processes.ts';
import { ensureSandboxImage } from '../infra/sandbox-image.ts';
import { config } from '../services/config.ts';
import { SANDBOX_BUILD, zodEnglishOnly } from '../services/sandbox/esbuild-plugins.ts';
import { createSandbox, DEFAULT_LIMITS } from '../services/sandbox/index.ts';
import { forgeChecksStage } from '../services/sandbox/stages/checks.ts';
import type { StageResult } from '../services/sandbox/stages/index.ts';
import { verifyTool } from '../services/sandbox/stages/index.ts';
import { mockStage } from '../services/sandbox/stages/mock.ts';
import { analyzeStatic } from '../services/sandbox/stages/static.ts';
import { stopStaticThread, warmStaticChecker } from '../services/sandbox/stages/static-thread.ts';
import { machine, report, summary } from './lib.ts';
import { startStack } from './stack.ts';

const argv = process.argv.slice(2);
const numberArg = (name: string, fallback: number) => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : fallback);
const samples = numberArg('--samples', 5);
const cliSamples = numberArg('--cli-samples', Math.max(2, Math.ceil(samples / 2)));
const root = path.join(path.dirname(new URL(import.meta.url).pathname), '..');

interface Example {
  name: string;
  source: string;
  tests: string;
  apiSpec?: ApiSpec;
}

/** count_words as the scripted model forges it: the scenario's answers to forge.tests and forge.implementation. */
function wordCount(): Example {
  const scenario = JSON.parse(fs.readFileSync(path.join(root, 'scenarios', 'forge-word-count.json'), 'utf8')) as {
    rules: Array<{ match?: { purpose?: string; user?: string }; responses: Array<{ tool_use?: { input: Record<string, string> } }> }>;
  };
  const answer = (purpose: string, field: string) => {
    const rule = scenario.rules.find((r) => r.match?.purpose === purpose && r.match.user?.includes('count_words'));
    const value = rule?.responses[0]?.tool_use?.input[field];
    if (typeof value !== 'string') throw new Error(`scenarios/forge-word-count.json has no ${purpose} answer for count_words`);
    return value;
  };
  return { name: 'count_words', source: answer('forge.implementation', 'source'), tests: answer('forge.tests', 'tests') };
}

function exchangeRate(): Example {
  const dir = path.join(root, 'examples', 'tools', 'fetch_exchange_rate');
  return {
    name: 'fetch_exchange_rate',
    source: fs.readFileSync(path.join(dir, 'tool.ts'), 'utf8'),
    tests: fs.readFileSync(path.join(dir, 'tool.test.ts'), 'utf8'),
    apiSpec: JSON.parse(fs.readFileSync(path.join(dir, 'api-spec.json'), 'utf8')) as ApiSpec,
  };
}

let runs = 0;
/** The example with a new text: what a forge attempt hands verification. */
const nextInput = (ex: Example) => {
  const mark = `\n// bench run ${++runs}\n`;
  return { ...ex, source: ex.source + mark, tests: ex.tests + mark };
};

/**
 * A bundle as the old path built it (services/sandbox/bundle.ts before the image carried zod, commit
 * 5779366): zod inlined into each one (~0.1 s of esbuild, and the judged process evaluates that copy
 * when it loads the tool, where it now finds the image's zod preloaded); otherwise the same build —
 * the tool's files from memory, @forge/tool erased, @forge/testkit the runner's.
 */
async function oldPathBundle(entry: string, files: Record<string, string>): Promise<string> {
  const plugin: esbuild.Plugin = {
    name: 'old-path-files',
    setup(build) {
      build.onResolve({ filter: /^@forge\/tool$/ }, () => ({ path: '@forge/tool', namespace: 'old-empty' }));
      build.onLoad({ filter: /.*/, namespace: 'old-empty' }, () => ({ contents: 'export {};', loader: 'js' }));
      build.onResolve({ filter: /^@forge\/testkit$/ }, () => ({ path: path.join(root, 'runner', 'testkit.ts') }));
      build.onResolve({ filter: /^\.\/[^/]+$/ }, (args) =>
        args.namespace === 'old-files' || args.kind === 'entry-point' ? { path: args.path.slice(2), namespace: 'old-files' } : undefined,
      );
      build.onLoad({ filter: /.*/, namespace: 'old-files' }, (args) => ({ contents: files[args.path], loader: 'ts', resolveDir: root }));
    },
  };
  const out = await esbuild.build({ ...SANDBOX_BUILD, entryPoints: [entry], plugins: [plugin, zodEnglishOnly] });
  return out.outputFiles[0]!.text;
}

/** The tests' bundle as the old path built it (bundle.ts bundleTests, zod inlined). */
function oldPathTestsBundle(input: Example): Promise<string> {
  const setup = [
    "import { configureTestkit } from '@forge/testkit';",
    "import { manifest } from './tool.ts';",
    `configureTestkit({ apiSpec: ${JSON.stringify(input.apiSpec ?? null)} ?? undefined, permissions: manifest.permissions, sideEffect: manifest.sideEffect });`,
  ].join('\n');
  return oldPathBundle('./__forge_entry.ts', {
    '__forge_entry.ts': "import './__forge_setup.ts';\nimport './tool.test.ts';\n",
    '__forge_setup.ts': setup,
    'tool.ts': input.source,
    'tool.test.ts': input.tests,
  });
}

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

interface Run {
  totalMs: number;
  staticMs: number;
  testsOwnMs: number;
  checksMs: number;
  blockedMs: number;
}

const testsOwnMs = (mock: StageResult) => (mock.tests ?? []).reduce((sum, t) => sum + t.durationMs, 0);
const passed = (stage: StageResult | undefined, what: string): StageResult => {
  if (stage?.status !== 'passed') throw new Error(`${what} did not pass: ${stage?.reason ?? 'not run'}`);
  return stage;
};

async function inProcessFigures(): Promise<void> {
  const cfg = config();
  const docker = dockerClient(cfg);
  await ensureSandboxImage(docker, { tag: cfg.FORGE_SANDBOX_IMAGE });
  // As the sandbox worker runs it: the warm pool at FORGE_POOL_SIZE's default.
  const sandbox = createSandbox({ docker, image: cfg.FORGE_SANDBOX_IMAGE, poolSize: cfg.FORGE_POOL_SIZE });

  async function before(ex: Example): Promise<Run> {
    const input = nextInput(ex);
    const s = await blocked(() => analyzeStatic(input, { reuse: false }));
    passed(s.value.result, 'static');
    const m = await blocked(() => mockStage({ ...input, bundle: oldPathTestsBundle(input) }, sandbox));
    passed(m.value, 'mock');
    // The checks on the sandbox's default half CPU, as before issue 14 (the runner's own changes, the
    // cases' process started while the container waited, are in both paths: the ratio understates).
    const c = await blocked(() =>
      forgeChecksStage(
        {
          ...input,
          manifest: s.value.manifest,
          bundle: oldPathBundle('./tool.ts', { 'tool.ts': input.source }),
          limits: { cpus: DEFAULT_LIMITS.cpus },
        },
        sandbox,
      ),
    );
    passed(c.value, 'forge-checks');
    return {
      staticMs: s.ms,
      totalMs: s.ms + m.ms + c.ms,
      testsOwnMs: testsOwnMs(m.value),
      checksMs: c.value.durationMs,
      blockedMs: Math.max(s.blockedMs, m.blockedMs, c.blockedMs),
    };
  }

  async function now(ex: Example): Promise<Run> {
    const input = nextInput(ex);
    const files = {
      'tool.ts': input.source,
      'tool.test.ts': input.tests,
      ...(input.apiSpec ? { 'api-spec.json': JSON.stringify(input.apiSpec) } : {}),
    };
    const r = await blocked(() => verifyTool({ files, live: false }, sandbox));
    const [st, mock, checks] = r.value.stages;
    return {
      staticMs: passed(st, 'static').durationMs,
      totalMs: r.ms,
      testsOwnMs: testsOwnMs(passed(mock, 'mock')),
      checksMs: passed(checks, 'forge-checks').durationMs,
      blockedMs: r.blockedMs,
    };
  }

  const row = (label: string, list: Run[]) => ({
    label,
    total: summary(list.map((r) => r.totalMs)),
    static: summary(list.map((r) => r.staticMs)),
    testsOwn: summary(list.map((r) => r.testsOwnMs)),
    checks: summary(list.map((r) => r.checksMs)),
    blocked: summary(list.map((r) => r.blockedMs)),
    blockedMaxMs: Math.round(Math.max(...list.map((r) => r.blockedMs))),
  });

  try {
    await warmStaticChecker(); // as the sandbox worker does when it starts
    for (const [figure, ex] of [
      ['word-count', wordCount()],
      ['exchange-rate', exchangeRate()],
    ] as const) {
      await before(ex); // warms this thread's caches (zod's typings, esbuild) the same way
      await sandbox.ready();
      await now(ex);
      const results = { before: [] as Run[], now: [] as Run[] };
      for (let i = 0; i < samples; i++) {
        await sandbox.ready();
        results.before.push(await before(ex));
        await sandbox.ready();
        results.now.push(await now(ex));
      }
      const rows = [
        row('baseline: new program on the event loop, then bundle (zod inlined) + tests, then checks', results.before),
        row('now: tests and checks at once, static alongside in its warm thread', results.now),
      ];
      const speedup = Math.round((rows[0]!.total.p50 / rows[1]!.total.p50) * 10) / 10;
      report(
        'verify',
        figure,
        `verification of ${ex.name} (static + mock + forge-checks; no live stage: ${ex.apiSpec ? 'disabled here' : 'no API'}), ${samples} runs each, warm, interleaved; now ${speedup}× faster at p50`,
        [
          '',
          'total p50 ms',
          'total p95 ms',
          'static p50 ms',
          "tests' own p50 ms",
          'checks p50 ms',
          'loop blocked p50 ms',
          'blocked max ms',
        ],
        rows.map((r) => [r.label, r.total.p50, r.total.p95, r.static.p50, r.testsOwn.p50, r.checks.p50, r.blocked.p50, r.blockedMaxMs]),
        { machine: machine(), tool: ex.name, samples, speedup, rows },
      );
    }

    // The static stage alone, on this thread: what keeping the parsed files and the previous program buys.
    const ex = wordCount();
    const alone = { fresh: [] as number[], reused: [] as number[] };
    await analyzeStatic(nextInput(ex));
    for (let i = 0; i < samples * 4; i++) {
      for (const reuse of [false, true]) {
        const input = nextInput(ex);
        const started = performance.now();
        passed((await analyzeStatic(input, { reuse })).result, 'static');
        (reuse ? alone.reused : alone.fresh).push(performance.now() - started);
      }
    }
    const fresh = summary(alone.fresh);
    const reused = summary(alone.reused);
    report(
      'verify',
      'static-alone',
      `the static stage alone on count_words (type-check + rules of a new text), ${samples * 4} runs each, interleaved`,
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
}

/** One `forge` CLI run in a child process: its wall clock, exit code and stderr. */
function forge(args: string[], env: NodeJS.ProcessEnv): Promise<{ ms: number; code: number | null; stdout: string; stderr: string }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(root, 'bin', 'forge.mjs'), ...args], {
      env,
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ ms: performance.now() - started, code, stdout, stderr }));
  });
}

async function cliFigure(): Promise<void> {
  const stack = await startStack({ database: 'pglite' });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-bench-verify-'));
  try {
    const ex = wordCount();
    const write = () => {
      const input = nextInput(ex);
      fs.writeFileSync(path.join(dir, 'tool.ts'), input.source);
      fs.writeFileSync(path.join(dir, 'tool.test.ts'), input.tests);
    };
    const base: NodeJS.ProcessEnv = {
      ...Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'TEMPORAL_ADDRESS')),
      FORGE_LOG_LEVEL: 'warn',
    };
    const up = {
      ...base,
      FORGE_HOME: stack.cfg.home,
      DATABASE_URL: stack.cfg.DATABASE_URL,
      TEMPORAL_ADDRESS: stack.cfg.TEMPORAL_ADDRESS,
      FORGE_TASK_QUEUE: stack.cfg.FORGE_TASK_QUEUE,
      FORGE_SANDBOX_QUEUE: stack.cfg.FORGE_SANDBOX_QUEUE,
    };
    // Forge down: no Temporal where the CLI looks for Forge's own dev server.
    const down = {
      ...base,
      FORGE_HOME: fs.mkdtempSync(path.join(os.tmpdir(), 'forge-bench-down-')),
      TEMPORAL_PORT: String(await freePort()),
    };
    const verify = async (env: NodeJS.ProcessEnv, onWorker: boolean) => {
      write();
      const r = await forge(['sandbox', 'verify', dir, '--json'], env);
      if (r.code !== 0) throw new Error(`forge sandbox verify exited ${r.code}: ${r.stdout.slice(-500)} ${r.stderr.slice(-1000)}`);
      if (/^verifying in this process/m.test(r.stderr) === onWorker)
        throw new Error(`expected the verification ${onWorker ? 'on the worker' : 'in the CLI'}: ${r.stderr.slice(-500)}`);
      return r.ms;
    };
    // The CLI through tsx, as before its bundle (bin/cli-bundle.mjs), against the bundle it runs from now.
    const tsx = { FORGE_CLI_BUNDLE: '0' };
    await verify(up, true); // the worker's first verification, the CLI's bundle and tsx's compile cache
    await verify({ ...up, ...tsx }, true);
    const times = { worker: [] as number[], tsx: [] as number[], local: [] as number[], help: [] as number[], helpTsx: [] as number[] };
    for (let i = 0; i < cliSamples; i++) {
      times.worker.push(await verify(up, true));
      times.tsx.push(await verify({ ...up, ...tsx }, true));
      times.local.push(await verify(down, false));
      times.help.push((await forge(['help'], down)).ms);
      times.helpTsx.push((await forge(['help'], { ...down, ...tsx })).ms);
    }
    const rows = [
      ['baseline: Forge down, verified in the CLI process (cold type-check, cold containers)', summary(times.local)],
      ['before: Forge up, verified by its sandbox worker, the CLI through tsx', summary(times.tsx)],
      ['now: Forge up, verified by its sandbox worker, the CLI from its bundle', summary(times.worker)],
      ['the CLI starting alone (forge help), through tsx', summary(times.helpTsx)],
      ['the CLI starting alone (forge help), from its bundle', summary(times.help)],
    ] as const;
    const speedup = Math.round((rows[0][1].p50 / rows[2][1].p50) * 10) / 10;
    const bundled = Math.round((rows[1][1].p50 / rows[2][1].p50) * 10) / 10;
    report(
      'verify',
      'cli',
      `forge sandbox verify <count_words folder> --json, wall clock of the process, ${cliSamples} runs each, interleaved; on the worker ${speedup}× faster at p50, the bundled CLI ${bundled}× faster than through tsx`,
      ['', 'p50 ms', 'p95 ms'],
      rows.map(([label, s]) => [label, s.p50, s.p95]),
      { machine: machine(), samples: cliSamples, speedup, bundled, rows: rows.map(([label, s]) => ({ label, ms: s })) },
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await stack.close();
  }
}

await inProcessFigures();
if (!argv.includes('--no-cli')) await cliFigure();
