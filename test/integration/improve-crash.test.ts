import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, it } from 'node:test';
import type { ForgeOutcome } from '../../domain/forge.ts';
import type { ImproveOutcome } from '../../domain/improve.ts';
import { type CrashRig, slowed, startCrashRig } from '../helpers/crash-rig.ts';
import { activityAttempts } from '../helpers/temporal.ts';
import { until } from '../helpers/wait.ts';
import { startWorkerProcess, stopWorkerProcess } from '../helpers/worker-process.ts';

// Issue 10, item 9: a worker SIGKILLed in the middle of an improve cycle (while the model writes the
// rewrite, and again as the new version lands in the catalog) resumes with exactly one new version,
// one promotion and one ledger row. The rewrite reply is slowed down to open the first window.

let rig: CrashRig;

before(async () => {
  rig = await startCrashRig('improve-crash', [slowed('scenarios/improve-slugify.json', (r) => r.match?.purpose === 'improve.rewrite')]);
});

after(() => rig?.close());

it('a worker SIGKILLed while the rewrite is written and again as v2 lands resumes to exactly one promoted version', async () => {
  const { db, model, client, cfg, env, home } = rig;
  let worker: ChildProcess = startWorkerProcess(env);
  try {
    const forged = (await (
      await client.workflow.start('forgeWorkflow', {
        taskQueue: cfg.FORGE_TASK_QUEUE,
        workflowId: `improve-crash-forge-${Date.now()}`,
        args: [{ need: 'turn a title into a URL slug', sandboxQueue: cfg.FORGE_SANDBOX_QUEUE }],
      })
    ).result()) as ForgeOutcome;
    assert.equal(forged.status, 'registered');

    const workflowId = `improve-slugify-crash-${Date.now()}`;
    const handle = await client.workflow.start('improveWorkflow', {
      taskQueue: cfg.FORGE_TASK_QUEUE,
      workflowId,
      args: [{ tool: 'slugify', trigger: 'manual', reason: 'it must handle accented titles', sandboxQueue: cfg.FORGE_SANDBOX_QUEUE }],
    });

    // Kill 1: the model is writing the rewrite.
    await until('the rewrite is being written', () => model.requests.some((r) => r.headers['x-forge-purpose'] === 'improve.rewrite'));
    await stopWorkerProcess(worker, 'SIGKILL');
    worker = startWorkerProcess(env);

    // Kill 2: the moment v2's row exists (the promotion is under way or just done).
    await until(
      'v2 is registered',
      async () => (await db.sql`select 1 from tool_versions where name = 'slugify' and version = 2`).length > 0,
      180_000,
    );
    await stopWorkerProcess(worker, 'SIGKILL');
    worker = startWorkerProcess(env);

    const outcome = (await handle.result()) as ImproveOutcome;
    assert.equal(outcome.status, 'promoted', outcome.reason);
    assert.deepEqual([outcome.fromVersion, outcome.toVersion], [1, 2]);
    assert.ok((await activityAttempts(client, workflowId, 'rewriteTool')) >= 2, 'the killed rewrite was retried');

    const versions = await db.sql<{ version: number; created_by: string }[]>`
      select version, created_by from tool_versions where name = 'slugify' order by version`;
    assert.deepEqual(
      versions.map((v) => [v.version, v.created_by]),
      [
        [1, 'forge'],
        [2, 'rewrite'],
      ],
    );
    assert.deepEqual(
      fs.readdirSync(path.join(home, 'tools', 'slugify')).filter((d) => /^v\d+$/.test(d)),
      ['v1', 'v2'],
    );
    assert.equal(fs.readFileSync(path.join(home, 'tools', 'slugify', 'current'), 'utf8'), 'v2\n');
    const promotions = await db.sql`select version from audit_log where kind = 'promotion' and tool = 'slugify'`;
    assert.deepEqual(
      promotions.map((p) => p.version),
      [2],
    );
    const runs = await db.sql<{ status: string; to_version: number }[]>`select status, to_version from improve_runs where tool = 'slugify'`;
    assert.deepEqual(
      runs.map((r) => [r.status, r.to_version]),
      [['promoted', 2]],
    );
  } finally {
    await stopWorkerProcess(worker, 'SIGTERM');
  }
});
