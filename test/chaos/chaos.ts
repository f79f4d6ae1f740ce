/**
 * The chaos run (issue 9, item 8): rounds of Forge's cycles while the worker is SIGKILLed at random
 * points and Postgres (PGlite and a real server), the Docker engine and the Temporal dev server are
 * restarted mid-cycle, each round checked afterwards (test/chaos/round.ts). Every component is the
 * run's own instance, so the machine's shared services are never touched. `npm run chaos` runs it
 * in full (test/chaos/main.ts); test/integration/chaos.test.ts runs it with small counts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../domain/config.ts';
import { seededRandom } from '../../domain/input-gen.ts';
import { dockerClient } from '../../infra/docker.ts';
import { ensureSandboxImage } from '../../infra/sandbox-image.ts';
import { ensureTemporalCli } from '../../infra/temporal-cli.ts';
import {
  type Component,
  type ComponentName,
  type Database,
  type PostgresCluster,
  startDockerd,
  startPgliteServer,
  startPostgresCluster,
  startTemporal,
} from './components.ts';
import { type CycleKind, type RoundReport, runRound } from './round.ts';

export interface ChaosOptions {
  /** at least this many SIGKILLs of the worker over the run */
  kills: number;
  /** at most this many in one round (a round's cycles must be able to finish) */
  killsPerRound: number;
  /** Postgres flavours, one round each at least, in turn */
  backends: ('pglite' | 'postgres')[];
  /** components restarted mid-cycle, each at least once */
  restart: ComponentName[];
  /** add an evolve cycle to the first round of each backend */
  evolve: boolean;
  /** every aimEvery-th kill waits for a model call of the cycle kind hit least so far (test/chaos/round.ts) */
  aimEvery: number;
  aimWaitMs: number;
  /** how long a worker lives between kills once it polls, ms */
  lifeMs: [number, number];
  /** the wait before each restart in a round, ms */
  restartGapMs: [number, number];
  roundDeadlineMs: number;
  /** the workers' workflow-bundle cache (keyed by source hash), e.g. one the suite's workers already filled; default: the run's own */
  cacheDir?: string;
  seed: number;
  say: (line: string) => void;
}

export interface ChaosSummary {
  ok: boolean;
  seed: number;
  rounds: number;
  kills: number;
  /** kills while a cycle of that kind had work in flight (one kill can count for several kinds) */
  killsByCycle: Record<CycleKind, number>;
  /** kills that waited for a model call of that kind of cycle and struck mid-call */
  killsAimed: Record<CycleKind, number>;
  killPoints: number;
  restarts: Record<ComponentName, number>;
  workerExits: number;
  approvals: number;
  cycles: { total: number; completed: number; failedWithReason: number; stuck: number };
  checks: { passed: number; failed: string[] };
  durationMs: number;
}

/**
 * A cycle that ran to its end. `rejected`: an evolve candidate that passed its replay and was refused
 * consent by the round's person (test/chaos/round.ts), as every chaos candidate is.
 */
const COMPLETED = new Set(['registered', 'completed', 'promoted', 'verified', 'rejected']);

