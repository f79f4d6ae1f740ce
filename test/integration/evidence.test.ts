import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CURATION_SCHEDULE_ID, ensureCurationSchedule } from '../../app/schedule.ts';
import type { CurateOutcome, FailureEvidence } from '../../domain/evidence.ts';
import { curationRunKey, scheduledTimeOfWorkflowId } from '../../domain/evidence.ts';
import type { TaskResult } from '../../domain/task.ts';
import type { ScenarioInput } from '../../scripted-model/scenario.ts';
import { createApprovalLedger } from '../../services/control/approvals.ts';
import { createEvidenceStore } from '../../services/runs/evidence.ts';
import { harnessCli } from '../helpers/cli.ts';
import { type Harness, startHarness } from '../helpers/harness.ts';
import { activityAttempts } from '../helpers/temporal.ts';

// Failure evidence and its nightly curation (issue 11, items 1 and 2) on a real Forge: Temporal,
// Postgres and the scripted model. The model's turns are scripted here, keyed on the task's words;
// no demo.json, so a task no rule knows makes the model API refuse it (the workflow's own failure).

/** temporal.api.enums.v1.ParentClosePolicy, as a history event carries it */
const PARENT_CLOSE_POLICY_ABANDON = 2;

const SLIP_TASK = 'frobnicate the widget';
const STOP_TASK = 'spin the widget forever';
const CLEAN_TASK = 'say hello to the widget';
const BROKEN_TASK = 'a task no rule of the model knows';

const turns: ScenarioInput = {
  name: 'evidence',
  rules: [
    // a tool it was not offered, then an answer without it: the task fails on the model's slip
    {
      match: { purpose: 'task.turn', first: SLIP_TASK, user: 'frobnicator is not one of the offered tools' },
      responses: [{ text: 'I could not frobnicate the widget.' }],
    },
    { match: { purpose: 'task.turn', first: SLIP_TASK }, responses: [{ tool_use: { name: 'frobnicator', input: { widget: 'w' } } }] },
    // never answers: the turn bound stops it
    { match: { purpose: 'task.turn', first: STOP_TASK }, responses: [{ tool_use: { name: 'spinner', input: {} } }] },
    { match: { purpose: 'task.turn', first: CLEAN_TASK }, responses: [{ text: 'Hello, widget.' }] },
  ],
};

