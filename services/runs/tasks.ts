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
