import assert from 'node:assert/strict';
import path from 'node:path';
import { it } from 'node:test';
import { type ChaosSummary, formatTable, runChaos } from '../chaos/chaos.ts';

// Issue 9, item 8: `npm run chaos` with small counts. One round on PGlite: a forge of count_words and
// then a task that calls it, forges create_note and waits for an approval; a forge of slugify and
// then its improve cycle. The worker is SIGKILLed three times, each a random instant into a model call
// of a kind of cycle not hit yet (forge, task, improve), and started again at once; the round's own
// Temporal dev server, PGlite server and dockerd are each restarted once mid-cycle (none of them is the
// suite's). The real-Postgres rounds, the evolve cycle and the ≥ 50 kills are the full run's. About
// 100 s, most of it waiting: a kill mid-activity costs that activity its 20 s heartbeat timeout.

it('three SIGKILLs and a restart of Temporal, PGlite and Docker mid-cycle: every cycle ends, nothing twice, nothing left', async () => {
  const lines: string[] = [];
  const { summary, rounds } = await runChaos({
    kills: 3,
    killsPerRound: 3,
    backends: ['pglite'],
    restart: ['temporal', 'pglite', 'docker'],
    evolve: false,
    // Each kill waits for a model call of a kind not hit yet: one kill mid-forge, mid-task, mid-improve.
    aimEvery: 1,
    aimWaitMs: 120_000,
    lifeMs: [500, 3_000],
    restartGapMs: [3_000, 10_000],
    roundDeadlineMs: 5 * 60_000,
    // The suite's workers have bundled the same workflow code already.
    ...(process.env.FORGE_HOME ? { cacheDir: path.join(process.env.FORGE_HOME, 'cache') } : {}),
    seed: 9,
    say: (line) => lines.push(line),
  });
  const table = formatTable(rounds, summary);
  const context = `${table}\n${lines.join('\n')}`;
  assert.equal(rounds.length, 1, context);
  assert.equal(summary.kills, 3, context);
  assert.deepEqual(summary.restarts, { temporal: 1, pglite: 1, postgres: 0, docker: 1 } satisfies ChaosSummary['restarts'], context);
  assert.deepEqual(summary.cycles, { total: 4, completed: 4, failedWithReason: 0, stuck: 0 }, context);
  assert.deepEqual(summary.checks.failed, [], context);
  assert.equal(summary.checks.passed, 10, context);
  assert.equal(summary.approvals, 1, 'the note was approved once');
  assert.ok(summary.ok, context);
  assert.deepEqual(summary.killsAimed, { forge: 1, task: 1, improve: 1, evolve: 0 }, context);
  // Every kill landed while a cycle had work in flight, and the table says so.
  for (const kill of rounds[0]!.kills) assert.ok(kill.points.length > 0 && kill.kinds.length > 0, context);
  assert.match(table, /^round +postgres +kills/);
  assert.match(table, /\n1 +pglite +3 /);
  assert.match(table, /\ntotal +3 /);
});