describe('failure evidence: captured as tasks end, given as feedback, curated nightly', () => {
  let h: Harness;
  let forge: ReturnType<typeof harnessCli>;
  let n = 0;
  const ids: Record<'slip' | 'slipAgain' | 'stopped' | 'clean' | 'broken', string> = {
    slip: '',
    slipAgain: '',
    stopped: '',
    clean: '',
    broken: '',
  };

  before(async () => {
    h = await startHarness({ scenarios: [turns] });
    forge = harnessCli(h, { user: 'ana', timeoutMs: 60_000 });
  });

  after(async () => {
    await h.client.schedule
      .getHandle(CURATION_SCHEDULE_ID)
      .delete()
      .catch(() => {});
    await h.close();
  });

  async function run(task: string, limits?: { maxTurns: number }): Promise<{ workflowId: string; result?: TaskResult; error?: Error }> {
    const workflowId = `task-evidence-${++n}-${Date.now()}`;
    const handle = await h.client.workflow.start('taskWorkflow', {
      taskQueue: h.cfg.FORGE_TASK_QUEUE,
      workflowId,
      args: [{ task, sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE, ...(limits ? { limits } : {}) }],
    });
    try {
      return { workflowId, result: (await handle.result()) as TaskResult };
    } catch (error) {
      return { workflowId, error: error as Error };
    }
  }

  const rowsOf = (workflowId: string) =>
    h.db.sql<
      {
        id: string;
        idempotency_key: string;
        source: string;
        failure_type: string;
        severity: number;
        expectations: unknown;
        trace: FailureEvidence['trace'];
      }[]
    >`select id, idempotency_key, source, failure_type, severity, expectations, trace from failure_evidence
      where workflow_id = ${workflowId} order by id`;

  it('a failed task writes one evidence row, even when the activity that writes it is retried', async () => {
    // The first write of this task's evidence fails (a sequence is outside the transaction, so it counts attempts).
    const workflowId = `task-evidence-${n + 1}-`;
    await h.db.sql.unsafe(`
      create sequence evidence_fault_attempts;
      create function evidence_fault() returns trigger language plpgsql as $$
      begin
        if new.workflow_id like '${workflowId}%' and nextval('evidence_fault_attempts') = 1 then
          raise exception 'injected: the database went away mid-write';
        end if;
        return new;
      end $$;
      create trigger evidence_fault before insert on failure_evidence for each row execute function evidence_fault();`);
    try {
      const slip = await run(SLIP_TASK);
      ids.slip = slip.workflowId;
      assert.ok(slip.workflowId.startsWith(workflowId));
      assert.equal(slip.result?.status, 'failed', slip.result?.answer);
      assert.ok((await activityAttempts(h.client, slip.workflowId, 'recordFailureEvidence')) >= 2, 'the evidence write was retried');
    } finally {
      await h.db.sql.unsafe(
        'drop trigger evidence_fault on failure_evidence; drop function evidence_fault(); drop sequence evidence_fault_attempts;',
      );
    }
    const rows = await rowsOf(ids.slip);
    assert.equal(rows.length, 1, 'one row, however many attempts');
    const [row] = rows;
    assert.equal(row?.idempotency_key, `${ids.slip}:task`);
    assert.equal(row?.failure_type, 'routing', 'it called a tool it was not offered');
    assert.equal(row?.source, 'call_failed');
    assert.deepEqual(row?.expectations, [{ kind: 'completes' }]);
    assert.equal(row?.trace.task, SLIP_TASK);
    assert.deepEqual(
      row?.trace.calls.map((c) => [c.tool, c.status, c.input]),
      [['frobnicator', 'not-run', { widget: 'w' }]],
    );
    assert.equal(row?.trace.answer, 'I could not frobnicate the widget.');

    // A retry after the write committed (its completion lost with the worker) writes nothing either.
    const again = await createEvidenceStore({ sql: h.db.sql }).recordTaskEvidence({
      workflowId: ids.slip,
      result: {
        task: SLIP_TASK,
        status: 'failed',
        answer: 'I could not frobnicate the widget.',
        calls: row!.trace.calls as never,
        forged: [],
      },
    });
    assert.deepEqual(again, { ids: [Number(row?.id)], created: 0 });
    assert.equal((await rowsOf(ids.slip)).length, 1);
  });

  it('a stopped task is a state failure, a workflow that failed is one below the curation floor, a clean task leaves none', async () => {
    const stopped = await run(STOP_TASK, { maxTurns: 1 });
    ids.stopped = stopped.workflowId;
    assert.equal(stopped.result?.status, 'stopped');
    const [s] = await rowsOf(ids.stopped);
    assert.equal(s?.failure_type, 'state');
    assert.equal(s?.source, 'task_failed');

    const broken = await run(BROKEN_TASK);
    ids.broken = broken.workflowId;
    assert.ok(broken.error, 'the model API refused the turn: the workflow failed');
    const [b] = await rowsOf(ids.broken);
    assert.equal(b?.failure_type, 'state');
    assert.ok(b!.severity < 0.5);

    const clean = await run(CLEAN_TASK);
    ids.clean = clean.workflowId;
    assert.equal(clean.result?.status, 'completed');
    assert.equal((await rowsOf(ids.clean)).length, 0);
    assert.equal(await activityAttempts(h.client, ids.clean, 'recordFailureEvidence'), 0, 'nothing to record, no activity');

    ids.slipAgain = (await run(SLIP_TASK)).workflowId;
    assert.equal((await rowsOf(ids.slipAgain)).length, 1);
  });

  it('forge feedback turns a person’s word on a task into evidence, once, and refuses an unknown task or tool', async () => {
    const given = await forge(
      'feedback',
      ids.clean,
      '--bad',
      'it should greet the widget by name',
      '--expect-answer',
      'Hello, Widget',
      '--json',
    );
    assert.equal(given.code, 0, given.stderr);
    const out = given.json() as { ok: boolean; created: boolean; evidence: FailureEvidence };
    assert.equal(out.created, true);
    assert.equal(out.evidence.source, 'feedback');
    assert.equal(out.evidence.failureType, 'output');
    assert.equal(out.evidence.severity, 0.8);
    assert.equal(out.evidence.expected, 'it should greet the widget by name');
    assert.equal(out.evidence.happened, 'Hello, widget.', 'what happened: the task’s stored answer');
    assert.deepEqual(out.evidence.expectations, [
      { kind: 'answer-contains', text: 'Hello, Widget' },
      { kind: 'completes', description: 'it should greet the widget by name' },
    ]);
    assert.equal(out.evidence.trace.task, CLEAN_TASK);

    const repeated = await forge(
      'feedback',
      ids.clean,
      '--bad',
      'it should greet the widget by name',
      '--expect-answer',
      'Hello, Widget',
      '--json',
    );
    const again = repeated.json() as { created: boolean; evidence: FailureEvidence };
    assert.equal(again.created, false);
    assert.equal(again.evidence.id, out.evidence.id);

    const unknownTool = await forge('feedback', ids.slip, '--bad', 'use the frobnicator', '--expect-tool', 'frobnicator', '--json');
    assert.equal(unknownTool.code, 1);
    assert.equal(unknownTool.json().error, 'TOOL_NOT_FOUND');
    // Once the catalog holds it, the same feedback is routing evidence.
    await h.db.sql`insert into tools (name, description, side_effect) values ('frobnicator', 'frobnicates a widget', 'read')`;
    const routed = await forge('feedback', ids.slip, '--bad', 'use the frobnicator', '--expect-tool', 'frobnicator');
    assert.equal(routed.code, 0, routed.stderr);
    assert.match(routed.stdout, /recorded as failure evidence #\d+ \(routing, severity 0\.8\)/);
    assert.match(routed.stdout, /a replay passes when: uses frobnicator; completes \(use the frobnicator\)/);

    const unknownTask = await forge('feedback', 'task-nobody-ran', '--bad', 'it should have worked', '--json');
    assert.equal(unknownTask.code, 1);
    const refusal = unknownTask.json();
    assert.equal(refusal.error, 'TASK_NOT_FOUND');
    assert.match(String(refusal.message), /no task task-nobody-ran/);
    assert.match(String(refusal.fix), /forge run printed/);
    const noWords = await forge('feedback', ids.clean);
    assert.equal(noWords.code, 2, 'bad usage');
    assert.match(noWords.stderr, /usage: forge feedback <task-id> --bad/);
  });

  it('forge failures ls and show list the evidence and show one row whole', async () => {
    const ls = await forge('failures', 'ls', '--since', '1h', '--json');
    assert.equal(ls.code, 0, ls.stderr);
    const listed = ls.json() as { evidence: FailureEvidence[]; total: number };
    assert.equal(listed.total, 6, 'slip ×2, stopped, broken, two feedbacks');
    assert.deepEqual(
      listed.evidence.map((e) => e.id),
      [...listed.evidence.map((e) => e.id)].sort((a, b) => b - a),
      'newest first',
    );
    const text = await forge('failures');
    assert.match(text.stdout, new RegExp(`#\\d+ +\\S+ \\S+ +state +task_failed +0\\.60 +${STOP_TASK}`));

    const slipRow = listed.evidence.find((e) => e.workflowId === ids.slip && e.source === 'call_failed')!;
    const show = await forge('failures', 'show', String(slipRow.id), '--json');
    assert.deepEqual((show.json() as { evidence: FailureEvidence }).evidence, slipRow);
    const shown = await forge('failures', 'show', String(slipRow.id));
    assert.match(shown.stdout, /turn 1 frobnicator not-run \{"widget":"w"\}/);
    assert.match(shown.stdout, /a replay passes when: completes/);

    const missing = await forge('failures', 'show', '999999', '--json');
    assert.equal(missing.code, 1);
    assert.equal(missing.json().error, 'EVIDENCE_NOT_FOUND');
    const badSince = await forge('failures', '--since', 'yesterday');
    assert.equal(badSince.code, 2, 'bad usage');
    assert.match(badSince.stderr, /--since: "yesterday" is not a duration like 30m, 24h, 7d or 2w/);
  });

  /** The evolve children a curation started: their input, search attribute and parent close policy. */
  async function childrenOf(curationId: string) {
    const history = await h.client.workflow.getHandle(curationId).fetchHistory();
    return (history.events ?? []).flatMap((e) => {
      const a = e.startChildWorkflowExecutionInitiatedEventAttributes;
      return a ? [{ workflowId: a.workflowId!, type: a.workflowType?.name, policy: a.parentClosePolicy }] : [];
    });
  }

  it('curateWorkflow de-duplicates, batches by failure type within the night’s bound and starts one evolve cycle per batch, once', async () => {
    const asOf = new Date(Date.now() + 1000).toISOString();
    const start = (id: string) =>
      h.client.workflow.execute('curateWorkflow', {
        taskQueue: h.cfg.FORGE_TASK_QUEUE,
        workflowId: id,
        args: [{ sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE, asOf, maxBatches: 2 }],
      }) as Promise<CurateOutcome>;
    const curationId = `curate-test-${Date.now()}`;
    const outcome = await start(curationId);
    const runKey = curationRunKey(new Date(asOf));
    assert.equal(outcome.status, 'curated', outcome.reason);
    assert.equal(outcome.runKey, runKey);

    const byWorkflow = async (workflowId: string) => (await rowsOf(workflowId)).map((r) => Number(r.id));
    const [slipId] = await byWorkflow(ids.slip);
    const [slipAgainId] = await byWorkflow(ids.slipAgain);
    const feedbackIds = await byWorkflow(ids.clean);
    const [stoppedId] = await byWorkflow(ids.stopped);
    // routing: the slip (the second run of the same task folded into it) and the frobnicator feedback (0.8);
    // output: the greeting feedback (0.8). Routing holds two entries, so it comes first; the bound of 2
    // leaves state (the stopped task) for a later night.
    assert.deepEqual(
      outcome.batches.map((b) => [b.batchKey, b.failureType, b.evidenceIds, b.workflowId, b.started]),
      [
        [`${runKey}:routing`, 'routing', await byWorkflow(ids.slip), `evolve-${runKey}:routing`, true],
        [`${runKey}:output`, 'output', feedbackIds, `evolve-${runKey}:output`, true],
      ],
    );
    assert.equal(outcome.duplicates, 1, 'the second run of the same task with the same failure is folded into the first');
    assert.equal(outcome.deferred, 1, 'the stopped task waits: two batches a night here');
    assert.equal(outcome.considered, 6 - 1, 'the workflow that failed is below the curation floor');

    const marks = await h.db.sql<{ id: string; batch_key: string | null; duplicate_of: string | null; curated_at: Date | null }[]>`
      select id, batch_key, duplicate_of, curated_at from failure_evidence order by id`;
    const mark = (id: number) => marks.find((m) => Number(m.id) === id)!;
    assert.equal(mark(slipAgainId!).duplicate_of, String(slipId));
    assert.equal(mark(slipAgainId!).batch_key, `${runKey}:routing`);
    assert.equal(mark(stoppedId!).curated_at, null, 'deferred rows stay uncurated');

    // The children: evolve cycles with the batch's evidence ids, tagged ForgeCycleKind=evolve, abandoned by the parent.
    for (const b of outcome.batches) {
      const child = h.client.workflow.getHandle(b.workflowId);
      const described = await child.describe();
      assert.equal(described.type, 'evolveWorkflow');
      assert.deepEqual(described.searchAttributes.ForgeCycleKind, ['evolve']);
      const first = (await child.fetchHistory()).events?.[0]?.workflowExecutionStartedEventAttributes;
      const [input] = (first?.input?.payloads ?? []).map((p) => JSON.parse(Buffer.from(p.data!).toString('utf8')));
      assert.deepEqual(input, {
        batchKey: b.batchKey,
        failureType: b.failureType,
        evidenceIds: b.evidenceIds,
        sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE,
      });
    }
    assert.deepEqual(
      (await childrenOf(curationId)).map((c) => [c.workflowId, c.type, c.policy]),
      outcome.batches.map((b) => [b.workflowId, 'evolveWorkflow', PARENT_CLOSE_POLICY_ABANDON]),
    );

    // The same run again (a retry, a reset): the same batches, nothing marked twice, no second evolve cycle.
    const again = await start(`curate-test-again-${Date.now()}`);
    assert.deepEqual(
      again.batches.map((b) => [b.batchKey, b.evidenceIds, b.started]),
      outcome.batches.map((b) => [b.batchKey, b.evidenceIds, false]),
    );
    const marksAgain = await h.db.sql<{ id: string; curated_at: Date | null }[]>`select id, curated_at from failure_evidence order by id`;
    assert.deepEqual(
      marksAgain.map((m) => [m.id, m.curated_at?.toISOString() ?? null]),
      marks.map((m) => [m.id, m.curated_at?.toISOString() ?? null]),
    );
  });

  it('forge up’s schedule is created idempotently and can be listed, paused, unpaused and triggered', async () => {
    assert.deepEqual(await ensureCurationSchedule(h.cfg, h.client), { scheduleId: CURATION_SCHEDULE_ID, status: 'created' });
    assert.deepEqual(await ensureCurationSchedule(h.cfg, h.client), { scheduleId: CURATION_SCHEDULE_ID, status: 'unchanged' });

    const ls = await forge('schedule', 'ls', '--json');
    assert.equal(ls.code, 0, ls.stderr);
    const [s] = (ls.json() as { schedules: Record<string, unknown>[] }).schedules;
    assert.equal(s?.scheduleId, CURATION_SCHEDULE_ID);
    assert.equal(s?.exists, true);
    assert.equal(s?.workflowType, 'curateWorkflow');
    assert.equal(s?.cron, '0 3 * * *');
    assert.equal(s?.timeZone, 'UTC');
    assert.equal(s?.overlap, 'SKIP');
    assert.equal(s?.catchupWindowMs, 3_600_000);
    assert.equal(s?.paused, false);
    assert.match(String((s?.nextRuns as string[] | undefined)?.[0]), /T03:00:00\.000Z$/);

    const paused = await forge('schedule', 'pause', '--reason', 'investigating', '--json');
    assert.equal(paused.code, 0, paused.stderr);
    const pausedView = (paused.json() as { schedule: { paused: boolean; note: string } }).schedule;
    assert.equal(pausedView.paused, true);
    assert.equal(pausedView.note, 'paused by ana: investigating');
    assert.equal(paused.json().changed, true);
    // Paused again: said so, and the first pause's who and why stay.
    const again = await forge('schedule', 'pause', '--reason', 'again');
    assert.equal(again.code, 0, again.stderr);
    assert.equal(
      again.stdout.trim(),
      `${CURATION_SCHEDULE_ID} was already paused (paused by ana: investigating): nothing changed; resume it with: forge schedule unpause`,
    );
    const againJson = await forge('schedule', 'pause', '--json');
    const againView = againJson.json() as { changed: boolean; schedule: { note: string } };
    assert.deepEqual([againView.changed, againView.schedule.note], [false, 'paused by ana: investigating']);
    // A paused schedule lists no next times, which would not be taken: it says it is paused and how to resume it.
    const pausedLs = await forge('schedule');
    assert.equal(pausedLs.code, 0, pausedLs.stderr);
    assert.match(
      pausedLs.stdout,
      new RegExp(
        `^${CURATION_SCHEDULE_ID} {2}PAUSED .*\n {2}note: paused by ana: investigating\n {2}next: none while paused \\(forge schedule unpause resumes it\\)\n`,
      ),
    );
    assert.doesNotMatch(pausedLs.stdout, /next: \d{4}-/);
    const pausedJson = (await forge('schedule', '--json')).json() as { schedules: { nextRuns: string[] }[] };
    assert.deepEqual(pausedJson.schedules[0]?.nextRuns, []);
    // A changed configuration updates the schedule on the next forge up; a person's pause stays.
    const berlin = { ...h.cfg, FORGE_CURATION_CRON: '30 2 * * *', FORGE_CURATION_TZ: 'Europe/Berlin' };
    assert.equal((await ensureCurationSchedule(berlin, h.client)).status, 'updated');
    const updated = (await forge('schedule', '--json').then((r) => r.json())) as { schedules: Record<string, unknown>[] };
    assert.deepEqual(
      [updated.schedules[0]?.cron, updated.schedules[0]?.timeZone, updated.schedules[0]?.paused],
      ['30 2 * * *', 'Europe/Berlin', true],
    );
    assert.equal((await ensureCurationSchedule(h.cfg, h.client)).status, 'updated');

    const unpaused = await forge('schedule', 'unpause', '--json');
    assert.equal((unpaused.json() as { schedule: { paused: boolean } }).schedule.paused, false);
    assert.equal(unpaused.json().changed, true);
    const unpausedAgain = await forge('schedule', 'unpause');
    assert.match(unpausedAgain.stdout, new RegExp(`^${CURATION_SCHEDULE_ID} was already active( \\(.*\\))?: nothing changed\n$`));

    // Triggered now: a curation run keyed by its scheduled time takes the night's leftover (the stopped task).
    const triggered = await forge('schedule', 'trigger', '--json');
    assert.equal(triggered.code, 0, triggered.stderr);
    const workflowId = String(triggered.json().workflowId);
    assert.match(workflowId, /^forge-nightly-curation-\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    const outcome = (await h.client.workflow.getHandle(workflowId).result()) as CurateOutcome;
    assert.equal(outcome.runKey, curationRunKey(scheduledTimeOfWorkflowId(workflowId)!));
    const [stoppedId] = (await rowsOf(ids.stopped)).map((r) => Number(r.id));
    assert.deepEqual(
      outcome.batches.map((b) => [b.failureType, b.evidenceIds, b.started]),
      [['state', [stoppedId], true]],
    );
    const described = await h.client.workflow.getHandle(workflowId).describe();
    assert.deepEqual(described.searchAttributes.ForgeCycleKind, ['curate']);

    const unknown = await forge('schedule', 'pause', 'nightly-nothing', '--json');
    assert.equal(unknown.code, 1);
    assert.equal(unknown.json().error, 'SCHEDULE_NOT_FOUND');
  });

  it('reads the write a person rejected from the approvals ledger, as the task workflow leaves it', async () => {
    const workflowId = `task-evidence-ledger-${Date.now()}`;
    const ledger = createApprovalLedger(h.db.sql);
    await ledger.requestApproval({
      id: `${workflowId}.write.1`,
      workflowId,
      kind: 'write',
      tool: 'create_note',
      summary: 'create_note v1 with {"title":"groceries"}',
    });
    await ledger.resolveApproval({ id: `${workflowId}.write.1`, status: 'rejected', by: 'ana' });
    // approved, expired and question approvals are no rejection of a write
    await ledger.requestApproval({ id: `${workflowId}.write.2`, workflowId, kind: 'write', tool: 'create_note', summary: 'again' });
    await ledger.resolveApproval({ id: `${workflowId}.write.2`, status: 'expired' });
    await ledger.requestApproval({ id: `${workflowId}.question.3`, workflowId, kind: 'question', summary: 'which list?' });
    await ledger.resolveApproval({ id: `${workflowId}.question.3`, status: 'rejected', by: 'ana' });
    const store = createEvidenceStore({ sql: h.db.sql });
    const result = {
      task: 'create a note titled groceries',
      status: 'failed' as const,
      answer: 'ana rejected the call',
      calls: [
        {
          turn: 1,
          id: 'toolu_1',
          tool: 'create_note',
          version: 1,
          input: { title: 'groceries' },
          status: 'not-run' as const,
          reason: 'ana rejected the call',
        },
      ],
      forged: [],
    };
    const written = await store.recordTaskEvidence({ workflowId, result });
    assert.equal(written.created, 1, 'the rejection explains the failed task: one row');
    const [row] = await store.loadEvidence(written.ids);
    assert.equal(row?.source, 'approval_rejected');
    assert.equal(row?.failureType, 'declined');
    assert.deepEqual(row?.expectations, []);
    assert.equal(row?.happened, 'ana rejected the write call: create_note v1 with {"title":"groceries"}');
    assert.deepEqual(await store.recordTaskEvidence({ workflowId, result }), { ids: written.ids, created: 0 });
  });

  it('curation never batches a declined write, and takes only the rows it is given when it is given some (forge demo evolve)', async () => {
    // The write ana rejected above is a declined row, uncurated; two rows of feedback join it: the one a
    // demo creates (routing) and a person's own (output).
    const store = createEvidenceStore({ sql: h.db.sql });
    const [declined] = await h.db.sql<
      { id: string }[]
    >`select id from failure_evidence where failure_type = 'declined' and curated_at is null`;
    assert.ok(declined, 'the rejected write is on record, uncurated');
    const demo = await store.recordFeedback({
      workflowId: ids.clean,
      bad: 'it should have greeted with greet_widget',
      expectTool: 'greet_widget',
    });
    const own = await store.recordFeedback({ workflowId: ids.clean, bad: 'the greeting should name the widget' });
    const curate = (id: string, asOf: Date, evidenceIds?: number[]) =>
      h.client.workflow.execute('curateWorkflow', {
        taskQueue: h.cfg.FORGE_TASK_QUEUE,
        workflowId: id,
        args: [{ sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE, asOf: asOf.toISOString(), ...(evidenceIds ? { evidenceIds } : {}) }],
      }) as Promise<CurateOutcome>;
    const curatedAt = async (id: number | string) =>
      (await h.db.sql<{ curated_at: Date | null }[]>`select curated_at from failure_evidence where id = ${id}`)[0]?.curated_at ?? null;

    const only = await curate(`curate-test-only-${Date.now()}`, new Date(Date.now() + 1000), [demo.evidence.id]);
    assert.deepEqual(
      only.batches.map((b) => [b.failureType, b.evidenceIds]),
      [['routing', [demo.evidence.id]]],
    );
    assert.equal(await curatedAt(own.evidence.id), null, "the person's own row waits for the nightly run");
    assert.equal(await curatedAt(declined.id), null);

    const nightly = await curate(`curate-test-nightly-${Date.now()}`, new Date(Date.now() + 3000));
    assert.deepEqual(
      nightly.batches.map((b) => [b.failureType, b.evidenceIds]),
      [['output', [own.evidence.id]]],
      'the declined write is in no batch',
    );
    assert.equal(await curatedAt(declined.id), null, 'a declined write stays for the record, never curated');
    const shown = await forge('failures', 'show', declined.id);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(
      shown.stdout,
      /^failure evidence #\d+: declined \(approval_rejected\), severity 0\.3, .*, for the record: never curated$/m,
    );
    assert.match(shown.stdout, /never replayed: a person decided this/);
  });
});
