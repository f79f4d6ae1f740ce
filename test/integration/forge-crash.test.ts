import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, it } from 'node:test';
import type { ForgeOutcome } from '../../domain/forge.ts';
import { sleep } from '../../infra/processes.ts';
import { type CrashRig, slowed, startCrashRig } from '../helpers/crash-rig.ts';
import { activityAttempts } from '../helpers/temporal.ts';
import { startWorkerProcess, stopWorkerProcess } from '../helpers/worker-process.ts';

// The word-count forge, with the implementation call slowed down so the worker can be killed mid-forge.
let rig: CrashRig;

before(async () => {
  rig = await startCrashRig('forge-crash', [
    slowed('scenarios/forge-word-count.json', (r) => r.match?.purpose === 'forge.implementation', 3000),
  ]);
});

after(() => rig?.close());

it('a worker killed with SIGKILL mid-forge resumes and registers exactly one version', async () => {
  const { db, model, client, cfg, env, home } = rig;
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
