import type { OutsideEnd } from '../../domain/outside-end.ts';
import type { Sql } from '../db.ts';

/**
 * The ledger rows that say a cycle is still going, and the write that records how it ended when
 * Temporal says it ended without writing that itself (domain/outside-end.ts): a task, a forge run,
 * and an approval its workflow still waited for (which nobody can decide any more). Their workflow
 * ids are never reused (task-…, forge-…, and the children named after them), so a row and the
 * workflow it names are one execution.
 */
export type OpenLedger = 'task' | 'forge' | 'approval';

/** A forge run is open while it runs and while it waits for a person to approve going past the budget. */
const OPEN_FORGE = ['running', 'awaiting-budget-approval'];

export interface OpenLedgerRow {
  ledger: OpenLedger;
  workflowId: string;
}

/**
 * Rows still marked open, the least recently touched first (the ones most likely to have ended
 * unseen), at most `limit`; only `workflowIds` when given. Partial indexes (084_open_ledgers.sql)
 * keep this a lookup of the few open rows, however long the ledgers grow.
 */
export async function openLedgerRows(sql: Sql, opts: { limit: number; workflowIds?: string[] }): Promise<OpenLedgerRow[]> {
  const only = (column: string) => (opts.workflowIds ? sql`and ${sql(column)} = any(${opts.workflowIds})` : sql``);
  const rows = await sql<{ ledger: OpenLedger; workflow_id: string }[]>`
    select ledger, workflow_id from (
      select 'task' as ledger, workflow_id, updated_at from tasks where status = 'running' ${only('workflow_id')}
      union all
      select 'forge' as ledger, workflow_id, updated_at from forge_runs where status in ${sql(OPEN_FORGE)} ${only('workflow_id')}
      union all
      select 'approval' as ledger, workflow_id, min(created_at) from approvals where status = 'pending' ${only('workflow_id')}
      group by workflow_id
    ) open order by updated_at limit ${opts.limit}`;
  return rows.map((r) => ({ ledger: r.ledger, workflowId: r.workflow_id }));
}

/**
 * Records an outside end on a row that is still open, and only then: a row the workflow ended
 * itself (or an earlier reconciliation) keeps its ending, so running this twice changes nothing.
 * Returns whether it wrote.
 */
export async function recordOutsideEnd(sql: Sql, row: OpenLedgerRow, end: OutsideEnd): Promise<boolean> {
  const at = end.closedAt ?? new Date();
  const written =
    row.ledger === 'task'
      ? await sql`update tasks set status = ${end.status}, error = ${end.reason}, updated_at = ${at}
                  where workflow_id = ${row.workflowId} and status = 'running' returning 1`
      : row.ledger === 'forge'
        ? await sql`update forge_runs set status = ${end.status}, reason = ${end.reason}, updated_at = ${at}
                    where workflow_id = ${row.workflowId} and status in ${sql(OPEN_FORGE)} returning 1`
        : // expired, as `forge approve` marks one it finds stale; who "decided" is the end that made it moot
          await sql`update approvals set status = 'expired', decided_by = ${`forge: its workflow ended (${end.reason})`}, decided_at = ${at}
                    where workflow_id = ${row.workflowId} and status = 'pending' returning 1`;
  return written.length > 0;
}
