import type { TaskResult } from '../../domain/task.ts';
import type { Sql } from '../db.ts';

/**
 * Task bookkeeping in Postgres. Every write is keyed (workflow id, or workflow id + step) and uses
 * ON CONFLICT, so an activity retried after a worker crash writes nothing twice.
 */
export function createTaskStore(sql: Sql) {
  return {
    async startTask(input: { workflowId: string; task: string }): Promise<void> {
      await sql`insert into tasks (workflow_id, task) values (${input.workflowId}, ${input.task})
                on conflict (workflow_id) do nothing`;
    },

    async recordStep(input: { workflowId: string; step: string; output: unknown }): Promise<{ created: boolean }> {
      const rows = await sql`insert into task_steps (idempotency_key, workflow_id, step, output)
                values (${`${input.workflowId}:${input.step}`}, ${input.workflowId}, ${input.step}, ${sql.json(input.output as never)})
                on conflict (idempotency_key) do nothing returning 1`;
      if (input.step === 'plan') {
        await sql`update tasks set plan = ${sql.json(input.output as never)}, updated_at = now() where workflow_id = ${input.workflowId}`;
      }
      return { created: rows.length === 1 };
    },

    async completeTask(input: { workflowId: string; result: TaskResult }): Promise<void> {
      await sql`update tasks set status = 'completed', result = ${sql.json(input.result as never)}, updated_at = now()
                where workflow_id = ${input.workflowId}`;
    },

    async failTask(input: { workflowId: string; error: string }): Promise<void> {
      await sql`update tasks set status = 'failed', error = ${input.error}, updated_at = now()
                where workflow_id = ${input.workflowId}`;
    },
  };
}

/** A task's row as a person reads it: what was asked, how it stands, and its session place if it has one. */
export interface TaskLedgerRow {
  workflow_id: string;
  task: string;
  status: string;
  result: TaskResult | null;
  error: string | null;
  session_id: string | null;
  position: number | null;
  created_at: Date;
  updated_at: Date;
}

/** One task's row, or undefined when no task by that workflow id has started its bookkeeping. */
export async function findTaskRow(sql: Sql, workflowId: string): Promise<TaskLedgerRow | undefined> {
  const [row] = await sql<TaskLedgerRow[]>`
    select t.workflow_id, t.task, t.status, t.result, t.error, st.session_id, st.position, t.created_at, t.updated_at
    from tasks t left join session_tasks st on st.workflow_id = t.workflow_id
    where t.workflow_id = ${workflowId}`;
  return row;
}

/** The newest tasks first, at most `limit`; `total` counts them all. */
export async function recentTaskRows(sql: Sql, limit: number): Promise<{ rows: TaskLedgerRow[]; total: number }> {
  const rows = await sql<(TaskLedgerRow & { total: number })[]>`
    select t.workflow_id, t.task, t.status, t.result, t.error, st.session_id, st.position, t.created_at, t.updated_at,
           (count(*) over ())::int as total
    from tasks t left join session_tasks st on st.workflow_id = t.workflow_id
    order by t.created_at desc, t.workflow_id
    limit ${limit}`;
  return { rows: rows.map(({ total: _total, ...r }) => r), total: rows[0]?.total ?? 0 };
}
