import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, it } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import { forgeBudgetToday } from '../../app/budget.ts';
import { budgetLines } from '../../cli/commands/control.ts';
import type { ForgeOutcome } from '../../domain/forge.ts';
import type { TaskResult } from '../../domain/task.ts';
import { sleep } from '../../infra/processes.ts';
import { createEvidenceStore } from '../../services/runs/evidence.ts';
import { decideApprovalUpdate, forgeProgressQuery } from '../../workflows/definitions.ts';
import { harnessCli, harnessEnv } from '../helpers/cli.ts';
import { type Harness, startHarness } from '../helpers/harness.ts';

// A daily budget of one new tool: the second forge of the day waits for a person. A forge that
// ends on a tool the catalog already has, byte for byte, is no new tool: it leaves the budget as it
// was, and the task that asked for it leaves a duplicate_forged row of failure evidence.
let h: Harness;

const REFORGE_TASK = 'tally the words of my essay, please';

before(async () => {
  h = await startHarness({
    scenarioFiles: ['scenarios/forge-word-count.json'],
    scenarios: [
      {
        name: 'an agent that forges count_words again instead of calling it',
        rules: [
          {
            name: 'forge, on the task message',
            match: { purpose: 'task.turn', first: REFORGE_TASK, user: '/^Task:/' },
            responses: [{ tool_use: { name: 'forge_tool', input: { description: 'count the words in a text' } } }],
          },
          { name: 'then answer', match: { purpose: 'task.turn', first: REFORGE_TASK }, responses: [{ text: 'count_words can tally it.' }] },
        ],
      },
      // A task whose model asks for a tool nobody has (forge_tool), and answers in words once the forge is refused.
      {
        name: 'budget-task',
        rules: [
          {
            match: { purpose: 'task.turn', first: 'URL slug of', user: 'rejected forging past the daily budget' },
            responses: [{ text: 'I could not make a slug: forging the tool it needs was refused.' }],
          },
          {
            match: { purpose: 'task.turn', first: 'URL slug of' },
            responses: [
              {
                tool_use: {
                  name: 'forge_tool',
                  input: { name: 'make_slug', description: 'make a URL slug of a text: lower-case words joined by dashes' },
                },
              },
            ],
          },
        ],
      },
    ],
    env: { FORGE_DAILY_FORGE_BUDGET: '1' },
  });
});

after(() => h.close());

const forge = (need: string) =>
  h.client.workflow.start('forgeWorkflow', {
    taskQueue: h.cfg.FORGE_TASK_QUEUE,
    workflowId: `forge-budget-${Math.random().toString(16).slice(2)}`,
    args: [{ need, sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE }],
  });

/** The budget approval's id, once the workflow waits on it and the row `forge approvals` lists is written. */
async function pendingBudgetApproval(handle: WorkflowHandle): Promise<string> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const p = await handle.query(forgeProgressQuery).catch(() => undefined);
    // The workflow waits before its row is written (so a quick decision is never refused): wait for both.
    const [row] = p?.pendingApproval ? await h.db.sql`select 1 from approvals where id = ${p.pendingApproval}` : [];
    if (p?.phase === 'awaiting-budget-approval' && p.pendingApproval && row) return p.pendingApproval;
    await sleep(200);
  }
  throw new Error(`${handle.workflowId} never asked for a budget approval`);
}

