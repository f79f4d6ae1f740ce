/**
 * A task, a forge, an improve or an evolve cycle whose workflow is ended from outside its own code —
 * terminated (`temporal workflow terminate`, a rollback retiring the version it was pinned to),
 * cancelled or timed out — never writes its ledger row, which used to say "running" forever: in
 * `forge sessions show`, in `forge budget` (where a running forge holds a place), in `forge evolve
 * ls`, on the dashboard. The ledgers are now compared with Temporal where they are read, through
 * real Temporal (and its CLI), Postgres and Forge's CLI.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import { openSession, type Session } from '../../app/context.ts';
import { reconcileLedgers } from '../../app/reconcile.ts';
import { sleep } from '../../infra/processes.ts';
import { createRegistry } from '../../services/catalog/registry.ts';
import { harnessCli } from '../helpers/cli.ts';
import { type Harness, startHarness } from '../helpers/harness.ts';
import { romanVersion } from '../helpers/roman-tool.ts';
import { terminateWithTemporalCli } from '../helpers/temporal.ts';
import { until } from '../helpers/wait.ts';

const LEDGER_TOOL = 'ledger_roman_numeral';
let h: Harness;
let cli: ReturnType<typeof harnessCli>;
let session: Session;
const stamp = Date.now();
const started: WorkflowHandle[] = [];

before(async () => {
  h = await startHarness({
    scenarios: [
      {
        name: 'outside-ends',
        rules: [
          // Every model call takes long enough to be ended from outside while it waits.
          { match: { purpose: 'task.turn' }, responses: [{ text: 'too late', delay_ms: 30_000 }] },
          { responses: [{ error: { status: 400, message: 'outside-ends: not scripted' }, delay_ms: 30_000 }] },
        ],
      },
    ],
    // One new tool a day: a second forge running at once waits for a person (an approval row).
    env: { FORGE_DAILY_FORGE_BUDGET: '1' },
  });
  cli = harnessCli(h, { user: 'tester', timeoutMs: 60_000 });
  session = openSession(h.cfg);
  // A tool to improve: registered as a person would, no model involved.
  // Its own name: workflow ids are the shared Temporal's, and improve-roman_numeral is self-repair.test.ts's to assert on.
  await createRegistry({ sql: h.db.sql, root: path.join(h.home, 'tools') }).registerVersion(
    romanVersion(LEDGER_TOOL, `outside-ends:${LEDGER_TOOL}`),
  );
});

after(async () => {
  for (const w of started) await w.terminate('test over').catch(() => {});
  await session?.close();
  await h?.close();
});

async function startTask(name: string, opts: { sessionId?: string; workflowExecutionTimeout?: string } = {}) {
  const handle = await h.client.workflow.start('taskWorkflow', {
    taskQueue: h.cfg.FORGE_TASK_QUEUE,
    workflowId: `task-outside-${name}-${stamp}`,
    args: [
      { task: `a slow task: ${name}`, sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE, ...(opts.sessionId ? { sessionId: opts.sessionId } : {}) },
    ],
    ...(opts.workflowExecutionTimeout ? { workflowExecutionTimeout: opts.workflowExecutionTimeout } : {}),
  });
  started.push(handle);
  await rowStatus('tasks', handle.workflowId, (s) => s === 'running');
  return handle;
}

/** The improve rows of a tool, oldest first: each keyed by its run (the tool's workflow id is reused). */
async function improveRows(tool: string) {
  return h.db.sql<{ workflow_id: string; status: string; outcome: string | null }[]>`
    select workflow_id, status, report->>'outcome' as outcome from improve_runs where tool = ${tool} order by created_at`;
}

/** Waits for the ledger row to exist and pass `ok`; its status and reason. */
async function rowStatus(table: 'tasks' | 'forge_runs', workflowId: string, ok: (status: string) => boolean) {
  for (let i = 0; i < 120; i++) {
    const [row] =
      table === 'tasks'
        ? await h.db.sql<
            { status: string; reason: string | null }[]
          >`select status, error as reason from tasks where workflow_id = ${workflowId}`
        : await h.db.sql<
            { status: string; reason: string | null }[]
          >`select status, reason from forge_runs where workflow_id = ${workflowId}`;
    if (row && ok(row.status)) return row;
    await sleep(250);
  }
  assert.fail(`${table} row of ${workflowId} never got there`);
}

