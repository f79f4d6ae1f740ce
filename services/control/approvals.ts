import type { Sql } from '../db.ts';

export interface ApprovalRow {
  id: string;
  workflow_id: string;
  kind: string;
  tool: string | null;
  summary: string;
  request: unknown;
  status: string;
  decided_by: string | null;
  decided_at: Date | null;
  created_at: Date;
}

/** The approvals ledger: what workflows wait for, so a person can list and answer it. */
export function createApprovalLedger(sql: Sql) {
  return {
    async requestApproval(input: {
      id: string;
      workflowId: string;
      kind: string;
      tool?: string;
      summary: string;
      request?: unknown;
    }): Promise<void> {
      await sql`insert into approvals (id, workflow_id, kind, tool, summary, request)
                values (${input.id}, ${input.workflowId}, ${input.kind}, ${input.tool ?? null}, ${input.summary}, ${sql.json((input.request ?? null) as never)})
                on conflict (id) do nothing`;
    },
    async resolveApproval(input: { id: string; status: 'approved' | 'rejected' | 'expired'; by?: string }): Promise<void> {
      await sql`update approvals set status = ${input.status}, decided_by = ${input.by ?? null}, decided_at = now()
                where id = ${input.id} and status = 'pending'`;
    },
  };
}

export async function findApproval(sql: Sql, id: string): Promise<ApprovalRow | undefined> {
  const [row] = await sql<ApprovalRow[]>`select * from approvals where id = ${id}`;
  return row;
}

export async function pendingApprovals(sql: Sql): Promise<ApprovalRow[]> {
  return sql<ApprovalRow[]>`select * from approvals where status = 'pending' order by created_at`;
}
