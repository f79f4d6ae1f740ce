import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import type { ForgeOutcome, ForgeProgress } from '../../domain/forge.ts';
import type { TaskResult } from '../../domain/task.ts';
import { dockerClient } from '../../infra/docker.ts';
import { sleep } from '../../infra/processes.ts';
import { sandboxDeploymentName } from '../../services/config.ts';
import { createKillSwitch, freezeForge } from '../../services/control/kill-switch.ts';
import { workflowBundle } from '../../workers/bundle.ts';
import { decideApprovalUpdate, forgeProgressQuery, progressQuery } from '../../workflows/definitions.ts';
import { finishWithApprovals } from '../helpers/cli.ts';
import { type Harness, startHarness } from '../helpers/harness.ts';

// Forge scenarios on the scripted model: real Temporal, Postgres and Docker; the model's replies
// come from scenarios/*.json (demo.json last: its catch-all answers any task turn).
const scenarioFiles = ['forge-word-count', 'forge-repair', 'forge-always-broken', 'forge-exchange-rate', 'demo'].map(
  (f) => `scenarios/${f}.json`,
);

type ForgeProgressView = ForgeProgress & { frozen: boolean; pendingApproval?: string };

describe('forge scenarios', () => {
  let h: Harness;
  let db: Harness['db'];
  let model: Harness['model'];
  let client: Harness['client'];
  let cfg: Harness['cfg'];
  let home: string;
  let n = 0;

  before(async () => {
    h = await startHarness({ scenarioFiles, env: { FORGE_POOL_SIZE: '1', FORGE_DAILY_FORGE_BUDGET: '20' } });
    ({ db, model, client, cfg, home } = h);
  });

  after(() => h.close());

  const forge = (need: string) =>
    client.workflow.start('forgeWorkflow', {
      taskQueue: cfg.FORGE_TASK_QUEUE,
      workflowId: `forge-s${++n}-${Date.now()}`,
      args: [{ need, sandboxQueue: cfg.FORGE_SANDBOX_QUEUE }],
    });
  const task = (text: string) =>
    client.workflow.start('taskWorkflow', {
      taskQueue: cfg.FORGE_TASK_QUEUE,
      workflowId: `task-s${++n}-${Date.now()}`,
      args: [{ task: text, sandboxQueue: cfg.FORGE_SANDBOX_QUEUE }],
    });
  const versions = async (name: string) =>
    (await db.sql`select version from tool_versions where name = ${name} order by version`).map((r) => r.version as number);

  it('forges a tool that passes first time and registers it as files + rows', async () => {
    const outcome = (await (
      await forge('count the words in a text: input text, output words, characters and lines')
    ).result()) as ForgeOutcome;
    assert.equal(outcome.status, 'registered');
    assert.deepEqual(
      [outcome.status === 'registered' && outcome.name, outcome.status === 'registered' && outcome.version, outcome.attempts],
      ['count_words', 1, 1],
    );
    assert.deepEqual(await versions('count_words'), [1]);
    const dir = path.join(home, 'tools', 'count_words', 'v1');
    for (const f of ['tool.ts', 'tool.test.ts', 'manifest.json']) assert.ok(fs.existsSync(path.join(dir, f)), `${f} on disk`);
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    assert.equal(manifest.sideEffect, 'read');
    assert.deepEqual(manifest.permissions, { network: [], env: [] });
  });

  it('repairs an implementation that fails its tests, then registers the repaired one', async () => {
    const handle = await forge('fetch the exchange rate between two currencies (repair demo)');
    const outcome = (await handle.result()) as ForgeOutcome;
    assert.equal(outcome.status, 'registered', JSON.stringify(outcome).slice(0, 2000));
    assert.equal(outcome.attempts, 2);
    const progress = await handle.query(forgeProgressQuery);
    assert.deepEqual(
      progress.attempts.map((a) => a.passed),
      [false, true],
    );
    assert.match(progress.attempts[0]!.summary, /mock/i, 'the first failure was found by the mock-API tests');
    const source = fs.readFileSync(path.join(home, 'tools', 'fetch_exchange_rate_repair_demo', 'v1', 'tool.ts'), 'utf8');
    assert.match(source, /retry-after/i, 'the registered source is the repaired one');
  });

  it('gives up after three failed repairs and leaves the catalog untouched', async () => {
    const before = await db.sql`select name, version from tool_versions order by name, version`;
    const handle = await forge('turn a title into a URL slug (always broken demo)');
    const outcome = (await handle.result()) as ForgeOutcome;
    assert.equal(outcome.status, 'failed');
    assert.match(outcome.status === 'failed' ? outcome.reason : '', /verification failed after 3 repair/);
    assert.equal(outcome.status === 'failed' && outcome.attempts.length, 4);
    assert.deepEqual(await db.sql`select name, version from tool_versions order by name, version`, before);
    assert.equal(fs.existsSync(path.join(home, 'tools', 'slugify_title')), false, 'no folder for the failed tool');
    const [run] = await db.sql`select status, reason from forge_runs where workflow_id = ${handle.workflowId}`;
    assert.equal(run?.status, 'failed');
  });

  it('reuses an existing tool for a paraphrased request instead of forging', async () => {
    const handle = await task('how many words are in "the quick brown fox jumps"?');
    const result = await finishWithApprovals(h, handle);
    const call = result.calls.find((c) => c.tool === 'count_words');
    assert.equal(call?.tool, 'count_words');
    assert.equal(call?.status, 'succeeded', JSON.stringify(result.calls));
    assert.deepEqual((call?.output as { words: number } | undefined)?.words, 5);
    assert.deepEqual(await versions('count_words'), [1], 'no new version was forged');
    const [inv] =
      await db.sql`select tool, version, success, latency_ms, input_hash, output_hash from invocations where workflow_id = ${handle.workflowId}`;
    assert.equal(inv?.tool, 'count_words');
    assert.equal(inv?.success, true);
    assert.ok(inv?.input_hash && inv?.output_hash);
    const [audit] = await db.sql`select reasoning, task_context from audit_log where workflow_id = ${handle.workflowId}`;
    assert.match(String(audit?.reasoning), /count_words counts words/);
  });

  it('a write waits for a person, refuses a decision for the wrong approval, and proceeds when approved', async () => {
    const handle = await task('create a note titled groceries with milk and eggs');
    const approval = await waitForApproval(handle.workflowId);
    assert.equal(approval.kind, 'write');
    assert.equal(approval.tool, 'create_note');
    assert.equal((await handle.query(progressQuery)).phase, 'awaiting-approval');

    await assert.rejects(
      handle.executeUpdate(decideApprovalUpdate, { args: [{ approvalId: 'someone-else.write.1', approve: true }] }),
      (err: unknown) =>
        err instanceof WorkflowUpdateFailedError && /waits for approval .* not someone-else/.test(String(err.cause?.message)),
    );
    await handle.executeUpdate(decideApprovalUpdate, { args: [{ approvalId: approval.id, approve: true, by: 'tester' }] });
    const result = (await handle.result()) as TaskResult;
    assert.equal(result.calls.find((c) => c.tool === 'create_note')?.status, 'succeeded');
    const [row] = await db.sql`select status, decided_by from approvals where id = ${approval.id}`;
    assert.deepEqual([row?.status, row?.decided_by], ['approved', 'tester']);
  });

  it('freeze during a running forge kills its sandbox, holds every side effect until thaw, then the forge completes once', async () => {
    const handle = await forge('fetch the exchange rate between two currencies');
    const waitFor = async (what: string, ok: (p: ForgeProgressView) => boolean) => {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const p = await handle.query(forgeProgressQuery);
        if (ok(p)) return p;
        if (Date.now() > deadline) throw new Error(`forge never reached: ${what} (phase ${p.phase})`);
        await sleep(50);
      }
    };
    await waitFor('verifying', (p) => p.phase === 'verifying');
    const { killedSandboxes } = await freezeForge({
      sql: db.sql,
      docker: dockerClient(cfg),
      deployment: sandboxDeploymentName(cfg),
      by: 'tester',
      reason: 'scenario test',
    });
    try {
      assert.ok(killedSandboxes >= 1, 'the running verification sandbox was killed');
      const frozen = await waitFor('frozen', (p) => p.frozen);
      assert.equal(frozen.phase, 'verifying', 'frozen where it was');
      const calls = model.requests.length;
      await sleep(4000);
      assert.equal(model.requests.length, calls, 'no model call while frozen');
      assert.deepEqual(await versions('fetch_exchange_rate'), [], 'nothing registered while frozen');
      assert.equal((await handle.query(forgeProgressQuery)).attempts.length, 0, 'the killed run does not count as a failed verification');
    } finally {
      await createKillSwitch(db.sql).thaw('tester');
    }
    const outcome = (await handle.result()) as ForgeOutcome;
    assert.equal(outcome.status, 'registered');
    assert.equal(outcome.attempts, 1, 'no repair was triggered by the freeze');
    assert.deepEqual(await versions('fetch_exchange_rate'), [1]);
  });

  it('every workflow history of these scenarios replays deterministically against the current code', async () => {
    const bundle = await workflowBundle(path.join(home, 'cache'));
    const executions = client.workflow.list({ query: `TaskQueue = "${cfg.FORGE_TASK_QUEUE}" AND ExecutionStatus != "Running"` });
    const histories = (async function* () {
      for await (const e of executions)
        yield { workflowId: e.workflowId, history: await client.workflow.getHandle(e.workflowId, e.runId).fetchHistory() };
    })();
    let replayed = 0;
    for await (const result of Worker.runReplayHistories({ workflowBundle: bundle, replayName: 'forge-scenarios' }, histories)) {
      assert.equal(result.error, undefined, `${result.workflowId} does not replay: ${String(result.error)}`);
      replayed++;
    }
    // 4 forges, 2 tasks and the forge one of them started as a child
    assert.ok(replayed >= 7, `replayed ${replayed} histories, expected the 7 this file ran`);
  });

  async function waitForApproval(workflowId: string) {
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      const [row] = await db.sql<
        { id: string; kind: string; tool: string }[]
      >`select id, kind, tool from approvals where workflow_id = ${workflowId} and status = 'pending'`;
      if (row) return row;
      const { status } = await client.workflow.getHandle(workflowId).describe();
      if (status.name !== 'RUNNING') throw new Error(`${workflowId} ended (${status.name}) without asking for approval`);
      await sleep(250);
    }
    throw new Error(`no approval requested by ${workflowId}`);
  }
});
