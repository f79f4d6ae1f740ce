/**
 * The CLI's start (issue 14): what a `forge` command costs before it does its work, against Node's
 * own start and Node with tsx registered (what bin/forge.mjs starts from), measured in the same
 * run. Each command is a child process as a person runs it; its wall clock, and its CPU time
 * (user + system, every thread, read by a tiny --require hook as the process exits) because on
 * a loaded machine the wall clock mostly says how busy the machine was.
 *
 * Rows: `forge --version` (answered before anything loads), `forge help` (the CLI alone), `forge
 * tools ls --json` against an empty catalog (Postgres only: an in-memory PGlite here), `forge
 * schedule ls --json` (talks to Temporal: a dev server of its own here), and `forge tools ls --json`
 * with Forge down (refused at once, exit 3), all from the CLI's bundle (bin/cli-bundle.mjs); then
 * three of them through tsx (FORGE_CLI_BUNDLE=0), as the CLI ran before its bundle; the CLI as it
 * was before issue 14, when cli/main.ts imported every command's module at start (emulated: those
 * modules imported, then `help`), and `forge help` / `forge tools ls` through tsx with its cache
 * off, which is what a fresh clone's first run paid to transpile the modules it loads.
 *
 *   node --import tsx bench/cli.ts [--samples N]
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, portOpen, waitFor } from '../infra/processes.ts';
import { devServerArgs } from '../infra/temporal.ts';
import { ensureTemporalCli } from '../infra/temporal-cli.ts';
import { config } from '../services/config.ts';
import { machine, pgliteDb, report, type Summary, summary } from './lib.ts';

const argv = process.argv.slice(2);
const samples = argv.includes('--samples') ? Number(argv[argv.indexOf('--samples') + 1]) : 7;
const root = path.join(path.dirname(new URL(import.meta.url).pathname), '..');
const forgeBin = path.join(root, 'bin', 'forge.mjs');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-bench-cli-'));
const cpuHook = path.join(tmp, 'cpu.cjs');
fs.writeFileSync(
  cpuHook,
  `process.on('exit', () => { const u = process.cpuUsage(); require('fs').writeFileSync(process.env.FORGE_BENCH_CPU_FILE, String((u.user + u.system) / 1000)); });\n`,
);

/** What cli/main.ts imported at start before issue 14: every command module but sandbox exec/verify, and the worker's launcher. */
const BEFORE_MODULES = [
  'app/context.ts',
  'app/worker.ts',
  'cli/commands/audit.ts',
  'cli/commands/tools.ts',
  'cli/commands/approvals.ts',
  'cli/commands/control.ts',
  'cli/commands/demo-evolve.ts',
  'cli/commands/evidence.ts',
  'cli/commands/evolve.ts',
  'cli/commands/forge.ts',
  'cli/commands/improve.ts',
  'cli/commands/run.ts',
  'cli/commands/schedule.ts',
  'cli/commands/sessions.ts',
  'cli/commands/stack.ts',
  'cli/output.ts',
].map((f) => path.join(root, f));
const beforeScript = `await Promise.all(${JSON.stringify(BEFORE_MODULES)}.map((f) => import(f)));
const { main } = await import(${JSON.stringify(path.join(root, 'cli', 'main.ts'))});
process.exitCode = await main(['help']);`;

interface Row {
  label: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  code: number;
}

let cpuRun = 0;
/** One child process: its wall clock and CPU time, in ms; throws when it exits with another code than expected. */
function measure(row: Row): Promise<{ wallMs: number; cpuMs: number }> {
  const cpuFile = path.join(tmp, `cpu-${++cpuRun}`);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--require', cpuHook, ...row.args], {
      cwd: root,
      env: { ...(row.env ?? process.env), FORGE_BENCH_CPU_FILE: cpuFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const wallMs = performance.now() - started;
      if (code !== row.code) return reject(new Error(`${row.label}: exit ${code}, expected ${row.code}\n${out.slice(-1500)}`));
      resolve({ wallMs, cpuMs: Number(fs.readFileSync(cpuFile, 'utf8')) });
    });
  });
}

