import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { ReplayRequest, ReplayResult } from '../../domain/audit.ts';
import { FROZEN_FAILURE } from '../../domain/errors.ts';
import type { ForgeOutcome } from '../../domain/forge.ts';
import { CYCLE_KIND, TOOL_NAME } from '../../domain/search-attributes.ts';
import { listAudit } from '../../services/catalog/audit.ts';
import { createRegistry } from '../../services/catalog/registry.ts';
import { createKillSwitch } from '../../services/control/kill-switch.ts';
import { finishWithApprovals, harnessCli } from '../helpers/cli.ts';
import { type Harness, startHarness } from '../helpers/harness.ts';

// The audit log a person reads and replays (seed 000, principle 3), on a real Forge: Temporal,
// Postgres, Docker and the scripted model. count_words is forged on first use by the word-count
// scenario; task-tools plans the paraphrased task and fills the tool's input.
const scenarioFiles = ['forge-word-count', 'demo'].map((f) => `scenarios/${f}.json`);
const WORDS_TASK = 'how many words are in "the quick brown fox jumps"?';
const NOTE_TASK = 'create a note titled groceries with milk and eggs';

describe('audit log', () => {
  let h: Harness;
  let callId: number;
  let taskWorkflowId: string;
  let n = 0;

  const forge = (...args: string[]) => harnessCli(h, { user: 'auditor', timeoutMs: 180_000 })(...args);

  const startTask = (task: string) =>
    h.client.workflow.start('taskWorkflow', {
      taskQueue: h.cfg.FORGE_TASK_QUEUE,
      workflowId: `audit-task-${++n}-${Date.now()}`,
      args: [{ task, sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE }],
    });
  /** Bypasses the CLI's own checks, to prove the workflow refuses by itself. */
  const startReplay = (request: Omit<ReplayRequest, 'sandboxQueue'>) =>
    h.client.workflow.start('replayWorkflow', {
      taskQueue: h.cfg.FORGE_TASK_QUEUE,
      workflowId: `audit-replay-${++n}-${Date.now()}`,
      args: [{ ...request, sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE, requestedBy: 'tester' }],
    });
  const invocationCount = async (tool: string) =>
    (await h.db.sql<{ n: number }[]>`select count(*)::int as n from invocations where tool = ${tool}`)[0]!.n;
  const replaysOf = async (id: number) =>
    h.db.sql<{ id: string; kind: string; workflow_id: string; task_context: { replayOf: number; same: boolean } }[]>`
      select id, kind, workflow_id, task_context from audit_log where kind = 'replay' and (task_context->>'replayOf')::bigint = ${id} order by id`;

  before(async () => {
    h = await startHarness({ scenarioFiles });
    // Forge the tool first, as `forge forge` would, so the task's one call is the reuse this file audits.
    const forged = (await (
      await h.client.workflow.start('forgeWorkflow', {
        taskQueue: h.cfg.FORGE_TASK_QUEUE,
        workflowId: `audit-forge-${Date.now()}`,
        args: [
          { need: 'count the words in a text: input text, output words, characters and lines', sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE },
        ],
      })
    ).result()) as ForgeOutcome;
    assert.equal(forged.status, 'registered', JSON.stringify(forged).slice(0, 2000));
    const handle = await startTask(WORDS_TASK);
    taskWorkflowId = handle.workflowId;
    const result = await finishWithApprovals(h, handle);
    const call = result.calls.find((c) => c.tool === 'count_words');
    assert.equal(call?.status, 'succeeded', JSON.stringify(result.calls));
    const [entry] = await listAudit(h.db.sql, { workflowId: taskWorkflowId, kind: 'tool_call' });
    assert.ok(entry, 'the call was audited');
    callId = entry.id;
  });

  after(() => h?.close());

  it('lists the call with its reasoning, task context, input and output', async () => {
    const [entry] = await listAudit(h.db.sql, { tool: 'count_words' });
    assert.equal(entry?.id, callId, 'newest first');
    assert.equal(entry.kind, 'tool_call');
    assert.deepEqual([entry.tool, entry.version, entry.success, entry.workflowId], ['count_words', 1, true, taskWorkflowId]);
    assert.match(String(entry.reasoning), /count_words counts words/);
    assert.deepEqual(entry.taskContext, { task: WORDS_TASK });
    assert.deepEqual(entry.input, { text: 'the quick brown fox jumps' });
    assert.equal((entry.output as { words: number }).words, 5);
    assert.ok(entry.latencyMs !== null && entry.latencyMs >= 0);

    // Independent CLI runs go in parallel: each pays the CLI's start-up of a few seconds.
    const [json, text, none] = await Promise.all([
      forge('audit', '--tool', 'count_words', '--json'),
      forge('audit', '--workflow', taskWorkflowId),
      forge('audit', '--tool', 'no_such_tool'),
    ]);
    assert.equal(json.code, 0, json.stderr);
    const out = json.json() as { ok: boolean; entries: Array<Record<string, unknown>> };
    assert.equal(out.ok, true);
    assert.deepEqual(out.entries[0], entry, 'the --json listing is the entry, whole');

    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`^#${callId}  \\S+  tool_call  count_words@1  \\d+ ms  ok$`, 'm'));
    assert.match(text.stdout, /^ {4}reasoning {2}count_words counts words/m);
    assert.match(text.stdout, /^ {4}task {7}how many words are in "the quick brown fox jumps"\?$/m);
    assert.match(text.stdout, /^ {4}input {6}\{"text":"the quick brown fox jumps"\}$/m);
    assert.match(text.stdout, /^ {4}output {5}\{.*"words":5.*\}$/m);

    assert.equal(none.code, 0);
    assert.match(none.stdout, /no audit entries match/);
  });

  it('shows one entry whole, with the hash replays compare', async () => {
    const [json, text] = await Promise.all([forge('audit', 'show', `#${callId}`, '--json'), forge('audit', 'show', String(callId))]);
    assert.equal(json.code, 0, json.stderr);
    const { entry } = json.json() as { entry: { id: number; output: { words: number } } };
    assert.equal(entry.id, callId);
    assert.equal(entry.output.words, 5);

    assert.equal(text.code, 0, text.stderr);
    const [inv] = await h.db.sql<{ output_hash: string }[]>`select output_hash from invocations where workflow_id = ${taskWorkflowId}`;
    assert.ok(text.stdout.includes(`output (sha256 ${inv!.output_hash})`), 'the same hash the registry metered');
    assert.match(text.stdout, /"task": "how many words are in \\"the quick brown fox jumps\\"\?"/);
  });

  it('replays the call in the sandbox: same output, audited as a replay, never an invocation', async () => {
    const registry = createRegistry({ sql: h.db.sql, root: `${h.home}/tools` });
    const before = { invocations: await invocationCount('count_words'), stats: await registry.stats('count_words') };

    const run = await forge('audit', 'replay', String(callId), '--json');
    assert.equal(run.code, 0, run.stderr);
    const result = run.json() as unknown as ReplayResult & { ok: boolean };
    assert.equal(result.ok, true);
    assert.deepEqual(
      [result.auditId, result.tool, result.version, result.succeeded, result.same, result.diff],
      [callId, 'count_words', 1, true, true, ''],
    );
    assert.equal(result.replayOutputHash, result.originalOutputHash);
    const [inv] = await h.db.sql<{ output_hash: string }[]>`select output_hash from invocations where workflow_id = ${taskWorkflowId}`;
    assert.equal(result.originalOutputHash, inv?.output_hash, 'compared with the hash the registry metered');
    assert.deepEqual(result.output, { words: 5, characters: 25, lines: 1 });

    const [replay] = await replaysOf(callId);
    assert.equal(Number(replay?.id), result.replayAuditId);
    assert.equal(replay?.workflow_id, result.workflowId);
    assert.deepEqual([replay?.task_context.replayOf, replay?.task_context.same], [callId, true]);

    assert.equal(await invocationCount('count_words'), before.invocations, 'a replay is not an invocation');
    assert.deepEqual(await registry.stats('count_words'), before.stats, 'nor does it move the trust level');

    const description = await h.client.workflow.getHandle(result.workflowId).describe();
    assert.equal(description.typedSearchAttributes.get(CYCLE_KIND), 'replay', 'findable in the Temporal UI as a replay');
    assert.equal(description.typedSearchAttributes.get(TOOL_NAME), 'count_words');

    const text = await forge('audit', 'replay', String(callId));
    assert.equal(text.code, 0, text.stderr);
    assert.match(
      text.stdout,
      new RegExp(`^replaying #${callId}: count_words@1 on \\{"text":"the quick brown fox jumps"\\} \\(workflow replay-${callId}-`, 'm'),
    );
    assert.match(text.stdout, /^same output \(sha256 [0-9a-f]{16}…\), ran in \d+ ms; audited as #\d+$/m);
    assert.equal((await replaysOf(callId)).length, 2, 'each replay is audited once');

    const listed = await forge('audit', '--kind', 'replay', '--limit', '1');
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, / {2}replay {2}count_words@1 {2}\d+ ms {2}ok$/m);
    assert.match(listed.stdout, new RegExp(`^ {4}task {7}replay of #${callId} \\(same output\\), requested by auditor$`, 'm'));
  });

  it('refuses a replay while Forge is frozen, from the CLI and in the workflow itself', async () => {
    const killSwitch = createKillSwitch(h.db.sql);
    const replaysBefore = (await replaysOf(callId)).length;
    await killSwitch.freeze('tester', 'audit test');
    try {
      const [json, text] = await Promise.all([
        forge('audit', 'replay', String(callId), '--json'),
        forge('audit', 'replay', String(callId)),
      ]);
      assert.equal(json.code, 1);
      const out = json.json();
      assert.deepEqual([out.ok, out.error], [false, 'FORGE_FROZEN']);
      assert.match(String(out.message), /^Forge is frozen: replay of #\d+ refused \(frozen by tester since /);
      assert.match(String(out.fix), /forge thaw/);

      assert.equal(text.code, 1);
      assert.match(text.stderr, /^error: Forge is frozen: replay of #\d+ refused/m);
      assert.match(text.stderr, /^ {2}fix: run forge thaw, then try again$/m);

      const handle = await startReplay({ auditId: callId });
      await assert.rejects(handle.result(), (err: unknown) => {
        assert.ok(err instanceof WorkflowFailedError);
        assert.ok(err.cause instanceof ApplicationFailure);
        assert.equal(err.cause.type, FROZEN_FAILURE);
        assert.match(err.cause.message, /Forge is frozen by tester .*replay of audit entry #\d+ refused \(run forge thaw to resume\)/);
        return true;
      });
      assert.equal((await replaysOf(callId)).length, replaysBefore, 'nothing replayed while frozen');
    } finally {
      await killSwitch.thaw('tester');
    }
  });

  it('replays a write only with explicit consent', async () => {
    const result = await finishWithApprovals(h, await startTask(NOTE_TASK));
    assert.equal(result.calls.find((c) => c.tool === 'create_note')?.status, 'succeeded', JSON.stringify(result.calls));
    const [call] = await listAudit(h.db.sql, { workflowId: result.workflowId, kind: 'tool_call' });
    assert.ok(call);

    const refused = await forge('audit', 'replay', String(call.id), '--json');
    assert.equal(refused.code, 1);
    const out = refused.json();
    assert.equal(out.error, 'REPLAY_NEEDS_CONSENT');
    assert.match(String(out.message), /create_note@1, which writes: replaying it repeats the write/);
    assert.equal(out.fix, `if repeating the write is what you want: forge audit replay ${call.id} --allow-write`);

    await assert.rejects((await startReplay({ auditId: call.id })).result(), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure);
      assert.equal(err.cause.type, 'REPLAY_NEEDS_CONSENT');
      return true;
    });
    assert.equal((await replaysOf(call.id)).length, 0, 'nothing ran without consent');

    const consented = await forge('audit', 'replay', String(call.id), '--allow-write', '--json');
    assert.equal(consented.code, 0, consented.stderr);
    assert.deepEqual([consented.json().same, consented.json().succeeded], [true, true], 'create_note is deterministic');
    assert.equal((await replaysOf(call.id)).length, 1);
  });

  it('says what is wrong with an id it cannot replay', async () => {
    const registry = createRegistry({ sql: h.db.sql, root: `${h.home}/tools` });
    const { id: editId } = await registry.recordAudit({
      idempotencyKey: `audit-test-edit-${Date.now()}`,
      kind: 'human_edit',
      tool: 'count_words',
      version: 1,
    });
    const [missing, edit, malformed] = await Promise.all([
      forge('audit', 'replay', '999999', '--json'),
      forge('audit', 'replay', String(editId), '--json'),
      forge('audit', 'show', 'latest', '--json'),
    ]);
    assert.equal(missing.code, 1);
    assert.deepEqual([missing.json().error, missing.json().fix], ['AUDIT_NOT_FOUND', 'list entries with: forge audit']);

    assert.equal(edit.code, 1);
    assert.equal(edit.json().error, 'AUDIT_NOT_REPLAYABLE');
    assert.match(String(edit.json().message), /it is an entry of kind human_edit, not a tool call/);

    assert.equal(malformed.code, 2, 'bad usage');
    assert.equal(malformed.json().error, 'INPUT_INVALID');
    assert.match(String(malformed.json().message), /"latest" is not an audit id like 12 or #12/);
  });
});
