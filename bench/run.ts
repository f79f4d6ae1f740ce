/**
 * `npm run bench`: every bench under bench/, one after the other (they would skew each other's
 * figures), each printing its tables and one JSON line per figure; then one summary line per
 * figure and, last, the JSON lines of the run together, for docs/benchmarks.md. Never part of
 * `npm test`: a bench compares with a baseline measured in the same run, not with a threshold.
 *
 *   npm run bench [-- --only discovery,cycles,verify,verify-then,sandbox,cli] [-- --quick]
 *
 * --quick: fewer samples (a smoke run of the benches themselves, not figures to record).
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { machine, table } from './lib.ts';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const only = argv.includes('--only') ? (argv[argv.indexOf('--only') + 1] ?? '').split(',') : undefined;
const here = path.dirname(new URL(import.meta.url).pathname);

const benches: { name: string; file: string; args: string[] }[] = [
  {
    name: 'discovery',
    file: 'discovery.ts',
    args: quick ? ['--sizes', '100,1000', '--requests', '30'] : [],
  },
  {
    name: 'cycles',
    file: 'cycles.ts',
    args: quick ? ['--forges', '1', '--tasks', '1', '--concurrent', '10'] : ['--forges', '5', '--tasks', '10', '--concurrent', '200'],
  },
  { name: 'verify', file: 'verify.ts', args: quick ? ['--samples', '2'] : ['--samples', '5'] },
  { name: 'verify-then', file: 'verify-then.ts', args: quick ? ['--samples', '2'] : ['--samples', '9'] },
  { name: 'sandbox', file: 'sandbox.ts', args: quick ? ['--json', '--samples', '5', '--jobs', '6'] : ['--json'] },
  { name: 'cli', file: 'cli.ts', args: quick ? ['--samples', '2'] : ['--samples', '7'] },
];

function run(file: string, args: string[]): Promise<{ code: number; figures: Record<string, unknown>[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, file), ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const figures: Record<string, unknown>[] = [];
    let buffered = '';
    child.stdout.on('data', (chunk: Buffer) => {
      process.stdout.write(chunk);
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) if (line.startsWith('{"bench":')) figures.push(JSON.parse(line) as Record<string, unknown>);
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code: code ?? 1, figures }));
  });
}

const all: Record<string, unknown>[] = [];
const failed: string[] = [];
process.stdout.write(`forge benches on ${JSON.stringify(machine())}\n`);
for (const b of benches) {
  if (only && !only.includes(b.name)) continue;
  process.stdout.write(`\n=== bench ${b.name} ===\n`);
  const started = performance.now();
  const { code, figures } = await run(b.file, b.args);
  if (code !== 0) failed.push(b.name);
  all.push(...figures);
  // bench/sandbox.ts prints its JSON line alone with --json: its table is drawn here.
  for (const f of figures.filter((x) => x.bench === 'sandbox')) {
    const o = f.overheadMs as Record<'cold' | 'warm', { p50: number; p95: number }>;
    const tp = f.throughput as { jobs: number; jobsPerSec: number; pool: number };
    process.stdout.write(
      `\nsandbox overhead per job (host wall clock − the runner's own time), cold vs the warm pool, same run\n${table(
        ['', 'p50 ms', 'p95 ms'],
        [
          ['cold (create + start + run)', o.cold.p50, o.cold.p95],
          ['warm pool', o.warm.p50, o.warm.p95],
          [`throughput: ${tp.jobs} jobs, pool ${tp.pool}`, `${tp.jobsPerSec} jobs/s`, ''],
        ],
      )}\n`,
    );
  }
  process.stdout.write(
    `=== ${b.name}: ${figures.length} figure(s), ${Math.round((performance.now() - started) / 1000)} s${code ? `, exit ${code}` : ''}\n`,
  );
}

const headline = (f: Record<string, unknown>): string => {
  const get = (o: unknown, ...keys: string[]): unknown =>
    keys.reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], o);
  switch (`${f.bench}/${f.figure ?? ''}`) {
    case 'cycles/forge-cycle':
      return `system p50 ${get(f, 'systemMs', 'p50')} ms (sandboxVerify ${get(f, 'verifyMs', 'p50')} ms); ${get(f, 'tokens', 'input')} in + ${get(f, 'tokens', 'cacheRead')} cached + ${get(f, 'tokens', 'output')} out tokens, $${get(f, 'tokens', 'costUsd')}`;
    case 'cycles/task-one-call':
      return `beyond model+sandbox p50 ${get(f, 'beyondMs', 'p50')} ms (no-call task ${get(f, 'baselineNoCallMs', 'p50')} ms)`;
    case 'cycles/concurrent-tasks':
      return `${f.tasks} tasks: ${f.tasksPerSec}/s, p95 ${get(f, 'taskMs', 'p95')} ms, ${f.failures} failed (alone ${f.aloneMs} ms)`;
    case 'discovery/latency':
      return ((f.backends as { backend: string; sizes: { tools: number; ms: { p95: number } }[] }[]) ?? [])
        .map((b) => `${b.backend} ${b.sizes.map((s) => `${s.tools}:${s.ms.p95}`).join(' ')} ms p95`)
        .join('; ');
    case 'discovery/relevance':
      return ((f.backends as { backend: string; baseline: { precisionAt1: number }; largest: { precisionAt1: number } }[]) ?? [])
        .map((b) => `${b.backend} p@1 ${b.baseline.precisionAt1} → ${b.largest.precisionAt1}`)
        .join('; ');
    case 'verify/word-count':
    case 'verify/exchange-rate':
      return ((f.rows as { label: string; total: { p50: number }; blocked: { p50: number } }[]) ?? [])
        .map((r) => `${r.label.split(':')[0]} ${r.total.p50} ms (loop blocked ${r.blocked.p50} ms)`)
        .join('; ');
    case 'verify-then/word-count-then':
      return `${f.rev} ${get(f, 'filed', 'p50')} ms, now ${get(f, 'now', 'p50')} ms p50 (${f.speedup}×)`;
    case 'verify/cli':
      return ((f.rows as { label: string; ms: { p50: number } }[]) ?? []).map((r) => `${r.label.split(':')[0]} ${r.ms.p50} ms`).join('; ');
    case 'cli/start':
      return ((f.rows as { label: string; cpuMs: { p50: number } }[]) ?? [])
        .filter((r) => !r.label.includes('cache off'))
        .map((r) => `${r.label.replace(/^baseline: /, '').split(' (')[0]} ${r.cpuMs.p50} CPU-ms`)
        .join('; ');
    case 'sandbox/':
      return `warm p50 ${get(f, 'overheadMs', 'warm', 'p50')} ms vs cold ${get(f, 'overheadMs', 'cold', 'p50')} ms`;
    default:
      return '';
  }
};

process.stdout.write(
  `\nsummary\n${table(
    ['bench', 'figure', 'headline'],
    all.map((f) => [String(f.bench), String(f.figure ?? '-'), headline(f)]),
  )}\n`,
);
if (failed.length) process.stdout.write(`failed: ${failed.join(', ')}\n`);
process.exitCode = failed.length ? 1 : 0;
