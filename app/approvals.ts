import type { ForgeConfig } from '../domain/config.ts';
import { ForgeError } from '../domain/errors.ts';
import { type ApprovalRow, findApproval, pendingApprovals } from '../services/control/approvals.ts';
import { decideApprovalUpdate } from '../workflows/definitions.ts';
import type { Session } from './context.ts';
import { withDb } from './db.ts';

export type { ApprovalRow };

/** What waits for a person, oldest first; works while Forge is frozen. */
export function pendingApprovalList(cfg: ForgeConfig): Promise<ApprovalRow[]> {
  return withDb(cfg, pendingApprovals);
}

export interface ApprovalAnswer {
  id: string;
  approve: boolean;
  by: string;
}

/**
 * A person's answer to a pending approval: checked against the ledger, then sent as an update to
 * the workflow that waits for it (the workflow records the decision; it is the authority).
 */
export async function decideApproval(
  session: Session,
  answer: ApprovalAnswer,
): Promise<{ accepted: boolean; approvalId: string; approve: boolean; workflowId: string }> {
  const { id, approve, by } = answer;
  const row = await withDb(session.cfg, (sql) => findApproval(sql, id));
  if (!row) throw new ForgeError(`no approval ${id}`, 'APPROVAL_NOT_FOUND', 'list pending approvals with: forge approvals');
  if (row.status !== 'pending')
    throw new ForgeError(`approval ${id} is already ${row.status}${row.decided_by ? ` (by ${row.decided_by})` : ''}`, 'APPROVAL_DECIDED');
  const client = await session.temporal();
  const res = await client.workflow
    .getHandle(row.workflow_id)
    .executeUpdate(decideApprovalUpdate, { args: [{ approvalId: id, approve, by }] })
    .catch((err: Error) => {
      throw new ForgeError(
        `workflow ${row.workflow_id} refused the decision: ${err.cause instanceof Error ? err.cause.message : err.message}`,
        'APPROVAL_REFUSED',
        'check the id with: forge approvals',
      );
    });
  return { ...res, workflowId: row.workflow_id };
}
