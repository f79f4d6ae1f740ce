import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import type { Client } from '@temporalio/client';
import type { TaskResult } from '../../domain/task.ts';
import { sleep } from '../../infra/processes.ts';
import { type ScriptedModel, startScriptedModel } from '../../scripted-model/server.ts';
import { freshDatabase, testConfig } from '../helpers/env.ts';
import { activityAttempts, testClient } from '../helpers/temporal.ts';
import { startWorkerProcess, stopWorkerProcess, workerProcessEnv } from '../helpers/worker-process.ts';

// The model's turn takes a few seconds, which gives the test a window to SIGKILL the worker mid-activity.
const slowTurn = {
  name: 'slow-turn',
  rules: [{ match: { purpose: 'task.turn' }, responses: [{ delay_ms: 4000, text: 'crash-safe answer' }] }],
};

let db: Awaited<ReturnType<typeof freshDatabase>>;
let model: ScriptedModel;
let client: Client;
const cfg = testConfig({ FORGE_POOL_SIZE: '0' });

before(async () => {
  db = await freshDatabase();
  model = await startScriptedModel({ scenarios: [slowTurn] });
  client = await testClient(cfg);
});

after(async () => {
  await client.connection.close();
  await model.close();
  await db.drop();
});

it('a worker killed with SIGKILL mid-activity resumes the workflow with no duplicate rows', async () => {
  const env = workerProcessEnv(cfg, { databaseUrl: db.url, modelUrl: model.url });
  const workflowId = `task-crash-${Date.now()}`;
  let worker = startWorkerProcess(env);
  const handle = await client.workflow.start('taskWorkflow', {
    taskQueue: cfg.FORGE_TASK_QUEUE,
    workflowId,
    args: [{ task: 'survive a crash', sandboxQueue: cfg.FORGE_SANDBOX_QUEUE }],
  });

  // Wait until the model's turn is in flight (the model has received it), then kill the worker.
  const deadline = Date.now() + 90_000;
  while (!model.requests.some((r) => r.path.endsWith('/messages')) && Date.now() < deadline) await sleep(100);
  assert.ok(model.requests.length > 0, 'the worker reached the model turn');
  await stopWorkerProcess(worker, 'SIGKILL');

  worker = startWorkerProcess(env);
  try {
    const result = (await handle.result()) as TaskResult;
    assert.equal(result.status, 'completed');
    assert.equal(result.answer, 'crash-safe answer');
  } finally {
    await stopWorkerProcess(worker, 'SIGTERM');
  }

  assert.ok((await activityAttempts(client, workflowId, 'agentTurn')) >= 2, 'the killed model turn was retried on the new worker');
  const tasks = await db.sql`select status from tasks where workflow_id = ${workflowId}`;
  assert.deepEqual(
    tasks.map((t) => t.status),
    ['completed'],
  );
  const steps = await db.sql`select step, count(*)::int as n from task_steps where workflow_id = ${workflowId} group by step order by step`;
  assert.deepEqual(
    steps.map((s) => [s.step, s.n]),
    [
      ['discovery', 1],
      ['turn-1', 1],
    ],
  );
});
