import { parseArgs } from 'node:util';
import { decideApproval, pendingApprovalList } from '../../app/approvals.ts';
import { type ForgeConfig, localUser, withSession } from '../../app/context.ts';
import { InvalidInputError } from '../../app/errors.ts';
import { printJson, say } from '../output.ts';

// What waits for a person, and a person's decision: these work while Forge is frozen.

const jsonFlag = { json: { type: 'boolean' as const, default: false } };

export async function approvalsCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: jsonFlag });
  const pending = await pendingApprovalList(cfg);
  if (values.json) printJson({ ok: true, pending });
  else if (!pending.length) say('nothing waits for approval');
  else
    for (const a of pending) {
      say(`${a.id}\n    ${a.kind}${a.tool ? ` ${a.tool}` : ''}: ${a.summary}`);
      if (a.kind === 'question') say(`    answer with: forge answer ${a.id} "<your answer>"   (or decline: forge reject ${a.id})`);
    }
  return 0;
}

export function decideCommand(approve: boolean) {
  return async (cfg: ForgeConfig, args: string[]): Promise<number> => {
    const { values, positionals } = parseArgs({ args, allowPositionals: true, options: jsonFlag });
    const [id] = positionals;
    if (!id)
      throw new InvalidInputError(
        'command',
        `usage: forge ${approve ? 'approve' : 'reject'} <approval-id> (list them with: forge approvals)`,
      );
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
  if (!id || !answer)
    throw new InvalidInputError('command', 'usage: forge answer <approval-id> "<your answer>" (list the questions with: forge approvals)');
  const by = localUser();
  const decision = await withSession(cfg, (session) => decideApproval(session, { id, approve: true, by, answer }));
  if (values.json) printJson({ ok: true, ...decision, by, answer });
  else say(`answered ${id} (workflow ${decision.workflowId})`);
  return 0;
}
