import { parseArgs } from 'node:util';
import type { ForgeConfig } from '../../app/context.ts';
import { InvalidInputError } from '../../app/errors.ts';
import { type CandidateRow, listCandidates, showCandidate } from '../../app/evolve.ts';
import { printJson, say } from '../output.ts';

const USAGE = 'usage: forge evolve ls [--json] | show <id> [--json]';

function replayLines(row: CandidateRow): string[] {
  const r = row.replay;
  if (!r) return [];
  return [
    `replay (${r.stage}): batch ${(r.batchPassRate * 100).toFixed(0)} % passed, held-out ${(r.heldOutPassRate * 100).toFixed(0)} % (${r.heldOutRegressions} regression(s)), ${(r.durationMs / 1000).toFixed(1)} s, ${r.tokens.input + r.tokens.output} tokens ($${(r.costUsd ?? 0).toFixed(4)})`,
    ...r.cases.map(
      (c) =>
        `  ${c.pass ? 'pass' : 'FAIL'} ${c.kind} ${c.case} run ${c.run}: ${c.status}${c.reasons.length ? ` — ${c.reasons.join('; ')}` : ''} (${c.durationMs} ms)`,
    ),
  ];
}

/** forge evolve ls | show <id>: what self-evolution proposed, and why each candidate was kept or refused. */
export async function evolveCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { json: { type: 'boolean', default: false } } });
  const [sub = 'ls', id] = positionals;
  if (sub === 'ls') {
    const rows = await listCandidates(cfg);
    if (values.json) printJson({ ok: true, candidates: rows.map(({ patch: _p, diff: _d, ...rest }) => rest) });
    else if (!rows.length) say('no evolve candidates yet: the nightly curation starts them from failure evidence (forge failures ls)');
    else
      for (const r of rows)
        say(`${r.id}  ${r.status.padEnd(9)} ${r.failure_type.padEnd(9)} ${r.evidence_ids.length} case(s)  ${r.reason ?? ''}`.slice(0, 200));
    return 0;
  }
  if (sub === 'show') {
    if (!id) throw new InvalidInputError('command', USAGE);
    const row = await showCandidate(cfg, id);
    if (values.json) {
      printJson({ ok: true, candidate: row });
      return 0;
    }
    say(`${row.id}: ${row.status} — ${row.reason ?? ''}`);
    say(`batch ${row.batch_key} (${row.failure_type}), evidence ${row.evidence_ids.join(', ')}`);
    for (const e of row.evidence)
      say(`  #${e.id} ${e.failureType}: ${e.trace.task}\n    expected: ${e.expected}\n    happened: ${e.happened}`);
    if (row.rationale) say(`rationale: ${row.rationale}`);
    for (const a of row.attempts)
      say(`  attempt ${a.attempt}: ${a.passed ? 'passed' : 'refused'} at ${a.stage} — ${a.reason.split('\n')[0]}`);
    if (row.image) say(`image: ${row.image} (${row.image_digest ?? '-'})`);
    for (const line of replayLines(row)) say(line);
    if (row.diff) say(row.diff);
    return 0;
  }
  throw new InvalidInputError('command', `unknown evolve command ${JSON.stringify(sub)} (${USAGE})`);
}
