import { type ForgeConfig, localUser, withSession } from '../../app/context.ts';
import { workflowUiUrl } from '../../app/cycles.ts';
import { curateNow, deployProgress, evolveProgress } from '../../app/evolve.ts';
import type { TaskResult } from '../../app/tasks.ts';
import { capturingJson, say } from '../output.ts';
import { feedbackCommand } from './evidence.ts';
import { evolveCommand } from './evolve.ts';
import { runCommand } from './run.ts';
import { upCommand } from './stack.ts';

/**
 * `forge demo evolve`: self-evolution end to end on the scripted model (scenarios/evolve-demo.json).
 * A paraphrased word count is answered without count_words (a routing failure) → a person says so
 * (forge feedback) → a curation run of that row alone batches it → the coding agent patches the harness → checks,
 * candidate image, replay → the consent prompt, answered here from the CLI → swap, probe (a window of
 * seconds for the demo) → promoted → the paraphrase again, now on the new version.
 */
const COUNT = 'count the words in "one two three four five"';
const PARAPHRASE = 'tally the words of "red green blue"';
const DEMO_PROBE = { probeWindowSeconds: 20, probeIntervalSeconds: 5, passesNeeded: 2 };

const link = (cfg: ForgeConfig, id: string) => {
  const url = workflowUiUrl(cfg, id);
  return url ? `\n    ${url}` : '';
};

async function runTask(cfg: ForgeConfig, task: string): Promise<{ workflowId: string; result?: TaskResult; code: number }> {
  say(`\n$ forge run '${task}' --wait`);
  const ran = await capturingJson(() => runCommand(cfg, [task, '--wait', '--json']));
  const line = ran.lines[0] as { workflowId: string; result?: TaskResult; answer?: string } | undefined;
  const workflowId = line?.workflowId ?? '';
  say(`  ${workflowId}: ${line?.result?.status ?? 'failed'} — ${line?.result?.answer ?? line?.answer ?? ''}${link(cfg, workflowId)}`);
  const tools = (line?.result?.calls ?? []).map((c) => `${c.tool}${c.version ? ` v${c.version}` : ''} ${c.status}`);
  say(`  calls: ${tools.join(', ') || 'none'}`);
  return { workflowId, result: line?.result, code: ran.value };
}

export async function demoEvolveCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const started = performance.now();
  const up = await upCommand(
    cfg,
    args.filter((a) => a !== '--json'),
  );
  if (up !== 0) return up;

  say('\n1. production: count_words exists (forged now if it does not), and a paraphrase of the same ask');
  const count = await runTask(cfg, COUNT);
  if (count.code !== 0) return count.code;
  const before = await runTask(cfg, PARAPHRASE);
  if (before.result?.calls.some((c) => c.tool === 'count_words' && c.status === 'succeeded')) {
    say('\nthe current harness already routes the paraphrase to count_words (an earlier run of this demo promoted its patch):');
    say('nothing to evolve. forge evolve history shows the revisions; forge evolve rollback <revision> goes back to the installed one.');
    return 0;
  }

  say('\n2. a person marks it: it should have used count_words (failure evidence, type routing)');
  say(`$ forge feedback ${before.workflowId} --bad '…' --expect-tool count_words`);
  const fed = await capturingJson(() =>
    feedbackCommand(cfg, [
      before.workflowId,
      '--bad',
      'the words should have been counted with count_words, which the catalog has',
      '--expect-tool',
      'count_words',
      '--json',
    ]),
  );
  const evidence = (fed.lines[0] as { evidence?: { id: number; failureType: string; severity: number } } | undefined)?.evidence;
  if (fed.value !== 0 || !evidence) return fed.value || 1;
  say(`  recorded as failure evidence #${evidence.id} (${evidence.failureType}, severity ${evidence.severity})`);

  // Only the demo's own row: evidence of the person's own tasks waits for their nightly curation.
  say(`\n3. curation of #${evidence.id} alone (what the nightly schedule forge-nightly-curation runs), now, with a 20 s probe window`);
  const curated = await withSession(cfg, (session) => curateNow(session, { probe: DEMO_PROBE }, [evidence.id]));
  say(`  ${curated.started.workflowId}${link(cfg, curated.started.workflowId)}`);
  if (!curated.end.ok) {
    process.stderr.write(`curation failed: ${curated.end.error}\n`);
    return 1;
  }
  const batch = curated.end.result.batches.find((b) => b.started);
  if (!batch) {
    say(`  no batch to evolve (${curated.end.result.status}): forge failures ls shows the evidence and its curation`);
    return 1;
  }
  say(`  batch ${batch.batchKey}: evolve cycle ${batch.workflowId}${link(cfg, batch.workflowId)}`);

  say('\n4. the coding agent patches the harness → scope, apply, type check, lint, unit tests → candidate image → replay');
  const candidateId = batch.workflowId;
  // Until it waits for consent (or ends): its transitions as they happen.
  const waited = await withSession(cfg, async (session) => {
    let shown = 0;
    for (;;) {
      const p = await evolveProgress(session, candidateId);
      for (const h of p?.history.slice(shown) ?? []) say(`  ${h.phase}${h.note ? `: ${h.note}` : ''}`.slice(0, 300));
      shown = p?.history.length ?? shown;
      if (p?.awaitingConsent) return null;
      if (p && ['refused', 'failed', 'expired', 'rejected', 'promoted', 'rolled-back'].includes(p.phase)) return p.phase;
      await new Promise((r) => setTimeout(r, 500));
    }
  });
  if (waited) {
    say(`  the cycle ended ${waited} without a candidate waiting for consent: forge evolve show ${candidateId} says why`);
    return 1;
  }

  say('\n5. what a person reads before consenting');
  say(`$ forge evolve show ${candidateId}`);
  await evolveCommand(cfg, ['show', candidateId]);

  say(`\n6. consent, from the CLI (forge evolve approve ${candidateId}), then swap → probe → promote or roll back`);
  say(`$ forge evolve approve ${candidateId} --wait`);
  const approved = await evolveCommand(cfg, ['approve', candidateId, '--by', localUser(), '--wait']);
  say(`  deploy cycle deploy-${candidateId}${link(cfg, `deploy-${candidateId}`)}`);
  const deployed = await withSession(cfg, (session) => deployProgress(session, `deploy-${candidateId}`));
  for (const h of deployed?.history ?? []) say(`    ${h.phase}${h.note ? `: ${h.note}` : ''}`.slice(0, 300));
  if (approved !== 0) return approved;

  say('\n7. the paraphrase again, on the promoted version');
  const after = await runTask(cfg, PARAPHRASE);
  say('\n$ forge evolve history');
  await evolveCommand(cfg, ['history']);
  process.stderr.write(`demo evolve: ${((performance.now() - started) / 1000).toFixed(1)} s in all\n`);
  return after.result?.calls.some((c) => c.tool === 'count_words' && c.status === 'succeeded') ? 0 : 1;
}
