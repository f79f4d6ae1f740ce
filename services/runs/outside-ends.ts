import type { OutsideEnd } from '../../domain/outside-end.ts';
import type { Sql } from '../db.ts';

/**
 * The ledger rows that say a cycle is still going, and the write that records how it ended when
 * Temporal says it ended without writing that itself (domain/outside-end.ts): a task, a forge run,
 * an improve cycle, an evolve candidate, and an approval its workflow still waited for (which nobody
 * can decide any more). Task and forge workflow ids (task-…, forge-…, and the children named after
 * them) and evolve ids (one cycle per batch) name one execution; a tool's improve cycles all share
 * `improve-<tool>`, so an improve row names its run as well (its key is `<workflow id>@<run id>`)
 * and is compared with that run alone: an older run's end never closes a newer cycle's row.
 */
export type OpenLedger = 'task' | 'forge' | 'improve' | 'evolve' | 'approval';

/** A forge run is open while it runs and while it waits for a person to approve going past the budget. */
const OPEN_FORGE = ['running', 'awaiting-budget-approval'];
/** An evolve candidate is open until its cycle ends: patching, checked (building, replaying), verified (waiting for consent, deploying). */
const OPEN_EVOLVE = ['running', 'checked', 'verified'];

export interface OpenLedgerRow {
  ledger: OpenLedger;
  workflowId: string;
  /** the run the row belongs to, for a ledger whose workflow ids are reused (improve); else the workflow's latest run */
  runId?: string;
}

/**
 * Rows still marked open, the least recently touched first (the ones most likely to have ended
 * unseen), at most `limit`; only `workflowIds` when given. Partial indexes (084_open_ledgers.sql,
 * 085_open_cycle_ledgers.sql) keep this a lookup of the few open rows, however long the ledgers grow.
 */
export async function openLedgerRows(sql: Sql, opts: { limit: number; workflowIds?: string[] }): Promise<OpenLedgerRow[]> {
  const rows = await sql<{ ledger: OpenLedger; workflow_id: string; run_id: string | null }[]>`
    select ledger, workflow_id, run_id from (
      select 'task' as ledger, workflow_id, null as run_id, updated_at from tasks where status = 'running'
      union all
      select 'forge', workflow_id, null, updated_at from forge_runs where status in ${sql(OPEN_FORGE)}
      union all
      select 'improve', split_part(workflow_id, '@', 1), split_part(workflow_id, '@', 2), updated_at
      from improve_runs where status = 'running' and workflow_id like '%@%'
      union all
      select 'evolve', workflow_id, null, updated_at from evolve_candidates where status in ${sql(OPEN_EVOLVE)}
      union all
      select 'approval', workflow_id, null, min(created_at) from approvals where status = 'pending'
      group by workflow_id
    ) open ${opts.workflowIds ? sql`where workflow_id = any(${opts.workflowIds})` : sql``}
    order by updated_at limit ${opts.limit}`;
  return rows.map((r) => ({ ledger: r.ledger, workflowId: r.workflow_id, ...(r.run_id ? { runId: r.run_id } : {}) }));
}

/**
 * Records an outside end on a row that is still open, and only then: a row the workflow ended
 * itself (or an earlier reconciliation) keeps its ending, so running this twice changes nothing.
 * Returns whether it wrote.
 */
export async function recordOutsideEnd(sql: Sql, row: OpenLedgerRow, end: OutsideEnd): Promise<boolean> {
  const at = end.closedAt ?? new Date();
  const written = await (() => {
    switch (row.ledger) {
      case 'task':
        return sql`update tasks set status = ${end.status}, error = ${end.reason}, updated_at = ${at}
                   where workflow_id = ${row.workflowId} and status = 'running' returning 1`;
      case 'forge':
        return sql`update forge_runs set status = ${end.status}, reason = ${end.reason}, updated_at = ${at}
                   where workflow_id = ${row.workflowId} and status in ${sql(OPEN_FORGE)} returning 1`;
      case 'improve':
        // reason keeps what started the cycle; its outcome goes in report, as the cycle's own end writes it
        return sql`update improve_runs set status = ${end.status}, report = ${sql.json({ outcome: end.reason })}, updated_at = ${at}
                   where workflow_id = ${`${row.workflowId}@${row.runId}`} and status = 'running' returning 1`;
      case 'evolve':
        // What became of the person's part: a consent it waited for can no longer be given; a deploy
        // it started runs on by itself (a child the cycle abandons) and ends in the harness history.
        return sql`update evolve_candidates set status = ${end.status}, updated_at = ${at},
                     reason = ${end.reason} || case
                       when status <> 'verified' then ''
                       when consent is null then '; the consent it waited for expired'
                       when consent->>'approve' = 'true' then '; its deploy (deploy-' || id || ') goes on by itself: forge evolve history says how it ends'
                       else '' end
                   where workflow_id = ${row.workflowId} and status in ${sql(OPEN_EVOLVE)} returning 1`;
      case 'approval':
        // expired, as `forge approve` marks one it finds stale; who "decided" is the end that made it moot
        return sql`update approvals set status = 'expired', decided_by = ${`forge: its workflow ended (${end.reason})`}, decided_at = ${at}
                   where workflow_id = ${row.workflowId} and status = 'pending' returning 1`;
    }
  })();
  return written.length > 0;
}
