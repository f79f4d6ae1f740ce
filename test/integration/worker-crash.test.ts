import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import type { Client } from '@temporalio/client';
import type { TaskResult } from '../../domain/task.ts';
import { sleep } from '../../infra/processes.ts';
import { type ScriptedModel, startScriptedModel } from '../../scripted-model/server.ts';
import { freshDatabase, testConfig } from '../helpers/env.ts';
import { activityAttempts, testClient } from '../helpers/temporal.ts';
import { startWorkerProcess, stopWorkerProcess, workerProcessEnv } from '../helpers/worker-process.ts';

// The planning call takes a few seconds, which gives the test a window to SIGKILL the worker mid-activity.
const slowPlan = {
  name: 'slow-plan',
  rules: [
    {
      match: { tool: 'submit_plan' },
      responses: [
        {
          delay_ms: 4000,
          tool_use: { name: 'submit_plan', input: { summary: 'crash-safe plan', steps: [{ title: 'prove the sandbox', kind: 'think' }] } },
        },
      ],
    },
  ],
};

let db: Awaited<ReturnType<typeof freshDatabase>>;
let model: ScriptedModel;
let client: Client;
const cfg = testConfig({ FORGE_POOL_SIZE: '0' });

before(async () => {
  db = await freshDatabase();
  model = await startScriptedModel({ scenarios: [slowPlan] });
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

  // Wait until the planning call is in flight (the model has received it), then kill the worker.
  const deadline = Date.now() + 90_000;
  while (!model.requests.some((r) => r.path.endsWith('/messages')) && Date.now() < deadline) await sleep(100);
  assert.ok(model.requests.length > 0, 'the worker reached the planning call');
  await stopWorkerProcess(worker, 'SIGKILL');

  worker = startWorkerProcess(env);
  try {
    const result = (await handle.result()) as TaskResult;
    assert.equal(result.plan.summary, 'crash-safe plan');
    assert.equal(result.sandbox?.exitCode, 0);
  } finally {
    await stopWorkerProcess(worker, 'SIGTERM');
  }

  assert.ok((await activityAttempts(client, workflowId, 'planTask')) >= 2, 'the killed planning activity was retried on the new worker');
  const tasks = await db.sql`select status from tasks where workflow_id = ${workflowId}`;
  assert.deepEqual(
    tasks.map((t) => t.status),
    ['completed'],
  );
  const steps = await db.sql`select step, count(*)::int as n from task_steps where workflow_id = ${workflowId} group by step order by step`;
  assert.deepEqual(
    steps.map((s) => [s.step, s.n]),
    [
      ['plan', 1],
      ['sandbox', 1],
    ],
  );
});
