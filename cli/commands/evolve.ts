import { parseArgs } from 'node:util';
import { type ForgeConfig, localUser, withSession } from '../../app/context.ts';
import {
  type CandidateRow,
  decideCandidate,
  followDeploy,
  followEvolve,
  harnessHistory,
  listCandidates,
  rollbackHarness,
  showCandidate,
} from '../../app/evolve.ts';
import { missingArgument, printJson, reportCycleFailure, say, usageError } from '../output.ts';
import { progressPrinter } from '../progress.ts';

const USAGE =
  'usage: forge evolve ls [--json] | show <id> [--json] | approve|reject <id> [--by name] [--note text] [--digest sha256:…] [--wait] [--json] | history [--json] | rollback <revision> [--wait] [--json]';

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
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      json: { type: 'boolean', default: false },
      wait: { type: 'boolean', default: false },
      by: { type: 'string' },
      note: { type: 'string' },
      digest: { type: 'string' },
    },
  });
  const [sub = 'ls', id] = positionals;
  if (sub === 'ls') {
    const rows = await listCandidates(cfg);
    if (values.json) printJson({ ok: true, candidates: rows.map(({ patch: _p, diff: _d, ...rest }) => rest) });
    else if (!rows.length) say('no evolve candidates yet: the nightly curation starts them from failure evidence (forge failures ls)');
    else
      for (const r of rows)
        say(
          `${r.id}  ${r.status.padEnd(9)} ${r.failure_type.padEnd(9)} ${r.evidence_ids.length} case(s)  ${r.reason ?? ''}`
            .slice(0, 200)
            .trimEnd(),
        );
    return 0;
  }
  if (sub === 'show') {
    if (!id) throw missingArgument('evolve show', 'the id of a candidate (forge evolve ls lists them)', USAGE);
    const row = await showCandidate(cfg, id);
    if (values.json) {
      printJson({ ok: true, candidate: row });
      return 0;
    }
    say(`${row.id}: ${row.status}${row.reason ? ` — ${row.reason}` : ''}`);
    say(`batch ${row.batch_key} (${row.failure_type}), evidence ${row.evidence_ids.join(', ')}`);
    for (const e of row.evidence)
      say(`  #${e.id} ${e.failureType}: ${e.trace.task}\n    expected: ${e.expected}\n    happened: ${e.happened}`);
    if (row.rationale) say(`rationale: ${row.rationale}`);
    for (const a of row.attempts)
      say(`  attempt ${a.attempt}: ${a.passed ? 'passed' : 'refused'} at ${a.stage} — ${a.reason.split('\n')[0]}`);
    if (row.image) say(`image: ${row.image} (${row.image_digest ?? '-'})`);
    for (const line of replayLines(row)) say(line);
    if (row.diff) say(row.diff);
    if (row.consent) say(`consent: ${JSON.stringify(row.consent)}`);
    if (row.deploy) say(`deploy: ${JSON.stringify(row.deploy)}`);
    if (row.status === 'verified' && !row.consent)
      say(
        `waiting for consent: forge evolve approve ${row.id}  (or reject); the image it deploys is ${row.image_digest}\n  (Temporal UI: workflow ${row.workflow_id} → Send Update "consent" with {"candidateId":"${row.id}","imageDigest":"${row.image_digest}","approve":true,"by":"<you>"})`,
      );
    return 0;
  }
  if (sub === 'approve' || sub === 'reject') {
    if (!id) throw missingArgument(`evolve ${sub}`, 'the id of a verified candidate (forge evolve ls lists them)', USAGE);
    return withSession(cfg, async (session) => {
      const approve = sub === 'approve';
      const by = values.by ?? localUser();
      const done = await decideCandidate(session, { id, approve, by, note: values.note, digest: values.digest });
      if (!values.json)
        say(
          `${approve ? 'approved' : 'rejected'} ${done.candidateId} as ${by}${approve ? ': swap, probe, then promote or roll back' : ''}`,
        );
      if (!values.wait) {
        if (values.json) printJson({ ok: true, ...done });
        return 0;
      }
      const print = progressPrinter();
      const end = await followEvolve(session, done.workflowId, values.json ? undefined : print);
      print.stop();
      if (!end.ok) return reportCycleFailure(values.json, { workflowId: done.workflowId }, end.error, done);
      const ok = end.result.status === (approve ? 'promoted' : 'rejected');
      if (values.json) printJson({ ok, ...done, outcome: end.result });
      else say(`${end.result.status}: ${end.result.reason}`);
      return ok ? 0 : 1;
    });
  }
  if (sub === 'history') {
    const { revisions, rollbacks } = await harnessHistory(cfg);
    if (values.json) {
      printJson({ ok: true, revisions, rollbacks });
      return 0;
    }
    if (!revisions.length) say('no harness history yet: forge up starts it with the harness as installed');
    for (const r of revisions)
      say(`${r.sha.slice(0, 12)}  ${r.at}  ${(r.version?.status ?? '').padEnd(11)} ${r.buildId ?? '-'}  ${r.subject}`);
    if (rollbacks.length) say('rollbacks:');
    for (const b of rollbacks)
      say(
        `  ${b.at.toISOString()}  ${b.from_build} → ${b.to_build ?? 'unversioned'} in ${b.restore_ms ?? '?'} ms: ${b.reason}`.slice(0, 300),
      );
    return 0;
  }
  if (sub === 'rollback') {
    if (!id) throw missingArgument('evolve rollback', 'a revision: a commit prefix or a build id (forge evolve history lists them)', USAGE);
    return withSession(cfg, async (session) => {
      const started = await rollbackHarness(session, id, values.by ?? localUser());
      if (!values.json)
        say(
          `rolling the harness back to ${started.revision.slice(0, 12)} (${started.buildId}) in ${started.workflowId}${started.uiUrl ? `\n  ${started.uiUrl}` : ''}`,
        );
      if (!values.wait) {
        if (values.json) printJson({ ok: true, ...started });
        return 0;
      }
      const print = progressPrinter();
      const end = await followDeploy(session, started, values.json ? undefined : print);
      print.stop();
      if (!end.ok) return reportCycleFailure(values.json, started, end.error, { ...started });
      const ok = end.result.status === 'promoted';
      if (values.json) printJson({ ok, ...started, outcome: end.result });
      else say(`${end.result.status}: ${end.result.reason}`);
      return ok ? 0 : 1;
    });
  }
  throw usageError(`unknown evolve command ${JSON.stringify(sub)}`, USAGE);
}
