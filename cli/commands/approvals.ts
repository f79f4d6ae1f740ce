import { parseArgs } from 'node:util';
import { decideApproval, pendingApprovalList } from '../../app/approvals.ts';
import { type ForgeConfig, localUser, withSession } from '../../app/context.ts';
import { pendingConsents } from '../../app/evolve.ts';
import { missingArgument, printJson, say } from '../output.ts';

// What waits for a person, and a person's decision: these work while Forge is frozen.

const jsonFlag = { json: { type: 'boolean' as const, default: false } };

export async function approvalsCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: jsonFlag });
  const pending = await pendingApprovalList(cfg);
  // Harness patches waiting for consent wait for a person too (the dashboard lists them together).
  const consents = (await pendingConsents(cfg)).map((c) => ({
    id: c.id,
    summary: `a harness patch for ${c.evidence_ids.length} ${c.failure_type} failure(s) (batch ${c.batch_key}), verified by replay`,
    digest: c.image_digest,
  }));
  if (values.json) printJson({ ok: true, pending, consents });
  else if (!pending.length && !consents.length) say('nothing waits for approval');
  else {
    for (const a of pending) {
      say(`${a.id}\n    ${a.kind}${a.tool ? ` ${a.tool}` : ''}: ${a.summary}`);
      if (a.kind === 'question') say(`    answer with: forge answer ${a.id} "<your answer>"   (or decline: forge reject ${a.id})`);
    }
    for (const c of consents) {
      say(`${c.id}\n    consent: ${c.summary}`);
      say(
        `    read it with: forge evolve show ${c.id}; then forge evolve approve ${c.id}${c.digest ? ` --digest ${c.digest}` : ''}   (or: forge evolve reject ${c.id})`,
      );
    }
  }
  return 0;
}

export function decideCommand(approve: boolean) {
  return async (cfg: ForgeConfig, args: string[]): Promise<number> => {
    const { values, positionals } = parseArgs({ args, allowPositionals: true, options: jsonFlag });
    const [id] = positionals;
    const name = approve ? 'approve' : 'reject';
    if (!id) throw missingArgument(name, 'the id of the approval (forge approvals lists them)', `forge ${name} <approval-id> [--json]`);
    const by = localUser();
    const decision = await withSession(cfg, (session) => decideApproval(session, { id, approve, by }));
    if (values.json) printJson({ ok: true, ...decision, by });
    else say(`${approve ? 'approved' : 'rejected'} ${id} (workflow ${decision.workflowId})`);
    return 0;
  };
}

/** `forge answer <id> "<text>"`: answers a question the agent asked (ask_person); the task goes on with it. */
export async function answerCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: jsonFlag });
  const [id, ...words] = positionals;
  const answer = words.join(' ').trim();
  const usage = 'forge answer <approval-id> "<your answer>" [--json]';
  if (!id) throw missingArgument('answer', 'the id of the question (forge approvals lists them, kind question)', usage);
  if (!answer) throw missingArgument('answer', `your answer, in words, after the id: forge answer ${id} "<your answer>"`, usage);
  const by = localUser();
  const decision = await withSession(cfg, (session) => decideApproval(session, { id, approve: true, by, answer }));
  if (values.json) printJson({ ok: true, ...decision, by, answer });
  else say(`answered ${id} (workflow ${decision.workflowId})`);
  return 0;
}
