/**
 * Verification of the word-count tool by the code of the day issue 14 was filed (commit aa96e59:
 * its own verifyTool, its own runner in its own sandbox image, its own warm pool) beside today's,
 * in one run, alternating sample by sample: the "today's path" the issue's ≥ 4× is measured
 * against, as it really was rather than emulated (bench/verify.ts's baseline runs today's runner).
 * Then, verification was static + mock (Forge's own checks did not exist yet); now it is static +
 * mock + forge-checks: today's path does more. A third side, alternating with the two, is today's
 * code on the filed day's work: its static stage and its tests' job side by side as offlineStages
 * starts them, without the checks — never a verification Forge runs, only what the path itself
 * gained for the same work.
 *
 * That revision's tree is taken from this repository's git history (`git archive`) into
 * node_modules/.cache/forge-then/<rev>, its dependencies installed there once (npm, from the
 * registry), and a small driver written into it that verifies on request; its image is tagged
 * forge-sandbox:then-<rev> so it never replaces today's. Each side verifies its own tree's
 * count_words (scenarios/forge-word-count.json: the same tool then and now) with a new comment per
 * sample, as every forge attempt brings a new text.
 *
 * Every side first verifies `--warm-up` times untimed (the same count for each): a sandbox worker
 * lives for hours, and the type-checker's code is compiled by V8 over its first few dozen checks
 * (a check's CPU falls from ~90 ms over the first ten to ~45 ms after forty), so a sample right
 * after start measures the JIT rather than the path.
 *
 * And each timed sample starts `--settle-ms` after the one before (all sides alike): today's pool
 * removes and replaces a used container 1.5 s after its job (pool.ts SETTLE_MS), which is not the
 * next sample's own work, whichever side it is.
 *
 *   node --import tsx bench/verify-then.ts [--samples N] [--warm-up N] [--settle-ms N] [--rev <commit>]
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { dockerClient } from '../infra/docker.ts';
import { ensureSandboxImage } from '../infra/sandbox-image.ts';
import { config } from '../services/config.ts';
import { createSandbox } from '../services/sandbox/index.ts';
import { CHECKS_CPUS } from '../services/sandbox/stages/checks.ts';
import { verifyTool } from '../services/sandbox/stages/index.ts';
import { mockStage } from '../services/sandbox/stages/mock.ts';
import { analyzeStaticOffThread, stopStaticThread, warmStaticChecker } from '../services/sandbox/stages/static-thread.ts';
import { machine, report, summary } from './lib.ts';

const argv = process.argv.slice(2);
const arg = (name: string, fallback: string) => (argv.includes(name) ? (argv[argv.indexOf(name) + 1] ?? fallback) : fallback);
const samples = Number(arg('--samples', '7'));
const warmUps = Math.max(1, Number(arg('--warm-up', '20')));
const settleMs = Number(arg('--settle-ms', '2500'));
/** the last commit before issue 14's work began: what "today's path" meant when it was filed */
const rev = arg('--rev', 'aa96e59');
const root = path.join(path.dirname(new URL(import.meta.url).pathname), '..');

/** The driver, written into the old tree: its module paths and API are that revision's. */
const DRIVER = `
import fs from 'node:fs';
import readline from 'node:readline';
import { config } from './infra/config.ts';
import { dockerClient } from './infra/docker.ts';
import { ensureSandboxImage } from './infra/sandbox-image.ts';
import { createSandbox } from './activities/sandbox/index.ts';
import { verifyTool } from './activities/sandbox/stages/index.ts';

const cfg = config();
const docker = dockerClient(cfg);
const tag = process.env.THEN_IMAGE;
await ensureSandboxImage(docker, { tag });
const sandbox = createSandbox({ docker, image: tag, poolSize: cfg.FORGE_POOL_SIZE });
const scenario = JSON.parse(fs.readFileSync('scenarios/forge-word-count.json', 'utf8'));
const answer = (purpose) => scenario.rules.find((r) => r.match?.purpose === purpose).responses[0].tool_use.input;
const source = answer('forge.implementation').source;
const tests = answer('forge.tests').tests;
await sandbox.ready();
process.stdout.write(JSON.stringify({ ready: true }) + '\\n');
const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  if (line === 'quit') break;
  const files = { 'tool.ts': source + '\\n// ' + line + '\\n', 'tool.test.ts': tests + '\\n// ' + line + '\\n' };
  const started = performance.now();
  const r = await verifyTool({ files, live: false }, sandbox);
  const ms = performance.now() - started;
  process.stdout.write(JSON.stringify({ ms, passed: r.stages.every((s) => s.status !== 'failed'), stages: r.stages.map((s) => [s.stage, s.status, s.durationMs]) }) + '\\n');
  await sandbox.ready();
}
await sandbox.close();
process.exit(0);
`;

