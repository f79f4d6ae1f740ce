import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, it } from 'node:test';
import type { ForgeOutcome } from '../../domain/forge.ts';
import type { TaskResult } from '../../domain/task.ts';
import { decideApprovalUpdate } from '../../workflows/definitions.ts';
import { type CrashRig, slowed, startCrashRig } from '../helpers/crash-rig.ts';
import { activityAttempts } from '../helpers/temporal.ts';
import { until } from '../helpers/wait.ts';
import { startWorkerProcess, stopWorkerProcess } from '../helpers/worker-process.ts';

// Issue 8, item 6: a worker SIGKILLed in the middle of a multi-tool task resumes without calling,
// writing or forging anything twice. The task is demo.json's chain: count_words (already in the
// catalog) runs while create_note is forged in the same turn; its count becomes the note (a write);
// the model answers. Two scenario responses are slowed down to open the windows the test kills in:
// the forge's implementation step (after the count has been recorded) and the final answer (after
// the note has been written).
const TASK = 'make a note titled stats with the word count of "a b c d"';

let rig: CrashRig;

before(async () => {
  rig = await startCrashRig('agent-crash', [
    slowed('scenarios/forge-word-count.json', (r) => r.name === 'create_note: implementation'),
    slowed('scenarios/demo.json', (r) => r.name === "answer from create_note's result"),
  ]);
});

after(() => rig?.close());

/** How many times the model was asked turn `turn` of the task (a retried turn is asked again). */
const askedTurn = (turn: number) =>
  rig.model.requests.filter((r) => {
    const messages = (r.body as { messages?: { content: unknown }[] } | undefined)?.messages;
    return (
      r.headers['x-forge-purpose'] === 'task.turn' && String(messages?.[0]?.content).includes(TASK) && messages?.length === 2 * turn - 1
    );
  }).length;

it('a worker SIGKILLed mid-forge and again after the write resumes the task: no call, write or version twice, one completion', async () => {
  const { db, model, client, cfg, env, home } = rig;
  let worker: ChildProcess = startWorkerProcess(env);
  try {
    const forged = (await (
      await client.workflow.start('forgeWorkflow', {
        taskQueue: cfg.FORGE_TASK_QUEUE,
        workflowId: `agent-crash-forge-${Date.now()}`,
        args: [
          { need: 'count the words in a text: input text, output words, characters and lines', sandboxQueue: cfg.FORGE_SANDBOX_QUEUE },
        ],
      })
    ).result()) as ForgeOutcome;
    assert.equal(forged.status, 'registered');

    const workflowId = `agent-crash-${Date.now()}`;
    const handle = await client.workflow.start('taskWorkflow', {
      taskQueue: cfg.FORGE_TASK_QUEUE,
      workflowId,
      args: [{ task: TASK, sandboxQueue: cfg.FORGE_SANDBOX_QUEUE }],
    });

    // Kill 1: turn 1's count is recorded while its sibling call, the create_note forge, is writing the code.
    const counted = async () => (await db.sql`select 1 from invocations where workflow_id = ${workflowId}`).length > 0;
    const implementing = () =>
      model.requests.some(
        (r) => r.headers['x-forge-purpose'] === 'forge.implementation' && JSON.stringify(r.body).includes('Tool: create_note'),
      );
    await until('the count is recorded and create_note is being implemented', async () => implementing() && (await counted()));
    await stopWorkerProcess(worker, 'SIGKILL');
    worker = startWorkerProcess(env);

    // The note is a write: a person approves it.
    let approvalId = '';
    await until(
      'the note waits for approval',
      async () => {
        const [row] = await db.sql<{ id: string }[]>`select id from approvals where workflow_id = ${workflowId} and status = 'pending'`;
        approvalId = row?.id ?? '';
        return Boolean(row);
      },
      120_000,
    );
    await handle.executeUpdate(decideApprovalUpdate, { args: [{ approvalId, approve: true, by: 'tester' }] });

    // Kill 2: the note is written and the model is composing the answer.
    await until('the model is asked for the answer', () => askedTurn(3) > 0);
    await stopWorkerProcess(worker, 'SIGKILL');
    worker = startWorkerProcess(env);

    const result = (await handle.result()) as TaskResult;
    assert.equal(result.status, 'completed', result.answer);
    assert.deepEqual(
      result.calls.map((c) => [c.turn, c.tool, c.status]),
      [
        [1, 'count_words', 'succeeded'],
        [1, 'forge_tool', 'succeeded'],
        [2, 'create_note', 'succeeded'],
      ],
    );
    assert.deepEqual(result.calls[2]?.input, { title: 'stats', body: '4 words in "a b c d"', tags: [] });
    assert.match(result.answer, /^Created the note note_[0-9a-f]{8}\.$/);
    assert.deepEqual(result.forged, ['create_note']);

    // The killed steps were retried on the new worker...
    assert.ok((await activityAttempts(client, `${workflowId}.forge.1.2`, 'writeImplementation')) >= 2, 'the killed forge step was retried');
    assert.ok((await activityAttempts(client, workflowId, 'agentTurn')) >= 2, 'the killed model turn was retried');
    assert.deepEqual([askedTurn(1), askedTurn(2)], [1, 1], 'turns that had finished were not asked again');
    // ...and nothing that had finished ran again: each call once in the sandbox, metered and audited once.
    assert.equal(await activityAttempts(client, workflowId, 'sandboxRunRegisteredTool'), 1, 'no tool call ran twice');
    const keyed = (rows: { idempotency_key: string; tool: string }[]) => rows.map((r) => [r.idempotency_key, r.tool]);
    const once = [
      [`${workflowId}:call:1.1`, 'count_words'],
      [`${workflowId}:call:2.1`, 'create_note'],
    ];
    assert.deepEqual(
      keyed(await db.sql`select idempotency_key, tool from invocations where workflow_id = ${workflowId} order by id`),
      once,
    );
    assert.deepEqual(
      keyed(await db.sql`select idempotency_key, tool from audit_log where workflow_id = ${workflowId} and kind = 'tool_call' order by id`),
      once,
    );
    const approvals = await db.sql`select kind, tool, status from approvals where workflow_id = ${workflowId}`;
    assert.deepEqual(
      approvals.map((a) => [a.kind, a.tool, a.status]),
      [['write', 'create_note', 'approved']],
    );
    // One version of each tool, in the registry and on disk.
    const versions = await db.sql`select name, version from tool_versions order by name, version`;
    assert.deepEqual(
      versions.map((v) => [v.name, v.version]),
      [
        ['count_words', 1],
        ['create_note', 1],
      ],
    );
    assert.deepEqual(
      fs.readdirSync(path.join(home, 'tools', 'create_note')).filter((d) => /^v\d+$/.test(d)),
      ['v1'],
    );
    // The task completed once: one ledger row, each step recorded once.
    const tasks = await db.sql`select status from tasks where workflow_id = ${workflowId}`;
    assert.deepEqual(
      tasks.map((t) => t.status),
      ['completed'],
    );
    const steps =
      await db.sql`select step, count(*)::int as n from task_steps where workflow_id = ${workflowId} group by step order by step`;
    assert.deepEqual(
      steps.map((s) => [s.step, s.n]),
      [
        ['discovery', 1],
        ['turn-1', 1],
        ['turn-2', 1],
        ['turn-3', 1],
      ],
    );
  } finally {
    await stopWorkerProcess(worker, 'SIGTERM');
  }
});