async function main(): Promise<void> {
  const base = config();
  const db = await pgliteDb();
  const temporalDir = path.join(tmp, 'temporal');
  fs.mkdirSync(temporalDir);
  const port = await freePort();
  const server = spawn(
    await ensureTemporalCli(base),
    devServerArgs({ dbFile: path.join(temporalDir, 'temporal.db'), port, uiPort: await freePort(), namespace: 'default', headless: true }),
    { stdio: ['ignore', 'ignore', fs.openSync(path.join(temporalDir, 'temporal.log'), 'a')] },
  );
  try {
    await waitFor('Temporal dev server', () => portOpen(port), 60_000, path.join(temporalDir, 'temporal.log'));
    const clean = Object.fromEntries(
      Object.entries(process.env).filter(([n]) => !n.startsWith('TEMPORAL_') && n !== 'DATABASE_URL' && !n.startsWith('FORGE_')),
    );
    const up: NodeJS.ProcessEnv = {
      ...clean,
      FORGE_HOME: path.join(tmp, 'home-up'),
      DATABASE_URL: db.url,
      TEMPORAL_ADDRESS: `127.0.0.1:${port}`,
      FORGE_LOG_LEVEL: 'warn',
    };
    // Forge down: nothing where the CLI looks for Forge's own Postgres and Temporal.
    const down: NodeJS.ProcessEnv = {
      ...clean,
      FORGE_HOME: path.join(tmp, 'home-down'),
      DATABASE_URL: `postgres://postgres:postgres@127.0.0.1:${await freePort()}/postgres`,
      TEMPORAL_PORT: String(await freePort()),
      FORGE_LOG_LEVEL: 'warn',
    };
    // The CLI through tsx (its sources), as before it ran from its bundle (bin/cli-bundle.mjs).
    const throughTsx = { ...up, FORGE_CLI_BUNDLE: '0' };
    const noCache = { ...throughTsx, TSX_DISABLE_CACHE: '1' };
    const rows: Row[] = [
      { label: 'baseline: node -e 0 (Node alone)', args: ['-e', '0'], code: 0 },
      { label: 'baseline: node --import tsx -e 0 (Node + tsx)', args: ['--import', 'tsx', '-e', '0'], code: 0 },
      { label: 'forge --version', args: [forgeBin, '--version'], env: up, code: 0 },
      { label: 'forge help', args: [forgeBin, 'help'], env: up, code: 0 },
      { label: 'forge tools ls --json (Postgres)', args: [forgeBin, 'tools', 'ls', '--json'], env: up, code: 0 },
      { label: 'forge schedule ls --json (Temporal)', args: [forgeBin, 'schedule', 'ls', '--json'], env: up, code: 0 },
      { label: 'forge tools ls --json, Forge down (exit 3)', args: [forgeBin, 'tools', 'ls', '--json'], env: down, code: 3 },
      { label: 'forge help, through tsx', args: [forgeBin, 'help'], env: throughTsx, code: 0 },
      { label: 'forge tools ls --json, through tsx', args: [forgeBin, 'tools', 'ls', '--json'], env: throughTsx, code: 0 },
      { label: 'forge schedule ls --json, through tsx', args: [forgeBin, 'schedule', 'ls', '--json'], env: throughTsx, code: 0 },
      {
        label: 'before issue 14: every command module at start, then help',
        args: ['--import', 'tsx', '--input-type=module', '-e', beforeScript],
        env: up,
        code: 0,
      },
      { label: 'forge help, through tsx, its cache off (a fresh clone)', args: [forgeBin, 'help'], env: noCache, code: 0 },
      { label: 'forge tools ls --json, through tsx, its cache off', args: [forgeBin, 'tools', 'ls', '--json'], env: noCache, code: 0 },
    ];
    // One run of each first: tsx's cache filled, Temporal's namespace ready, files in the page cache.
    for (const row of rows) await measure(row);
    const times = rows.map(() => ({ wall: [] as number[], cpu: [] as number[] }));
    for (let i = 0; i < samples; i++)
      for (const [n, row] of rows.entries()) {
        const m = await measure(row);
        times[n]!.wall.push(m.wallMs);
        times[n]!.cpu.push(m.cpuMs);
      }
    const results = rows.map((row, n) => ({ label: row.label, wallMs: summary(times[n]!.wall), cpuMs: summary(times[n]!.cpu) }));
    const cpu = (label: string): Summary => results.find((r) => r.label.startsWith(label))!.cpuMs;
    // The bundled CLI runs on plain Node: its cost is over Node's own start.
    const node = cpu('baseline: node -e 0');
    report(
      'cli',
      'start',
      `the CLI's start: each command a child process, ${samples} runs each, interleaved; CPU = user + system of the whole process`,
      ['', 'wall p50 ms', 'wall p95 ms', 'CPU p50 ms', 'CPU p95 ms', 'CPU over Node p50'],
      results.map((r) => [r.label, r.wallMs.p50, r.wallMs.p95, r.cpuMs.p50, r.cpuMs.p95, Math.round(r.cpuMs.p50 - node.p50)]),
      { machine: machine(), samples, rows: results },
    );
  } finally {
    if (server.exitCode === null) {
      const exited = new Promise((r) => server.once('exit', r));
      server.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    }
    await db.close();
    fs.rmSync(tmp, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  }
}

await main();