export async function runChaos(opts: ChaosOptions): Promise<{ summary: ChaosSummary; rounds: RoundReport[] }> {
  const started = Date.now();
  // Seeded, so a run's kill times can be replayed with --seed.
  const random = seededRandom(opts.seed);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-chaos-'));
  const cfg = loadConfig(process.env, path.join(dir, 'home'));
  const stops: (() => Promise<void>)[] = [];
  const rounds: RoundReport[] = [];
  try {
    // Temporal, and dockerd with the sandbox image, start side by side; whichever started is stopped in the end.
    fs.mkdirSync(path.join(dir, 'docker'));
    const t0 = Date.now();
    const [temporalStart, dockerStart] = await Promise.allSettled([
      ensureTemporalCli(cfg).then((cli) => startTemporal(cli, dir)),
      startDockerd(path.join(dir, 'docker')).then(async (engine) => {
        stops.push(() => engine.stop());
        await ensureSandboxImage(dockerClient({ DOCKER_HOST: engine.host }), { tag: cfg.FORGE_SANDBOX_IMAGE });
        return engine;
      }),
    ]);
    if (temporalStart.status === 'fulfilled') stops.push(() => temporalStart.value.stop());
    if (temporalStart.status === 'rejected') throw temporalStart.reason;
    if (dockerStart.status === 'rejected') throw dockerStart.reason;
    const temporal = temporalStart.value;
    const docker = dockerStart.value;
    opts.say(
      `chaos: Temporal ${temporal.address}, dockerd ${docker.host} with the sandbox image (${Date.now() - t0} ms), seed ${opts.seed}`,
    );
    let cluster: PostgresCluster | undefined;
    const restarted = new Set<ComponentName>();
    const killed = () => rounds.reduce((n, r) => n + r.kills.length, 0);
    const seen = new Set<string>();
    for (let round = 1; round <= 30; round++) {
      const backend = opts.backends[(round - 1) % opts.backends.length]!;
      const everyBackend = opts.backends.every((b) => seen.has(b));
      const everyRestart = opts.restart.every((c) => restarted.has(c));
      if (killed() >= opts.kills && everyBackend && everyRestart) break;
      seen.add(backend);
      const roundDir = path.join(dir, `round-${round}`);
      fs.mkdirSync(roundDir);
      let db: Database | PostgresCluster;
      let url: string;
      let stopDb = async () => {};
      if (backend === 'pglite') {
        const pglite = await startPgliteServer(roundDir);
        db = pglite;
        url = pglite.url;
        stopDb = () => pglite.stop();
      } else {
        if (!cluster) {
          cluster = await startPostgresCluster();
          const c = cluster;
          stops.push(() => c.stop());
        }
        db = cluster;
        url = await cluster.database(`forge_chaos_r${round}`);
      }
      const candidates: Component[] = [temporal, docker, db].filter((c) => opts.restart.includes(c.name));
      // Each component at least once; after that, one at random a round.
      const fresh = candidates.filter((c) => !restarted.has(c.name));
      const restarts = fresh.length ? fresh : candidates.length ? [candidates[Math.floor(random() * candidates.length)]!] : [];
      const firstOfBackend = !rounds.some((r) => r.backend === backend);
      opts.say(`round ${round} (${backend}): restarts ${restarts.map((c) => c.name).join(', ') || 'none'}`);
      try {
        const report = await runRound({
          round,
          dir: roundDir,
          cacheDir: opts.cacheDir ?? path.join(dir, 'worker-cache'),
          temporalAddress: temporal.address,
          dockerHost: docker.host,
          databaseUrl: url,
          backend,
          maxKills: Math.max(1, Math.min(opts.killsPerRound, opts.kills - killed())),
          restarts,
          evolve: opts.evolve && firstOfBackend,
          lifeMs: opts.lifeMs,
          aimEvery: opts.aimEvery,
          aimWaitMs: opts.aimWaitMs,
          restartGapMs: opts.restartGapMs,
          deadlineMs: opts.roundDeadlineMs,
          random,
          say: opts.say,
        });
        rounds.push(report);
        for (const r of report.restarts) restarted.add(r.component);
        for (const c of report.checks.filter((c) => !c.ok)) opts.say(`  FAILED ${c.name}: ${c.detail}`);
      } finally {
        await stopDb();
      }
    }
  } finally {
    for (const stop of stops.reverse()) await stop().catch((err: Error) => opts.say(`chaos: cleanup: ${err.message}`));
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  }
  return { summary: summarize(opts, rounds, Date.now() - started), rounds };
}

