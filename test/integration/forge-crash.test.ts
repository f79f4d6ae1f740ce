import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, it } from 'node:test';
import type { Client } from '@temporalio/client';
import type { ForgeOutcome } from '../../domain/forge.ts';
import { sleep } from '../../infra/processes.ts';
import type { ScenarioInput } from '../../scripted-model/scenario.ts';
import { type ScriptedModel, startScriptedModel } from '../../scripted-model/server.ts';
import { freshDatabase, testConfig } from '../helpers/env.ts';
import { activityAttempts, testClient } from '../helpers/temporal.ts';
import { startWorkerProcess, stopWorkerProcess, workerProcessEnv } from '../helpers/worker-process.ts';

// The word-count forge, with the implementation call slowed down so the worker can be killed mid-forge.
function slowImplementationScenario(): ScenarioInput {
  const scenario = JSON.parse(fs.readFileSync(path.resolve('scenarios/forge-word-count.json'), 'utf8')) as ScenarioInput;
  for (const rule of scenario.rules) {
    if (rule.match?.purpose === 'forge.implementation') rule.responses = rule.responses.map((r) => ({ ...r, delay_ms: 3000 }));
  }
  return scenario;
}

let db: Awaited<ReturnType<typeof freshDatabase>>;
let model: ScriptedModel;
let client: Client;
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-crash-'));
const cfg = testConfig({ FORGE_POOL_SIZE: '0' });

before(async () => {
  db = await freshDatabase();
  model = await startScriptedModel({ scenarios: [slowImplementationScenario()] });
  client = await testClient(cfg);
});

after(async () => {
  await client.connection.close();
  await model.close();
  await db.drop();
  fs.rmSync(home, { recursive: true, force: true });
});

it('a worker killed with SIGKILL mid-forge resumes and registers exactly one version', async () => {
  const env = workerProcessEnv(cfg, { databaseUrl: db.url, modelUrl: model.url, home });
  let worker = startWorkerProcess(env);
  const handle = await client.workflow.start('forgeWorkflow', {
    taskQueue: cfg.FORGE_TASK_QUEUE,
    workflowId: `forge-crash-${Date.now()}`,
    args: [{ need: 'count the words in a text: input text, output words, characters and lines', sandboxQueue: cfg.FORGE_SANDBOX_QUEUE }],
  });

  const deadline = Date.now() + 120_000;
  const implementationAsked = () => model.requests.some((r) => r.headers['x-forge-purpose'] === 'forge.implementation');
  while (!implementationAsked() && Date.now() < deadline) await sleep(100);
  assert.ok(implementationAsked(), 'the forge reached the implementation step');
  await stopWorkerProcess(worker, 'SIGKILL');

  worker = startWorkerProcess(env);
  try {
    const outcome = (await handle.result()) as ForgeOutcome;
    assert.equal(outcome.status, 'registered');
  } finally {
    await stopWorkerProcess(worker, 'SIGTERM');
  }
  assert.ok((await activityAttempts(client, handle.workflowId, 'writeImplementation')) >= 2, 'the killed step was retried');
  const versions = await db.sql`select name, version from tool_versions`;
  assert.deepEqual(
    versions.map((v) => [v.name, v.version]),
    [['count_words', 1]],
  );
  const dirs = fs.readdirSync(path.join(home, 'tools', 'count_words')).filter((d) => /^v\d+$/.test(d));
  assert.deepEqual(dirs, ['v1']);
  const [run] = await db.sql`select status, version from forge_runs where workflow_id = ${handle.workflowId}`;
  assert.deepEqual([run?.status, run?.version], ['registered', 1]);
});
