import type { ForgeConfig } from '../domain/config.ts';
import { ForgeError } from '../domain/errors.ts';
import { withArticle } from '../domain/words.ts';
import { type ApprovalRow, createApprovalLedger, findApproval, pendingApprovals } from '../services/control/approvals.ts';
import { type Session, withSession } from './context.ts';
import { withDb } from './db.ts';
import { reconcileQuietly } from './reconcile.ts';

export type { ApprovalRow };

/**
 * What waits for a person, oldest first; works while Forge is frozen. An approval whose workflow
 * was ended from outside (terminated, timed out) is first marked expired: nobody waits for it.
 */
export async function pendingApprovalList(cfg: ForgeConfig): Promise<ApprovalRow[]> {
  await withSession(cfg, (session) => reconcileQuietly(session));
  return withDb(cfg, pendingApprovals);
}

/** One approval whole (pending or decided), or a refusal naming where the ids are. */
export async function showApproval(cfg: ForgeConfig, id: string): Promise<ApprovalRow> {
  const row = await withDb(cfg, (sql) => findApproval(sql, id));
  if (!row) throw new ForgeError(`no approval ${id}`, 'APPROVAL_NOT_FOUND', 'list pending approvals with: forge approvals');
  return row;
}

export interface ApprovalAnswer {
  id: string;
  approve: boolean;
  by: string;
  /** the answer to a question (kind `question`, asked by the agent's ask_person), in the person's words */
  answer?: string;
}

/** Longest answer a person may give to a question (it goes into the model's transcript whole). */
export const MAX_ANSWER_CHARS = 4000;

/**
 * A person's answer to a pending approval: checked against the ledger, then sent as an update to
 * the workflow that waits for it (the workflow records the decision; it is the authority). A
 * question is approved only with an answer (forge answer), and only a question takes one.
 */
export async function decideApproval(
  session: Session,
  decision: ApprovalAnswer,
): Promise<{ accepted: boolean; approvalId: string; approve: boolean; workflowId: string }> {
  const { id, approve, by } = decision;
  const answer = decision.answer?.trim();
  if (decision.answer !== undefined && !answer)
    throw new ForgeError(`an empty answer to ${id}`, 'APPROVAL_NEEDS_ANSWER', `answer in words: forge answer ${id} "<your answer>"`);
  if (answer && answer.length > MAX_ANSWER_CHARS)
    throw new ForgeError(
      `the answer to ${id} has ${answer.length} characters; at most ${MAX_ANSWER_CHARS} go to the agent`,
      'APPROVAL_ANSWER_TOO_LONG',
      'shorten it',
    );
  const row = await withDb(session.cfg, (sql) => findApproval(sql, id));
  if (!row) throw new ForgeError(`no approval ${id}`, 'APPROVAL_NOT_FOUND', 'list pending approvals with: forge approvals');
  if (row.status !== 'pending')
    throw new ForgeError(
      `approval ${id} is already ${row.status}${row.decided_by ? ` (by ${row.decided_by})` : ''}`,
      'APPROVAL_DECIDED',
      'nothing to do; forge approvals lists what still waits',
    );
  if (row.kind === 'question' && approve && !answer)
    throw new ForgeError(
      `${id} is a question ("${row.summary}"): approving it says nothing`,
      'APPROVAL_NEEDS_ANSWER',
      `answer it: forge answer ${id} "<your answer>" (or decline: forge reject ${id})`,
    );
  if (row.kind !== 'question' && answer)
    throw new ForgeError(
      `${id} is ${withArticle(row.kind)} approval, not a question: it takes a decision, not an answer`,
      'APPROVAL_NOT_A_QUESTION',
      `forge approve ${id} or forge reject ${id}`,
    );
  const client = await session.temporal();
  // Imported here: listing approvals (forge approvals) reads Postgres only and need not load @temporalio/workflow.
  const { decideApprovalUpdate } = await import('../workflows/definitions.ts');
  const handle = client.workflow.getHandle(row.workflow_id);
  const res = await handle
    .executeUpdate(decideApprovalUpdate, { args: [{ approvalId: id, approve, by, ...(answer ? { answer } : {}) }] })
    .catch(async (err: Error) => {
      // A workflow that closed without resolving its approval (terminated, timed out) left a stale
      // row: nobody can decide it any more, so it stops being listed as waiting.
      const status = await handle.describe().then(
        (d) => d.status.name,
        () => 'NOT_FOUND',
      );
      if (status !== 'RUNNING') {
        await withDb(session.cfg, (sql) => createApprovalLedger(sql).resolveApproval({ id, status: 'expired', by }));
        throw new ForgeError(
          `approval ${id} is stale: its workflow ${row.workflow_id} is ${status.toLowerCase().replace('_', ' ')}, so nobody waits for the decision (marked expired)`,
          'APPROVAL_STALE',
          'forge approvals lists what still waits',
        );
      }
      throw new ForgeError(
        `workflow ${row.workflow_id} refused the decision: ${err.cause instanceof Error ? err.cause.message : err.message}`,
        'APPROVAL_REFUSED',
        'check the id with: forge approvals',
      );
    });
  return { ...res, workflowId: row.workflow_id };
}
