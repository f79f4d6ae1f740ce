/**
 * `npm run chaos [-- --kills n] [--kills-per-round n] [--seed n] [--no-evolve] [--quiet]`: the full
 * chaos run. Defaults: at least 50 SIGKILLs, rounds on PGlite and on a real Postgres server in turn,
 * the Temporal dev server, the Docker engine and each Postgres restarted mid-cycle, an evolve cycle
 * in the first round of each. Progress goes to stderr; the figures to stdout as a table, then one
 * JSON line. Exit 1 when a check failed. Needs root (it runs a dockerd and a Postgres cluster of its own).
 */
import { parseArgs } from 'node:util';
import { setLogLevel } from '../../services/log.ts';
import { formatTable, runChaos } from './chaos.ts';

const { values } = parseArgs({
  options: {
    kills: { type: 'string', default: '50' },
    'kills-per-round': { type: 'string', default: '12' },
    seed: { type: 'string' },
    'no-evolve': { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
  },
});
const int = (name: string, v: string | undefined): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    process.stderr.write(`--${name} must be a whole number, not ${JSON.stringify(v)}\n`);
    process.exit(2);
  }
  return n;
};

setLogLevel('error');
const { summary, rounds } = await runChaos({
  kills: int('kills', values.kills),
  killsPerRound: int('kills-per-round', values['kills-per-round']),
  backends: ['pglite', 'postgres'],
  restart: ['temporal', 'docker', 'pglite', 'postgres'],
  evolve: !values['no-evolve'],
  lifeMs: [1_000, 20_000],
  aimEvery: 2,
  aimWaitMs: 30_000,
  restartGapMs: [8_000, 30_000],
  roundDeadlineMs: 15 * 60_000,
  seed: values.seed === undefined ? Date.now() % 1_000_000 : int('seed', values.seed),
  say: values.quiet ? () => {} : (line) => process.stderr.write(`${line}\n`),
});
process.stdout.write(`${formatTable(rounds, summary)}\n${JSON.stringify(summary)}\n`);
process.exit(summary.ok ? 0 : 1);
