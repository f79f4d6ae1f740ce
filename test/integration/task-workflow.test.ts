import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import type { TaskResult } from '../../domain/task.ts';
import { progressQuery } from '../../workflows/definitions.ts';
import { type Harness, startHarness } from '../helpers/harness.ts';

describe('task workflow through real Temporal, Postgres, Docker and the scripted model', () => {
  let h: Harness;

  before(async () => {
    h = await startHarness({ scenarioFiles: ['scenarios/demo.json'] });
  });

  after(() => h.close());

  it('plans with the model, records the plan, runs in the sandbox as a non-root user, and answers', async () => {
    const workflowId = `task-test-${Date.now()}`;
    const handle = await h.client.workflow.start('taskWorkflow', {
      taskQueue: h.cfg.FORGE_TASK_QUEUE,
      workflowId,
      args: [{ task: 'Check DNS propagation for example.com', sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE }],
    });
    const result = (await handle.result()) as TaskResult;

    assert.match(result.plan.summary, /Check DNS propagation for example\.com/);
    assert.equal(result.sandbox?.exitCode, 0);
    const probe = JSON.parse(result.sandbox?.stdout.trim()) as { uid: number; steps: number; node: string };
    assert.equal(probe.uid, 10001, 'the sandbox runs as the unprivileged forge user');
    assert.equal(probe.steps, result.plan.steps.length);
    assert.match(result.answer, /Sandbox check: exit 0/);

    const [task] = await h.db.sql`select status, plan, result from tasks where workflow_id = ${workflowId}`;
    assert.equal(task?.status, 'completed');
    assert.deepEqual(task?.plan, result.plan);
    const steps = await h.db.sql`select step from task_steps where workflow_id = ${workflowId} order by step`;
    assert.deepEqual(
      steps.map((s) => s.step),
      ['plan', 'sandbox'],
    );
    const [usage] = await h.db
      .sql`select count(*)::int as n, sum(input_tokens)::int as tokens from llm_calls where workflow_id = ${workflowId}`;
    assert.equal(usage?.n, 1, 'one metered LLM call');
    assert.ok((usage?.tokens ?? 0) > 0);

    const progress = await handle.query(progressQuery);
    assert.equal(progress.phase, 'completed');
    assert.deepEqual(
      progress.history.map((e) => e.phase),
      ['starting', 'planning', 'recording', 'sandbox', 'answering', 'completed'],
    );
  });

  it('rejects a malformed task with a clear, non-retryable failure', async () => {
    const handle = await h.client.workflow.start('taskWorkflow', {
      taskQueue: h.cfg.FORGE_TASK_QUEUE,
      workflowId: `task-bad-${Date.now()}`,
      args: [{ task: '  ' }],
    });
    await assert.rejects(handle.result(), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      assert.match(String(err.cause?.message), /invalid task input: task: describe the task/);
      return true;
    });
  });
});