function summarize(opts: ChaosOptions, rounds: RoundReport[], durationMs: number): ChaosSummary {
  const kills = rounds.flatMap((r) => r.kills);
  const killsByCycle: Record<CycleKind, number> = { forge: 0, task: 0, improve: 0, evolve: 0 };
  for (const k of kills) for (const kind of k.kinds) killsByCycle[kind]++;
  const killsAimed: Record<CycleKind, number> = { forge: 0, task: 0, improve: 0, evolve: 0 };
  for (const k of kills) if (k.aimedAt) killsAimed[k.aimedAt]++;
  const restarts: Record<ComponentName, number> = { temporal: 0, pglite: 0, postgres: 0, docker: 0 };
  for (const r of rounds.flatMap((r) => r.restarts)) restarts[r.component]++;
  const cycles = rounds.flatMap((r) => r.cycles);
  const failedChecks = rounds.flatMap((r) => r.checks.filter((c) => !c.ok).map((c) => `round ${r.round}: ${c.name}: ${c.detail}`));
  const missingRestarts = opts.restart.filter((c) => restarts[c] === 0).map((c) => `${c} was never restarted mid-cycle`);
  const failed = [
    ...failedChecks,
    ...missingRestarts,
    ...(kills.length < opts.kills ? [`only ${kills.length} kills of ${opts.kills}`] : []),
  ];
  return {
    ok: failed.length === 0,
    seed: opts.seed,
    rounds: rounds.length,
    kills: kills.length,
    killsByCycle,
    killsAimed,
    killPoints: new Set(kills.flatMap((k) => k.points)).size,
    restarts,
    workerExits: rounds.reduce((n, r) => n + r.workerExits, 0),
    approvals: rounds.reduce((n, r) => n + r.approvals, 0),
    cycles: {
      total: cycles.length,
      completed: cycles.filter((c) => COMPLETED.has(c.status)).length,
      failedWithReason: cycles.filter((c) => !COMPLETED.has(c.status) && c.status !== 'stuck' && c.reason.trim()).length,
      stuck: cycles.filter((c) => c.status === 'stuck').length,
    },
    checks: { passed: rounds.reduce((n, r) => n + r.checks.filter((c) => c.ok).length, 0), failed },
    durationMs,
  };
}

/** The figures as a table, one row per round and a total. */
export function formatTable(rounds: RoundReport[], summary: ChaosSummary): string {
  const head = ['round', 'postgres', 'kills', 'kill points', 'restarts', 'worker exits', 'cycles ok/failed/stuck', 'checks', 'seconds'];
  const row = (r: RoundReport) => {
    const ok = r.cycles.filter((c) => COMPLETED.has(c.status)).length;
    const stuck = r.cycles.filter((c) => c.status === 'stuck').length;
    return [
      String(r.round),
      r.backend,
      String(r.kills.length),
      String(new Set(r.kills.flatMap((k) => k.points)).size),
      r.restarts.map((x) => x.component).join('+') || '-',
      String(r.workerExits),
      `${ok}/${r.cycles.length - ok - stuck}/${stuck}`,
      `${r.checks.filter((c) => c.ok).length}/${r.checks.length}`,
      (r.durationMs / 1000).toFixed(0),
    ];
  };
  const c = summary.cycles;
  const total = [
    'total',
    '',
    String(summary.kills),
    String(summary.killPoints),
    Object.entries(summary.restarts)
      .filter(([, n]) => n)
      .map(([k, n]) => `${k}×${n}`)
      .join(' '),
    String(summary.workerExits),
    `${c.completed}/${c.failedWithReason}/${c.stuck}`,
    `${summary.checks.passed}/${summary.checks.passed + summary.checks.failed.length}`,
    (summary.durationMs / 1000).toFixed(0),
  ];
  const lines = [head, ...rounds.map(row), total];
  const widths = head.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  const fmt = (l: string[]) => l.map((cell, i) => cell.padEnd(widths[i]!)).join('  ');
  const byCycle = Object.entries(summary.killsByCycle)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  return [
    fmt(head),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rounds.map((r) => fmt(row(r))),
    fmt(total),
    `kills while a cycle of the kind was in flight: ${byCycle}; aimed at its model call: ${Object.entries(summary.killsAimed)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')}`,
    ...summary.checks.failed.map((f) => `FAILED ${f}`),
    summary.ok ? 'chaos: every check held' : 'chaos: checks failed',
  ].join('\n');
}
