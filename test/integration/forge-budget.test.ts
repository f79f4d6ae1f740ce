import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, it } from 'node:test';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { ForgeOutcome } from '../../domain/forge.ts';
import { sleep } from '../../infra/processes.ts';
import { startScriptedModel, type ScriptedModel } from '../../infra/scripted-model.ts';
import { decideApprovalUpdate, forgeProgressQuery } from '../../workflows/definitions.ts';
import { startWorkers, type RunningWorkers } from '../../workers/main.ts';
import { freshDatabase, testConfig } from '../helpers/env.ts';
import { testClient } from '../helpers/temporal.ts';

// A daily budget of one new tool: the second forge of the day waits for a person.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let model: ScriptedModel;
let workers: RunningWorkers;
let client: Client;
let cfg: ReturnType<typeof testConfig>;
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-budget-'));

before(async () => {
  db = await freshDatabase();
  model = await startScriptedModel({ scenarioFiles: [path.resolve('scenarios/forge-word-count.json')] });
  cfg = testConfig({ DATABASE_URL: db.url, ANTHROPIC_BASE_URL: model.url, FORGE_HOME: home, FORGE_POOL_SIZE: '0', FORGE_DAILY_FORGE_BUDGET: '1' });
  workers = await startWorkers(cfg);
  void workers.run();
  client = await testClient(cfg);
});

after(async () => {
  await workers.shutdown();
  await client.connection.close();
  await model.close();
  await db.drop();
  fs.rmSync(home, { recursive: true, force: true });
});

const forge = (need: string) =>
  client.workflow.start('forgeWorkflow', {
    taskQueue: cfg.FORGE_TASK_QUEUE,
    workflowId: `forge-budget-${Math.random().toString(16).slice(2)}`,
    args: [{ need, sandboxQueue: cfg.FORGE_SANDBOX_QUEUE }],
  });

async function pendingBudgetApproval(handle: WorkflowHandle): Promise<string> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const p = await handle.query(forgeProgressQuery).catch(() => undefined);
    if (p?.phase === 'awaiting-budget-approval' && p.pendingApproval) return p.pendingApproval;
    await sleep(200);
  }
  throw new Error(`${handle.workflowId} never asked for a budget approval`);
}

it('forges within budget, then waits for a person: rejected leaves the catalog alone, approved registers', async () => {
  const first = (await (await forge('count the words in a text')).result()) as ForgeOutcome;
  assert.equal(first.status, 'registered');

  const rejected = await forge('create a note with a title and a body');
  const rejectId = await pendingBudgetApproval(rejected);
  const [row] = await db.sql`select kind, status from approvals where id = ${rejectId}`;
  assert.deepEqual([row?.kind, row?.status], ['budget', 'pending']);
  assert.equal(model.requests.filter((r) => r.headers['x-forge-purpose'] === 'forge.spec').length, 1, 'no model call before approval');
  await rejected.executeUpdate(decideApprovalUpdate, { args: [{ approvalId: rejectId, approve: false, by: 'tester' }] });
  const outcome = (await rejected.result()) as ForgeOutcome;
  assert.equal(outcome.status, 'failed');
  assert.match(outcome.status === 'failed' ? outcome.reason : '', /tester rejected forging past the daily budget/);
  assert.equal((await db.sql`select 1 from tool_versions where name = 'create_note'`).length, 0);

  const approved = await forge('create a note with a title and a body');
  await approved.executeUpdate(decideApprovalUpdate, { args: [{ approvalId: await pendingBudgetApproval(approved), approve: true, by: 'tester' }] });
  const later = (await approved.result()) as ForgeOutcome;
  assert.equal(later.status, 'registered');
  assert.equal(later.status === 'registered' && later.name, 'create_note');
});