/** The revision's tree with its dependencies, once. */
function filedTree(): string {
  const dir = path.join(root, 'node_modules', '.cache', 'forge-then', rev);
  if (!fs.existsSync(path.join(dir, 'package.json'))) {
    try {
      execFileSync('git', ['-C', root, 'cat-file', '-e', `${rev}^{commit}`]);
    } catch {
      throw new Error(`commit ${rev} is not in this clone's history: fetch it (git fetch --unshallow) or pass --rev <commit>`);
    }
    fs.mkdirSync(dir, { recursive: true });
    execFileSync('sh', ['-c', `git -C "${root}" archive ${rev} | tar -x -C "${dir}"`]);
  }
  if (!fs.existsSync(path.join(dir, 'node_modules', 'tsx'))) {
    process.stderr.write(`[bench:verify-then] installing ${rev}'s dependencies (once)\n`);
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  fs.writeFileSync(path.join(dir, 'bench-then-driver.ts'), DRIVER);
  return dir;
}

interface Filed {
  verify(label: string): Promise<{ ms: number; passed: boolean; stages: [string, string, number][] }>;
  stop(): Promise<void>;
}

async function startFiled(dir: string): Promise<Filed> {
  const home = fs.mkdtempSync(path.join(root, 'node_modules', '.cache', 'forge-then', 'home-'));
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench-then-driver.ts'], {
    cwd: dir,
    env: { ...process.env, FORGE_HOME: home, THEN_IMAGE: `forge-sandbox:then-${rev}`, FORGE_LOG_LEVEL: 'warn' },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error(`the ${rev} driver ended early (exit ${child.exitCode})`);
    return JSON.parse(value as string);
  };
  await next(); // ready: image built, pool warm
  return {
    async verify(label) {
      child.stdin!.write(`${label}\n`);
      return next();
    },
    async stop() {
      child.stdin!.end('quit\n');
      await new Promise((resolve) => child.once('exit', resolve));
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}

function wordCount(): { source: string; tests: string } {
  const scenario = JSON.parse(fs.readFileSync(path.join(root, 'scenarios', 'forge-word-count.json'), 'utf8')) as {
    rules: Array<{ match?: { purpose?: string }; responses: Array<{ tool_use?: { input: Record<string, string> } }> }>;
  };
  const answer = (purpose: string) => scenario.rules.find((r) => r.match?.purpose === purpose)!.responses[0]!.tool_use!.input;
  return { source: answer('forge.implementation').source!, tests: answer('forge.tests').tests! };
}

const dir = filedTree();
const cfg = config();
const docker = dockerClient(cfg);
await ensureSandboxImage(docker, { tag: cfg.FORGE_SANDBOX_IMAGE });
// As the sandbox worker runs it: the warm pool at FORGE_POOL_SIZE's default, the type-checker warm.
const sandbox = createSandbox({ docker, image: cfg.FORGE_SANDBOX_IMAGE, poolSize: cfg.FORGE_POOL_SIZE });
const filed = await startFiled(dir);
const tool = wordCount();
const runs = { filed: [] as number[], now: [] as number[], same: [] as number[] };
const stages = { filed: [] as string[], now: [] as string[] };
try {
  await warmStaticChecker();
  await sandbox.ready();
  const now = async (label: string) => {
    const files = { 'tool.ts': `${tool.source}\n// ${label}\n`, 'tool.test.ts': `${tool.tests}\n// ${label}\n` };
    const started = performance.now();
    const r = await verifyTool({ files, live: false }, sandbox);
    const ms = performance.now() - started;
    if (r.stages.some((s) => s.status === 'failed')) throw new Error(`today's verification failed: ${JSON.stringify(r.stages)}`);
    await sandbox.ready();
    return { ms, stages: r.stages.filter((s) => s.status !== 'skipped').map((s) => s.stage) };
  };
  /** Today's static stage and tests' job side by side, as offlineStages starts them; no checks. */
  const sameWork = async (label: string) => {
    const files = { source: `${tool.source}\n// ${label}\n`, tests: `${tool.tests}\n// ${label}\n` };
    const started = performance.now();
    const [analysis, mock] = await Promise.all([
      analyzeStaticOffThread(files),
      mockStage({ ...files, limits: { cpus: CHECKS_CPUS } }, sandbox),
    ]);
    const ms = performance.now() - started;
    if (analysis.result.status === 'failed' || mock.status === 'failed')
      throw new Error(`today's static + mock failed: ${JSON.stringify([analysis.result, mock])}`);
    await sandbox.ready();
    return ms;
  };
  // caches, bundler, the old tree's first type-check, then both trees' code compiled by the JIT
  for (let i = 0; i < warmUps; i++) {
    await filed.verify(`warm-up ${i}`);
    await now(`warm-up ${i}`);
    await sameWork(`warm-up ${i}`);
  }
  const orders = [
    ['filed', 'now', 'same'],
    ['now', 'same', 'filed'],
    ['same', 'filed', 'now'],
  ] as const;
  for (let i = 0; i < samples; i++) {
    // rotate which goes first, so none always runs right after another's pool refill
    for (const side of orders[i % orders.length]!) {
      await new Promise((resolve) => setTimeout(resolve, settleMs));
      if (side === 'same') runs.same.push(await sameWork(`sample ${i}`));
      else if (side === 'filed') {
        const r = await filed.verify(`sample ${i}`);
        if (!r.passed) throw new Error(`${rev}'s verification failed: ${JSON.stringify(r.stages)}`);
        runs.filed.push(r.ms);
        stages.filed = r.stages.filter((s) => s[1] !== 'skipped').map((s) => s[0]);
      } else {
        const r = await now(`sample ${i}`);
        runs.now.push(r.ms);
        stages.now = r.stages;
      }
    }
  }
} finally {
  await filed.stop();
  await stopStaticThread();
  await sandbox.close();
}

const before = summary(runs.filed);
const after = summary(runs.now);
const same = summary(runs.same);
const speedup = Math.round((before.p50 / after.p50) * 10) / 10;
const sameSpeedup = Math.round((before.p50 / same.p50) * 10) / 10;
report(
  'verify-then',
  'word-count-then',
  `verification of count_words: the code of ${rev} (the day issue 14 was filed) beside today's, ${samples} runs each after ${warmUps} untimed, alternating; now ${speedup}× faster at p50 (${sameSpeedup}× on the filed day's stages alone)`,
  ['path', 'stages', 'p50 ms', 'p95 ms', 'then / this (p50)'],
  [
    [`then (${rev}): its verifyTool, runner and image`, stages.filed.join(' + '), before.p50, before.p95, '1x'],
    ['now: tests and checks at once, static in its warm thread', stages.now.join(' + '), after.p50, after.p95, `${speedup}x`],
    ["now, the filed day's stages only (not a verification Forge runs)", 'static + mock', same.p50, same.p95, `${sameSpeedup}x`],
  ],
  { machine: machine(), rev, samples, warmUps, settleMs, speedup, sameSpeedup, filed: before, now: after, sameStages: same, stages },
);
process.exit(0);