it('forges within budget, then waits for a person: rejected leaves the catalog alone, approved registers', async () => {
  const first = (await (await forge('count the words in a text')).result()) as ForgeOutcome;
  assert.equal(first.status, 'registered');

  const rejected = await forge('create a note with a title and a body');
  const rejectId = await pendingBudgetApproval(rejected);
  const [row] = await h.db.sql`select kind, status from approvals where id = ${rejectId}`;
  assert.deepEqual([row?.kind, row?.status], ['budget', 'pending']);
  assert.equal(h.model.requests.filter((r) => r.headers['x-forge-purpose'] === 'forge.spec').length, 1, 'no model call before approval');
  await rejected.executeUpdate(decideApprovalUpdate, { args: [{ approvalId: rejectId, approve: false, by: 'tester' }] });
  const outcome = (await rejected.result()) as ForgeOutcome;
  assert.equal(outcome.status, 'failed');
  assert.match(outcome.status === 'failed' ? outcome.reason : '', /tester rejected forging past the daily budget/);
  assert.equal((await h.db.sql`select 1 from tool_versions where name = 'create_note'`).length, 0);

  const approved = await forge('create a note with a title and a body');
  await approved.executeUpdate(decideApprovalUpdate, {
    args: [{ approvalId: await pendingBudgetApproval(approved), approve: true, by: 'tester' }],
  });
  const later = (await approved.result()) as ForgeOutcome;
  assert.equal(later.status, 'registered');
  assert.equal(later.status === 'registered' && later.name, 'create_note');
});

it('a forge that ends on an identical catalog tool registers nothing and is not counted; its task leaves duplicate_forged evidence', async () => {
  // After the test above: count_words and create_note, both new tools, one of them approved past the budget.
  const before = await forgeBudgetToday(h.cfg);
  assert.equal(before.usedToday, 2);
  const tools = await h.db.sql`select name, version from tool_versions order by name, version`;

  const workflowId = `task-reforge-${Math.random().toString(16).slice(2)}`;
  const task = await h.client.workflow.start('taskWorkflow', {
    taskQueue: h.cfg.FORGE_TASK_QUEUE,
    workflowId,
    args: [{ task: REFORGE_TASK, sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE }],
  });
  // The budget is spent, and what a forge comes to is not known before it runs: it still asks first.
  const child = h.client.workflow.getHandle(`${workflowId}.forge.1.1`);
  await child.executeUpdate(decideApprovalUpdate, {
    args: [{ approvalId: await pendingBudgetApproval(child), approve: true, by: 'tester' }],
  });
  const outcome = (await child.result()) as ForgeOutcome;
  assert.equal(outcome.status, 'registered');
  assert.match(
    outcome.status === 'registered' ? (outcome.note ?? '') : '',
    /count_words v1 already has exactly this code: nothing registered/,
  );
  const result = (await task.result()) as TaskResult;
  assert.equal(result.status, 'completed', result.answer);
  assert.deepEqual(result.forged, ['count_words']);
  assert.deepEqual(await h.db.sql`select name, version from tool_versions order by name, version`, tools, 'nothing registered');
  // The agent is told what the forge came to, not that a new tool was registered.
  const asked = h.model.requests.map((r) => JSON.stringify(r.body ?? '')).filter((b) => b.includes(REFORGE_TASK));
  assert.ok(asked.some((b) => b.includes('count_words v1 already has exactly this code: nothing registered. count_words v1:')));
  assert.ok(!asked.some((b) => b.includes('Forged count_words v1, verified in the sandbox and registered')));
  // And a person reading the task's calls is told too.
  const forgeCall = result.calls.find((c) => c.tool === 'forge_tool');
  assert.deepEqual(forgeCall?.output, {
    forged: 'count_words',
    version: 1,
    note: 'count_words v1 already has exactly this code: nothing registered',
  });

  // forge budget: still 2 of 1, the run listed as unchanged and not counted.
  const after = await forgeBudgetToday(h.cfg);
  assert.equal(after.usedToday, 2);
  const run = after.runs.find((r) => r.workflow_id === `${workflowId}.forge.1.1`);
  assert.deepEqual([run?.name, run?.status, run?.counted], ['count_words', 'unchanged', false]);
  const lines = budgetLines(after);
  assert.equal(
    lines[0],
    'forge budget: 2 of 1 new tools used today (UTC); past that, forging waits for a person (forge approvals, then forge approve <id>)',
  );
  assert.match(
    lines.find((l) => l.includes(workflowId)) ?? '',
    new RegExp(`^  ${workflowId}\\.forge\\.1\\.1: count_words unchanged \\(not counted\\); tokens: `),
  );
  for (const line of lines) assert.doesNotMatch(line.trimStart(), /\s{2}|\s$/, `no double or trailing space: "${line}"`);
  // Its dollars are not billed: the harness's model is the scripted one (no ANTHROPIC_API_KEY).
  assert.equal(
    lines.at(-1),
    `  (the costs are what these tokens would cost at ${h.cfg.FORGE_MODEL}'s prices: with no ANTHROPIC_API_KEY, Forge talks to the scripted model, which charges nothing)`,
  );
  assert.equal(budgetLines({ ...after, costNote: undefined }).length, lines.length - 1, "a real model's costs need no note");

  // forge failures: the task forged what the catalog had, so it should have called count_words.
  const { evidence } = await createEvidenceStore({ sql: h.db.sql }).listEvidence({ limit: 50 });
  const mine = evidence.filter((e) => e.workflowId === workflowId);
  assert.deepEqual(
    mine.map((e) => [e.source, e.failureType, e.expectations]),
    [['duplicate_forged', 'routing', [{ kind: 'uses-tool', tool: 'count_words' }, { kind: 'forges-nothing' }]]],
  );
  assert.match(
    mine[0]!.happened,
    /the agent forged count_words again: count_words v1 already had exactly that code, so nothing was registered/,
  );
});

