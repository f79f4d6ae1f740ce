import { parseArgs } from 'node:util';
import { type ApprovalRow, decideApproval, pendingApprovalList, showApproval } from '../../app/approvals.ts';
import { type ForgeConfig, localUser, withSession } from '../../app/context.ts';
import { pendingConsents } from '../../app/evolve.ts';
import { missingArgument, printJson, say, usageError } from '../output.ts';

// What waits for a person, and a person's decision: these work while Forge is frozen.

const jsonFlag = { json: { type: 'boolean' as const, default: false } };
const APPROVALS_USAGE = 'forge approvals [--json] | forge approvals show <id> [--json]';

/** The longest summary a listing shows on its line; forge approvals show <id> (or --json) has it whole. */
const SUMMARY_CHARS = 160;

/** A summary on one line of the listing: a tool's input or an agent's question may span several. */
function oneLine(text: string): { line: string; clipped: boolean } {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= SUMMARY_CHARS && flat === text.trim()
    ? { line: flat, clipped: false }
    : { line: flat.length <= SUMMARY_CHARS ? flat : `${flat.slice(0, SUMMARY_CHARS - 1)}…`, clipped: true };
}

/** How a person decides it: a question takes an answer, anything else a decision. */
const decideHint = (a: Pick<ApprovalRow, 'id' | 'kind'>) =>
  a.kind === 'question'
    ? `answer with: forge answer ${a.id} "<your answer>"   (or decline: forge reject ${a.id})`
    : `decide with: forge approve ${a.id}   (or: forge reject ${a.id})`;

export async function approvalsCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: jsonFlag });
  const [sub, id, ...extra] = positionals;
  if (sub === 'show') {
    if (!id) throw missingArgument('approvals show', 'the id of an approval (forge approvals lists them)', APPROVALS_USAGE);
    if (extra.length) throw usageError(`forge approvals show takes one id, not ${positionals.length - 1}`, APPROVALS_USAGE);
    const a = await showApproval(cfg, id);
    if (values.json) printJson({ ok: true, approval: a });
    else {
      say(
        `${a.id}: ${a.kind}${a.tool ? ` ${a.tool}` : ''}, ${a.status}${a.decided_by ? ` by ${a.decided_by}` : ''}, asked ${a.created_at.toISOString()}`,
      );
      say(`  workflow ${a.workflow_id}`);
      say(a.summary.replace(/^/gm, '  '));
      if (a.status === 'pending') say(`  ${decideHint(a)}`);
    }
    return 0;
  }
  if (sub !== undefined) throw usageError(`unknown approvals command ${JSON.stringify(sub)}`, APPROVALS_USAGE);
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
      const { line, clipped } = oneLine(a.summary);
      say(`${a.id}\n    ${a.kind}${a.tool ? ` ${a.tool}` : ''}: ${line}`);
      if (clipped) say(`    (all of it: forge approvals show ${a.id})`);
      say(`    ${decideHint(a)}`);
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
