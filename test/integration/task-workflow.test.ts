import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { CYCLE_KIND } from '../../domain/search-attributes.ts';
import type { TaskInput, TaskResult } from '../../domain/task.ts';
import type { ScenarioInput } from '../../scripted-model/scenario.ts';
import { progressQuery } from '../../workflows/definitions.ts';
import { type Harness, startHarness } from '../helpers/harness.ts';

describe('task workflow: the agent loop through real Temporal, Postgres, Docker and the scripted model', () => {
  let h: Harness;
  let n = 0;

  before(async () => {
    h = await startHarness({
      scenarios: [
        {
          name: 'a model that refuses the request',
          rules: [
            {
              match: { purpose: 'task.turn', first: '(refused upstream)' },
              responses: [{ error: { status: 400, message: 'prompt is too long: 250000 tokens > 200000 maximum' } }],
            },
          ],
        },
        // the bundled files after it: their catch-all would answer first
        ...['scenarios/forge-word-count.json', 'scenarios/demo.json'].map((f) => JSON.parse(fs.readFileSync(f, 'utf8')) as ScenarioInput),
      ],
      env: { FORGE_DAILY_FORGE_BUDGET: '20' },
    });
  });

  after(() => h.close());

  async function run(task: string, extra: Partial<TaskInput> = {}) {
    const workflowId = `task-loop-${++n}-${Date.now()}`;
    const handle = await h.client.workflow.start('taskWorkflow', {
      taskQueue: h.cfg.FORGE_TASK_QUEUE,
      workflowId,
      args: [{ task, sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE, ...extra }],
    });
    return { handle, workflowId, result: (await handle.result()) as TaskResult };
  }

  it('answers a task that needs no tool in words, in one turn, calling nothing', async () => {
    const { handle, workflowId, result } = await run('Check DNS propagation for example.com');
    assert.equal(result.status, 'completed');
    assert.match(result.answer, /Check DNS propagation for example\.com/);
    assert.deepEqual(result.calls, []);
    assert.equal(result.turns, 1);

    const [task] = await h.db.sql`select status, result from tasks where workflow_id = ${workflowId}`;
    assert.equal(task?.status, 'completed');
    const steps = await h.db.sql`select step from task_steps where workflow_id = ${workflowId} order by step`;
    assert.deepEqual(
      steps.map((s) => s.step),
      ['discovery', 'turn-1'],
    );
    const [usage] = await h.db.sql`select count(*)::int as n, min(purpose) as purpose from llm_calls where workflow_id = ${workflowId}`;
    assert.deepEqual([usage?.n, usage?.purpose], [1, 'task.turn'], 'one metered model turn');
    const progress = await handle.query(progressQuery);
    assert.deepEqual(
      progress.history.map((e) => e.phase),
      ['starting', 'discovering', 'thinking', 'answering', 'completed'],
    );
  });

  it('forges the tool it lacks mid-task, calls it on the next turn with the task’s own words, and answers from its result', async () => {
    const { workflowId, result } = await run('how many words are in "the quick brown fox"?');
    assert.equal(result.status, 'completed', result.answer);
    assert.deepEqual(result.forged, ['count_words']);
    assert.deepEqual(
      result.calls.map((c) => [c.turn, c.tool, c.status]),
      [
        [1, 'forge_tool', 'succeeded'],
        [2, 'count_words', 'succeeded'],
      ],
    );
    assert.deepEqual(result.calls[0]?.output, { forged: 'count_words', version: 1 });
    assert.deepEqual(result.calls[1]?.input, { text: 'the quick brown fox' });
    assert.equal((result.calls[1]?.output as { words: number } | undefined)?.words, 4);
    assert.match(result.answer, /There are 4 words/);

    const child = await h.client.workflow.getHandle(`${workflowId}.forge.1.1`).describe();
    assert.equal(child.status.name, 'COMPLETED');
    assert.equal(child.typedSearchAttributes.get(CYCLE_KIND), 'forge', 'the child forge is findable in the UI as a forge cycle');
    const [inv] = await h.db.sql`select tool, version, success from invocations where workflow_id = ${workflowId}`;
    assert.deepEqual([inv?.tool, inv?.version, inv?.success], ['count_words', 1, true]);
  });

  it('reuses the tool for another text, with no forge, and the audit log shows the call with its reasoning', async () => {
    const { workflowId, result } = await run('Count the words in "one two three four five six"');
    assert.equal(result.status, 'completed');
    assert.deepEqual(
      result.calls.map((c) => c.tool),
      ['count_words'],
    );
    assert.match(result.answer, /There are 6 words/);
    assert.deepEqual(result.forged, []);
    const versions = await h.db.sql`select version from tool_versions where name = 'count_words'`;
    assert.equal(versions.length, 1, 'no new version');
    const [audit] = await h.db.sql`select kind, tool, reasoning, input from audit_log where workflow_id = ${workflowId}`;
    assert.deepEqual([audit?.kind, audit?.tool], ['tool_call', 'count_words']);
    assert.match(String(audit?.reasoning), /count_words counts words/);
    assert.deepEqual(audit?.input, { text: 'one two three four five six' });
  });

  it('stops at the turn bound with a clear message and the calls made so far', async () => {
    const { result } = await run('how many words are in "bounded by one turn"?', { limits: { maxTurns: 1 } });
    assert.equal(result.status, 'stopped');
    assert.equal(result.stoppedBy, 'maxTurns');
    assert.match(
      result.answer,
      /no answer after 1 turn, the bound per task \(raise it: forge run --max-turns <n>, or maxTurns in MCP's run_task\)/,
    );
    assert.deepEqual(
      result.calls.map((c) => [c.tool, c.status]),
      [['count_words', 'succeeded']],
    );
  });

  it('a task that fails says why — the model’s own error, not “Activity task failed” — to the client, in tasks.error and in its progress', async () => {
    const workflowId = `task-refused-${Date.now()}`;
    const handle = await h.client.workflow.start('taskWorkflow', {
      taskQueue: h.cfg.FORGE_TASK_QUEUE,
      workflowId,
      args: [{ task: 'summarise this (refused upstream)', sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE }],
    });
    const cause = /^the agentTurn step failed: .*prompt is too long: 250000 tokens > 200000 maximum/;
    await assert.rejects(handle.result(), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      assert.match(String(err.cause?.message), cause);
      return true;
    });
    const [row] = await h.db.sql<{ status: string; error: string }[]>`select status, error from tasks where workflow_id = ${workflowId}`;
    assert.equal(row?.status, 'failed');
    assert.match(String(row?.error), cause);
    const progress = await handle.query(progressQuery);
    assert.equal(progress.phase, 'failed');
    assert.match(String(progress.history.at(-1)?.note), cause);
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