// After the test above, today's budget is spent: a task's forge waits for a person too.
it('forge run --wait says when the task waits for a budget approval, and the command that decides it', async () => {
  const child = spawn(process.execPath, ['bin/forge.mjs', 'run', 'make a URL slug of "Crème Brûlée"', '--wait'], {
    env: harnessEnv(h),
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 120_000,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));

  const deadline = Date.now() + 90_000;
  let id: string | undefined;
  while (!id && Date.now() < deadline) {
    id =
      /waiting for a person — forging its new tool goes past today's forge budget \(\d+ of 1 tools forged today\): forge approve (\S+) {3}\(or: forge reject \1\)/.exec(
        stdout,
      )?.[1];
    if (!id) await sleep(200);
  }
  assert.ok(id, `the wait is printed while it lasts:\n${stdout}\n${stderr}`);
  assert.match(id, /\.forge\..+\.budget\.1$/, "the approval is the forge child's");

  const rejected = await harnessCli(h, { user: 'tester', timeoutMs: 60_000 })('reject', id);
  assert.equal(rejected.code, 0, rejected.stderr);
  assert.equal(await exited, 1, `the task failed without its tool:\n${stdout}\n${stderr}`);
  assert.equal(stdout.split('\n').filter((l) => l.startsWith('  waiting for a person')).length, 1, 'said once');
  assert.match(stdout, /forge_tool .* → failed: forging the tool failed: tester rejected forging past the daily budget/);
});

// Today's budget is spent. A forge under a name the catalog holds can come to no new tool (its very
// code, or a new version through the tool's gate): asking a person to approve it held a session's
// follow-up on approvals for forges that registered nothing.
it('a forge under a name the catalog holds never waits for a budget approval', async () => {
  const handle = await h.client.workflow.start('forgeWorkflow', {
    taskQueue: h.cfg.FORGE_TASK_QUEUE,
    workflowId: `forge-budget-held-${Math.random().toString(16).slice(2)}`,
    args: [{ need: 'count the words in a text', name: 'count_words', sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE }],
  });
  const outcome = (await handle.result()) as ForgeOutcome;
  assert.equal(outcome.status, 'registered');
  assert.equal(outcome.status === 'registered' && outcome.note, 'count_words v1 already has exactly this code: nothing registered');
  const asked = await h.db.sql`select id from approvals where workflow_id = ${handle.workflowId}`;
  assert.equal(asked.length, 0, 'nobody was asked');
  const { history } = await handle.query(forgeProgressQuery);
  assert.ok(!history.some((s) => s.phase === 'awaiting-budget-approval'), JSON.stringify(history));
});