describe('ledgers: cycles ended from outside tell the truth', () => {
  it('a terminated task reads terminated, with who and why, in forge sessions show; one still running stays running', async () => {
    const sessionId = `outside-${stamp}`;
    const ended = await startTask('terminated', { sessionId });
    const running = await startTask('still-running');
    await ended.terminate('the person gave up waiting');

    const shown = await cli('sessions', 'show', sessionId);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /#1 terminated +task-outside-terminated-/);
    assert.match(shown.stdout, /terminated by \S+: the person gave up waiting/);
    const json = (await cli('sessions', 'show', sessionId, '--json')).json() as { session: { entries: { status: string }[] } };
    assert.equal(json.session.entries[0]?.status, 'terminated');

    const row = await rowStatus('tasks', ended.workflowId, () => true);
    assert.equal(row.status, 'terminated');
    assert.match(String(row.reason), /^terminated by \S+: the person gave up waiting$/);
    // A task Temporal says is running is left alone, and a second pass finds nothing more to record.
    assert.deepEqual(await reconcileLedgers(session), []);
    assert.equal((await rowStatus('tasks', running.workflowId, () => true)).status, 'running');
  });

  it('a cancelled task and a timed-out one are recorded as such, with their cause', async () => {
    const cancelled = await startTask('cancelled');
    const timedOut = await startTask('timed-out', { workflowExecutionTimeout: '4s' });
    await cancelled.cancel();
    await Promise.allSettled([cancelled.result(), timedOut.result()]);

    const ends = await reconcileLedgers(session, { workflowIds: [cancelled.workflowId, timedOut.workflowId] });
    const byId = new Map(ends.map((e) => [e.workflowId, e]));
    assert.equal(byId.get(cancelled.workflowId)?.status, 'cancelled');
    assert.match(String(byId.get(cancelled.workflowId)?.reason), /^cancelled by \S+/);
    assert.equal(byId.get(timedOut.workflowId)?.status, 'timed-out');
    assert.equal(byId.get(timedOut.workflowId)?.reason, 'timed out: its workflow execution timeout of 4 s ran out');
    assert.equal((await rowStatus('tasks', timedOut.workflowId, () => true)).status, 'timed-out');
  });

  it('a terminated forge stops holding a place in forge budget', async () => {
    const forge = await h.client.workflow.start('forgeWorkflow', {
      taskQueue: h.cfg.FORGE_TASK_QUEUE,
      workflowId: `forge-outside-${stamp}`,
      args: [{ need: 'count the words in a text, slowly', sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE }],
    });
    started.push(forge);
    await rowStatus('forge_runs', forge.workflowId, (s) => s === 'running');
    const before = (await cli('budget', '--json')).json() as { usedToday: number };
    assert.equal(before.usedToday, 1, 'a running forge counts');

    await forge.terminate('rolled back: the version it was pinned to is retired');
    const after = (await cli('budget', '--json')).json() as {
      usedToday: number;
      runs: { workflow_id: string; status: string; counted: boolean }[];
    };
    assert.equal(after.usedToday, 0, 'a terminated forge does not');
    const run = after.runs.find((r) => r.workflow_id === forge.workflowId);
    assert.deepEqual([run?.status, run?.counted], ['terminated', false]);
    assert.match(
      String((await rowStatus('forge_runs', forge.workflowId, () => true)).reason),
      /rolled back: the version it was pinned to is retired/,
    );
  });

  it('an approval whose workflow was terminated is no longer listed as waiting: marked expired, with why', async () => {
    const start = async (n: number) => {
      const handle = await h.client.workflow.start('forgeWorkflow', {
        taskQueue: h.cfg.FORGE_TASK_QUEUE,
        workflowId: `forge-outside-budget-${n}-${stamp}`,
        args: [{ need: `a tool nobody will wait for, number ${n}`, sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE }],
      });
      started.push(handle);
      return handle;
    };
    const first = await start(1);
    await rowStatus('forge_runs', first.workflowId, (s) => s === 'running');
    const waiting = await start(2);
    await rowStatus('forge_runs', waiting.workflowId, (s) => s === 'awaiting-budget-approval');
    const listed = async () => ((await cli('approvals', '--json')).json().pending as { workflow_id: string }[]).map((a) => a.workflow_id);
    for (let i = 0; i < 40 && !(await listed()).includes(waiting.workflowId); i++) await sleep(250);
    assert.ok((await listed()).includes(waiting.workflowId), 'the budget approval waits for a person');

    await waiting.terminate('the person will not be back today');
    assert.ok(!(await listed()).includes(waiting.workflowId), 'nobody waits for it any more');
    const [approval] = await h.db.sql<{ status: string; decided_by: string }[]>`
      select status, decided_by from approvals where workflow_id = ${waiting.workflowId}`;
    assert.equal(approval?.status, 'expired');
    assert.match(String(approval?.decided_by), /terminated by \S+: the person will not be back today/);
    assert.equal((await rowStatus('forge_runs', waiting.workflowId, () => true)).status, 'terminated');
  });

  it('improve: each cycle of a tool is compared with its own run — the one terminated reads terminated, the next one runs on', async () => {
    const tool = LEDGER_TOOL;
    const first = await cli('improve', tool, '--reason', 'first try', '--json');
    assert.equal(first.code, 0, first.stderr);
    const workflowId = String(first.json().workflowId);
    assert.equal(workflowId, `improve-${tool}`);
    started.push(h.client.workflow.getHandle(workflowId));
    await until('the first cycle is in the ledger', async () => (await improveRows(tool)).length === 1, 30_000, 250);
    const [firstRow] = await improveRows(tool);
    const firstRun = firstRow!.workflow_id.split('@')[1]!;
    await terminateWithTemporalCli(h.cfg, workflowId, 'a person stopped the first rewrite', firstRun);

    // The tool's next cycle reuses the workflow id, followed by `forge improve --wait` as a person would.
    const followed = cli('improve', tool, '--reason', 'second try', '--wait', '--json');
    await until('the second cycle is in the ledger', async () => (await improveRows(tool)).length === 2, 30_000, 250);
    assert.deepEqual(
      (await improveRows(tool)).map((r) => r.status),
      ['running', 'running'],
      'nothing read the ledger since the first was terminated',
    );

    // One pass: the first run's end is recorded on the first row alone; the second, running, is left alone.
    const ends = await reconcileLedgers(session, { workflowIds: [workflowId] });
    assert.deepEqual(
      ends.map((e) => [e.ledger, e.workflowId, e.runId, e.status]),
      [['improve', workflowId, firstRun, 'terminated']],
    );
    let rows = await improveRows(tool);
    assert.deepEqual(
      rows.map((r) => r.status),
      ['terminated', 'running'],
    );
    assert.match(String(rows[0]!.outcome), /^terminated by temporal-cli:\S+: a person stopped the first rewrite$/);

    // The follower of the second cycle says how it ended when it is terminated in turn.
    await terminateWithTemporalCli(h.cfg, workflowId, 'a person stopped the second rewrite too');
    const second = await followed;
    assert.equal(second.code, 1, `${second.stdout}\n${second.stderr}`);
    const line = second.json();
    assert.deepEqual([line.ok, line.status, line.workflowId], [false, 'terminated', workflowId]);
    assert.match(String(line.message), /^terminated by temporal-cli:\S+: a person stopped the second rewrite too$/);
    rows = await improveRows(tool);
    assert.deepEqual(
      rows.map((r) => r.status),
      ['terminated', 'terminated'],
    );
    assert.match(String(rows[1]!.outcome), /a person stopped the second rewrite too$/);
    assert.deepEqual(await reconcileLedgers(session), [], 'nothing left to record');
  });

  it('evolve: a cycle terminated mid-patch reads terminated, with its cause, in forge evolve ls and show', async () => {
    const trace = { task: 'tally the words of "red green blue"', status: 'completed', answer: '3', calls: [], forged: ['word_tally'] };
    const [evidence] = await h.db.sql<{ id: string }[]>`
      insert into failure_evidence (idempotency_key, workflow_id, source, failure_type, expected, happened, expectations, severity, trace)
      values (${`outside-ends:${stamp}`}, ${`task-outside-evidence-${stamp}`}, 'feedback', 'routing', 'reuse count_words',
              'forged word_tally', ${h.db.sql.json([{ kind: 'forges-nothing' }] as never)}, 0.8, ${h.db.sql.json(trace as never)})
      returning id`;
    const workflowId = `evolve-outside-${stamp}`;
    started.push(
      await h.client.workflow.start('evolveWorkflow', {
        taskQueue: h.cfg.FORGE_TASK_QUEUE,
        workflowId,
        args: [
          {
            batchKey: `outside-${stamp}:routing`,
            failureType: 'routing',
            evidenceIds: [Number(evidence!.id)],
            sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE,
            maxAttempts: 1,
          },
        ],
      }),
    );
    const status = async () =>
      (await h.db.sql<{ status: string }[]>`select status from evolve_candidates where workflow_id = ${workflowId}`)[0]?.status;
    await until('the candidate is in the ledger', async () => (await status()) === 'running', 30_000, 250);
    const listed = async () =>
      ((await cli('evolve', 'ls', '--json')).json().candidates as { id: string; status: string }[]).find((c) => c.id === workflowId);
    assert.equal((await listed())?.status, 'running', 'a cycle Temporal says runs is left alone');

    await terminateWithTemporalCli(h.cfg, workflowId, 'not this batch');
    const candidate = (await listed()) as { status: string; reason: string } | undefined;
    assert.equal(candidate?.status, 'terminated');
    assert.match(candidate.reason, /^terminated by temporal-cli:\S+: not this batch$/);
    const shown = await cli('evolve', 'show', workflowId);
    assert.match(shown.stdout, new RegExp(`^${workflowId}: terminated — terminated by temporal-cli:\\S+: not this batch\\n`));
  });
});
