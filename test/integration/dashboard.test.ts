import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Locator, type Page } from 'playwright-core';
import { type McpBackend, openMcpBackend } from '../../app/mcp-calls.ts';
import type { TaskResult } from '../../domain/task.ts';
import { findChromium } from '../../infra/chromium.ts';
import { freePort, sleep } from '../../infra/processes.ts';
import type { ScenarioInput } from '../../scripted-model/scenario.ts';
import { createRegistry, type Registry } from '../../services/catalog/registry.ts';
import { createEvolveRuns } from '../../services/runs/evolve-runs.ts';
import { harnessEnv } from '../helpers/cli.ts';
import { type Harness, startHarness } from '../helpers/harness.ts';
import { romanSource } from '../helpers/roman-tool.ts';
import { until } from '../helpers/wait.ts';

// The web dashboard (issue 13, item 2) in a real browser: headless Chromium (Debian's package,
// provisioned by test/run.ts) driven by playwright-core, against `forge dashboard` as forge up runs
// it and a real Forge (Temporal, Postgres, Docker; the scripted model answers the task's turns from
// scenarios/demo.json). roman_numeral (read) is called through the tool call cycle, then gets a v2;
// create_note (write) waits for a person. The page loads with the token from its address, plots
// roman_numeral's calls with the version change marked, approves a task's pending write (the task
// completes), freezes Forge (a call waits, nothing runs) and thaws it, searches the audit log, and
// lists the cycles it ran (the tasks, untagged, by workflow type; the calls by ForgeCycleKind) with
// their Temporal UI links, narrowed by kind.

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const noteSource = `import { z } from 'zod';
import type { ToolContext } from '@forge/tool';

export const manifest = {
  name: 'create_note',
  description: 'Creates a note with a title, a body and tags in the team notebook; answers with the note id.',
  sideEffect: 'write',
  destructive: false,
  permissions: { network: [], env: [] },
  input: z.object({ title: z.string().min(1), body: z.string(), tags: z.array(z.string()).default([]) }),
  output: z.object({ id: z.string(), title: z.string(), tags: z.array(z.string()), bytes: z.number() }),
};

export async function run(input: { title: string; body: string; tags: string[] }, _ctx: ToolContext) {
  let h = 7;
  for (const c of input.title + input.body) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return { id: 'note_' + h.toString(16), title: input.title, tags: input.tags, bytes: input.body.length };
}
`;

/** The agent asks the person (ask_person), then answers with the person's words. */
const question: ScenarioInput = {
  name: 'dashboard question',
  rules: [
    {
      match: { purpose: 'task.turn', first: '(dashboard question)', user: '/answered: ([^\\n]+)/' },
      responses: [{ text: 'Painting it {{user.1}}, as you said.' }],
    },
    {
      match: { purpose: 'task.turn', first: '(dashboard question)' },
      responses: [{ tool_use: { name: 'ask_person', input: { question: 'Which color should the shed be?' } } }],
    },
  ],
};

const objectSchema = (props: Record<string, Record<string, unknown>>, required = Object.keys(props)) => ({
  type: 'object',
  properties: props,
  required,
  additionalProperties: false,
});

const romanManifest = {
  description: 'Writes a whole number in roman numerals.',
  sideEffect: 'read' as const,
  destructive: false,
  permissions: { network: [], env: [] },
  inputSchema: objectSchema({ number: { type: 'integer' } }),
  outputSchema: objectSchema({ roman: { type: 'string' } }),
};

/** What a person reads in an element (its DOM text). */
const text = async (l: Locator) => (await l.textContent()) ?? '';

/** A raw request, so the test can send what a browser would never let a page set (Host). */
function rawRequest(
  port: number,
  opts: { method: string; path: string; headers?: Record<string, string>; body?: string },
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: opts.method, path: opts.path, headers: opts.headers }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('forge dashboard: the web page in headless Chromium', () => {
  let h: Harness;
  let registry: Registry;
  let backend: McpBackend;
  let server: ChildProcess;
  let serverLog = '';
  let port: number;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];
  const token = `test-${randomBytes(16).toString('hex')}`;
  // An existing cluster's UI (TEMPORAL_UI_URL): the test's Temporal server runs headless.
  const temporalUi = 'http://temporal-ui.test:8233';
  /** the tasks the tests ran, for the Cycles panel */
  const ranTasks: { workflowId: string; runId: string }[] = [];
  let frozenCall = '';
  const source = { surface: 'mcp' as const, client: 'dashboard-test' };

  const callRoman = async (n: number) => {
    const view = await backend.callTool('roman_numeral', { number: n }, source, { waitMs: 90_000 });
    assert.equal(view.state, 'done', JSON.stringify(view));
    return view;
  };

  before(async () => {
    h = await startHarness({
      scenarios: [question, JSON.parse(fs.readFileSync(path.join(root, 'scenarios/demo.json'), 'utf8')) as ScenarioInput],
    });
    registry = createRegistry({ sql: h.db.sql, root: path.join(h.home, 'tools') });
    await registry.registerVersion({
      name: 'roman_numeral',
      source: romanSource,
      tests: '',
      manifest: romanManifest,
      createdBy: 'human',
      idempotencyKey: 'dashboard-test:roman_numeral:1',
    });
    await registry.registerVersion({
      name: 'create_note',
      source: noteSource,
      tests: '',
      manifest: {
        description: 'Creates a note with a title, a body and tags in the team notebook; answers with the note id.',
        sideEffect: 'write',
        destructive: false,
        permissions: { network: [], env: [] },
        inputSchema: objectSchema(
          { title: { type: 'string' }, body: { type: 'string' }, tags: { type: 'array', items: { type: 'string' } } },
          ['title', 'body'],
        ),
        outputSchema: objectSchema({
          id: { type: 'string' },
          title: { type: 'string' },
          tags: { type: 'array' },
          bytes: { type: 'number' },
        }),
      },
      createdBy: 'human',
      idempotencyKey: 'dashboard-test:create_note:1',
    });

    // roman_numeral's record: real calls through the tool call cycle (gate, sandbox, metering,
    // audit), one of them failing, then a v2 and two more calls on it.
    backend = openMcpBackend(h.cfg);
    await callRoman(1987);
    await callRoman(0);
    await callRoman(2024);
    await registry.registerVersion({
      name: 'roman_numeral',
      source: romanSource.replace('let roman = ', '// v2: the same digits, written once\n  let roman = '),
      tests: '',
      manifest: romanManifest,
      createdBy: 'human',
      idempotencyKey: 'dashboard-test:roman_numeral:2',
    });
    await callRoman(7);
    await callRoman(12);

    port = await freePort();
    server = spawn(process.execPath, ['bin/forge.mjs', 'dashboard', '--port', String(port)], {
      cwd: root,
      env: harnessEnv(h, { FORGE_MCP_TOKEN: token, FORGE_USER: 'tester', TEMPORAL_UI_URL: `${temporalUi}/` }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    server.stdout?.on('data', (d: Buffer) => (serverLog += d));
    server.stderr?.on('data', (d: Buffer) => (serverLog += d));
    await until(
      'the dashboard answers',
      async () => (await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined))?.ok === true,
      60_000,
    );
    assert.match(serverLog, new RegExp(`Forge dashboard: http://127\\.0\\.0\\.1:${port}/#token=${token}`));

    const executablePath = process.env.FORGE_CHROMIUM ?? findChromium();
    assert.ok(executablePath, 'Chromium is provisioned by test/run.ts (apt-get install -y chromium)');
    browser = await chromium.launch({ executablePath, headless: true });
    page = await browser.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') pageErrors.push(msg.text());
    });
  });

  after(async () => {
    await browser?.close().catch(() => {});
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server.once('exit', r));
      server.kill('SIGTERM');
      await exited;
    }
    await backend?.close();
    await h?.close();
  });

  it('loads with the token from its address, lists the catalog and goes live', async () => {
    await page.goto(`http://127.0.0.1:${port}/#token=${token}`);
    await page.waitForSelector('[data-testid="dashboard"][data-live="live"]', { timeout: 20_000 });
    assert.equal(new URL(page.url()).hash, '', 'the token leaves the address bar');
    await page.waitForSelector('[data-testid="tool-row"]', { timeout: 20_000 });
    const rows = await page.locator('[data-testid="tool-row"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-tool')));
    assert.deepEqual(rows, ['create_note', 'roman_numeral']);
    assert.match(await text(page.locator('[data-testid="kill-switch"]')), /Kill switch: off/);
    assert.equal(await page.locator('[data-testid="kill-switch"]').getAttribute('data-frozen'), 'false');
    assert.match(await text(page.locator('[data-testid="budget"]')), /Forge budget today: 0 of \d+ new tools used/);
    assert.deepEqual(pageErrors, [], serverLog);
  });

  it("plots a tool's success rate and latency over time, with its version change marked, and shows the diff", async () => {
    await page.locator('[data-testid="tool-row"][data-tool="roman_numeral"]').click();
    await page.waitForSelector('svg[data-testid="plot-success"]');
    const success = page.locator('svg[data-testid="plot-success"]');
    const latency = page.locator('svg[data-testid="plot-latency"]');
    assert.equal(await success.locator('circle').count(), 5, 'one point per call');
    assert.equal(await success.locator('circle.fail').count(), 1, 'the call with 0 failed');
    assert.equal(await latency.locator('circle.call').count(), 5);
    const line = (await success.locator('polyline.rate').getAttribute('points')) ?? '';
    assert.equal(line.trim().split(/\s+/).length, 5);
    for (const plot of [success, latency]) {
      const marks = await plot.locator('.version-mark').evaluateAll((els) => els.map((e) => e.getAttribute('data-version')));
      assert.deepEqual(marks, ['2'], 'v1 → v2 marked where the calls changed version');
      assert.equal(await text(plot.locator('.version-mark text')), 'v2');
    }
    const box = await success.boundingBox();
    assert.ok(box && box.width > 200 && box.height > 50, `the plot is drawn: ${JSON.stringify(box)}`);
    // The reading matches the calls: after the failure, 2 of 3 succeeded; the last point is 4 of 5.
    const titles = await success.locator('circle title').allTextContents();
    assert.match(titles[1]!, /v1: failed; 50 % of the last 10/);
    assert.match(titles[4]!, /v2: succeeded; 80 % of the last 10/);

    const detail = page.locator('[data-testid="tool-detail"]');
    assert.match(await text(detail), /trust: /);
    const versions = await detail.locator('[data-testid="version"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-version')));
    assert.deepEqual(versions, ['2', '1'], 'newest first');
    const diff = await text(detail.locator('[data-testid="version"][data-version="2"] pre.diff'));
    assert.match(diff, /^\+\s*\/\/ v2: the same digits, written once$/m);
    // A picture for a person to look at, when asked for.
    if (process.env.FORGE_TEST_SCREENSHOTS)
      await page.screenshot({ path: path.join(process.env.FORGE_TEST_SCREENSHOTS, 'dashboard-tool.png'), fullPage: true });
    assert.deepEqual(pageErrors, []);
  });

  it('approving a pending write from the page lets the waiting task complete', async () => {
    const handle = await h.client.workflow.start('taskWorkflow', {
      taskQueue: h.cfg.FORGE_TASK_QUEUE,
      workflowId: `dashboard-task-${Date.now()}`,
      args: [{ task: 'create a note titled groceries with milk and eggs', sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE }],
    });
    ranTasks.push({ workflowId: handle.workflowId, runId: handle.firstExecutionRunId });
    let done = false;
    const result = (handle.result() as Promise<TaskResult>).finally(() => (done = true));
    const approved: string[] = [];
    // Whatever the task waits for (a write; a confirmation first, should discovery ask one) arrives
    // on the page by itself (the event stream) and is approved with the page's own button.
    while (!done) {
      const row = page.locator('[data-testid="pending"]', { hasText: handle.workflowId }).first();
      if (await row.count()) {
        const id = (await row.getAttribute('data-id'))!;
        const kind = (await row.getAttribute('data-kind'))!;
        if (!approved.includes(`${kind}:${id}`)) {
          assert.match(await text(row), kind === 'write' ? /create_note v\d with \{"title":"groceries"/ : /./);
          if (process.env.FORGE_TEST_SCREENSHOTS && !approved.length)
            await page.screenshot({ path: path.join(process.env.FORGE_TEST_SCREENSHOTS, 'dashboard-pending.png') });
          await row.getByRole('button', { name: 'Approve' }).click();
          approved.push(`${kind}:${id}`);
          await page.waitForSelector(`[data-testid="pending"][data-id="${id}"]`, { state: 'detached', timeout: 20_000 });
        }
      }
      await Promise.race([result.catch(() => {}), sleep(200)]);
    }
    const out = await result;
    assert.equal(out.status, 'completed', JSON.stringify(out));
    assert.match(out.answer, /^Created the note note_[0-9a-f]+\.$/);
    assert.ok(
      approved.some((a) => a.startsWith('write:')),
      `the write was approved from the page: ${approved.join(', ')}`,
    );
    const decided = await h.db.sql<{ kind: string; status: string; decided_by: string }[]>`
      select kind, status, decided_by from approvals where workflow_id = ${handle.workflowId} order by created_at`;
    assert.ok(decided.length >= 1);
    for (const d of decided) assert.deepEqual([d.status, d.decided_by], ['approved', 'tester'], JSON.stringify(decided));
    assert.equal(await page.locator('[data-testid="pending"]').count(), 0);
  });

  it("answers the agent's question from the page, in words", async () => {
    const handle = await h.client.workflow.start('taskWorkflow', {
      taskQueue: h.cfg.FORGE_TASK_QUEUE,
      workflowId: `dashboard-question-${Date.now()}`,
      args: [{ task: 'paint the shed (dashboard question)', sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE }],
    });
    ranTasks.push({ workflowId: handle.workflowId, runId: handle.firstExecutionRunId });
    const row = page.locator('[data-testid="pending"][data-kind="question"]', { hasText: handle.workflowId });
    await row.waitFor({ timeout: 60_000 });
    assert.match(await text(row), /Which color should the shed be\?/);
    assert.equal(await row.getByRole('button', { name: 'Approve' }).count(), 0, 'a question takes words, not a yes');
    const id = (await row.getAttribute('data-id'))!;
    await row.getByLabel(`answer to ${id}`).fill('forest green');
    await row.getByRole('button', { name: 'Answer' }).click();
    const out = (await handle.result()) as TaskResult;
    assert.equal(out.status, 'completed', JSON.stringify(out));
    assert.equal(out.answer, 'Painting it forest green, as you said.');
    const [decided] = await h.db.sql<{ status: string; decided_by: string }[]>`select status, decided_by from approvals where id = ${id}`;
    assert.deepEqual([decided?.status, decided?.decided_by], ['approved', 'tester']);
  });

  it('freeze from the page blocks a side effect until thaw', async () => {
    await page.getByLabel('reason to freeze').fill('checking the dashboard');
    await page.getByRole('button', { name: 'Freeze' }).click();
    await page.waitForSelector('[data-testid="kill-switch"][data-frozen="true"]', { timeout: 10_000 });
    assert.match(await text(page.locator('[data-testid="kill-switch"]')), /FROZEN[\s\S]*by tester[\s\S]*checking the dashboard/);
    const [state] = await h.db.sql<{ value: { frozen: boolean; by: string; reason: string } }[]>`
      select value from system_state where key = 'kill_switch'`;
    assert.deepEqual([state?.value.frozen, state?.value.by, state?.value.reason], [true, 'tester', 'checking the dashboard']);

    if (process.env.FORGE_TEST_SCREENSHOTS)
      await page.screenshot({ path: path.join(process.env.FORGE_TEST_SCREENSHOTS, 'dashboard-frozen.png') });
    const before = await h.db.sql<{ n: number }[]>`select count(*)::int as n from invocations where tool = 'roman_numeral'`;
    const view = await backend.callTool('roman_numeral', { number: 3999 }, source, { waitMs: 8_000 });
    assert.equal(view.state, 'frozen', JSON.stringify(view));
    frozenCall = view.workflowId;
    await sleep(2_000);
    const during = await h.db.sql<{ n: number }[]>`select count(*)::int as n from invocations where tool = 'roman_numeral'`;
    assert.equal(during[0]?.n, before[0]?.n, 'nothing ran while frozen');

    await page.getByRole('button', { name: 'Thaw' }).click();
    await page.waitForSelector('[data-testid="kill-switch"][data-frozen="false"]', { timeout: 10_000 });
    // The waiting call sees the thaw at its next look (within seconds), then runs.
    let resumed = await backend.result(view.workflowId, { waitMs: 90_000 });
    const deadline = Date.now() + 60_000;
    while (resumed.state === 'frozen' && Date.now() < deadline) {
      await sleep(500);
      resumed = await backend.result(view.workflowId, { waitMs: 90_000 });
    }
    assert.equal(resumed.state, 'done', JSON.stringify(resumed));
    assert.deepEqual(resumed.state === 'done' && resumed.kind === 'call' ? resumed.result.output : undefined, { roman: 'MMMCMXCIX' });
  });

  it('searches the audit log, and updates it live', async () => {
    const audit = page.locator('[data-testid="audit"]');
    await until('the thawed call in the audit log', async () => (await text(audit)).includes('"number":3999'), 20_000);
    await page.getByLabel('search the audit log').fill('MMXXIV');
    await until('one match', async () => (await audit.locator('[data-testid="audit-entry"]').count()) === 1, 10_000);
    const entry = audit.locator('[data-testid="audit-entry"]');
    assert.match(await text(entry), /tool_call\s*roman_numeral@1/);
    await entry.locator('tr').first().click();
    assert.match(await text(entry), /"roman": "MMXXIV"/);
    assert.match(await text(entry), /mcp: dashboard-test/);
    await page.getByLabel('search the audit log').fill('no entry says this');
    await until('no match', async () => (await text(audit)).includes('Nothing matches.'), 10_000);
    assert.deepEqual(pageErrors, []);
  });

  it('lists the cycles it ran, newest first, with status, duration and Temporal UI links, filterable by kind', async () => {
    const cyclesPanel = page.locator('[data-testid="cycles"]');
    const rows = cyclesPanel.locator('[data-testid="cycle"]');
    const listed = () =>
      rows.evaluateAll((els) =>
        els.map((e) => ({
          kind: e.getAttribute('data-kind'),
          status: e.getAttribute('data-status'),
          workflowId: e.getAttribute('data-workflow'),
        })),
      );
    assert.equal(ranTasks.length, 2);
    // The page has been open since the first test: the tasks and the calls arrived by the event stream.
    await until(
      'the tasks and the calls in the Cycles panel, ended',
      async () => {
        const now = await listed();
        const ended = (id: string) => now.some((c) => c.workflowId === id && c.status === 'completed');
        return ranTasks.every((t) => ended(t.workflowId)) && ended(frozenCall);
      },
      30_000,
    );
    const all = await listed();
    for (const t of ranTasks) {
      const row = cyclesPanel.locator(`[data-testid="cycle"][data-workflow="${t.workflowId}"]`);
      assert.equal(await row.getAttribute('data-kind'), 'task', 'a task started without ForgeCycleKind, found by its workflow type');
      assert.equal(
        await row.getByRole('link', { name: t.workflowId }).getAttribute('href'),
        `${temporalUi}/namespaces/default/workflows/${t.workflowId}/${t.runId}/history`,
      );
      assert.match(await text(row), /completed[\s\S]*ago[\s\S]*(\d+ ms|\d+\.\d s|\d+ min \d+ s)/);
    }
    // Newest first: the question was asked after the note was written.
    const order = all.map((c) => c.workflowId);
    assert.ok(order.indexOf(ranTasks[1]!.workflowId) < order.indexOf(ranTasks[0]!.workflowId), order.join(', '));
    // roman_numeral's six calls (the MCP surface tags them ForgeCycleKind=call), each with its tool.
    const calls = all.filter((c) => c.kind === 'call');
    assert.equal(calls.length, 6, JSON.stringify(all));
    assert.match(await text(cyclesPanel.locator(`[data-testid="cycle"][data-workflow="${frozenCall}"]`)), /call[\s\S]*roman_numeral/);

    const choose = async (kind: string) => {
      await cyclesPanel.getByRole('group', { name: 'cycle kind' }).getByRole('button', { name: kind, exact: true }).click();
      assert.equal(await cyclesPanel.getByRole('button', { name: kind, exact: true }).getAttribute('aria-pressed'), 'true');
    };
    await choose('task');
    await until(
      'only the tasks',
      async () => {
        const now = await listed();
        return now.length === 2 && now.every((c) => c.kind === 'task');
      },
      10_000,
    );
    assert.deepEqual(
      (await listed()).map((c) => c.workflowId),
      [ranTasks[1]!.workflowId, ranTasks[0]!.workflowId],
    );
    if (process.env.FORGE_TEST_SCREENSHOTS)
      await page.screenshot({ path: path.join(process.env.FORGE_TEST_SCREENSHOTS, 'dashboard-cycles.png') });
    await choose('call');
    await until(
      'only the calls',
      async () => {
        const now = await listed();
        return now.length === 6 && now.every((c) => c.kind === 'call');
      },
      10_000,
    );
    await choose('evolve');
    await until('no evolve cycle', async () => (await text(cyclesPanel)).includes('No evolve cycles yet.'), 10_000);
    await choose('all');
    await until('everything again', async () => (await rows.count()) === all.length, 10_000);

    const bad = await rawRequest(port, { method: 'GET', path: '/api/cycles?kind=chores', headers: { authorization: `Bearer ${token}` } });
    assert.equal(bad.status, 400);
    assert.match(JSON.parse(bad.body).error, /^kind must be one of task, forge, improve, evolve, curate, deploy, call, replay$/);
    assert.deepEqual(pageErrors, []);
  });

  it("lists an evolve candidate awaiting consent with its patch, and sends the page's consent through the CLI's use case", async () => {
    // A verified candidate in the ledger whose cycle is gone: the consent reaches decideCandidate,
    // and the cycle's absence comes back in the use case's own words.
    const runs = createEvolveRuns(h.db.sql);
    const workflowId = `evolve-dashboard-${Date.now()}`;
    await runs.beginEvolve({
      id: 'cand-dashboard',
      workflowId,
      batchKey: 'routing-1',
      failureType: 'routing',
      evidenceIds: [1, 2],
      revision: 'abc123',
    });
    const digest = `sha256:${'ab'.repeat(32)}`;
    await runs.recordCandidate({
      workflowId,
      status: 'verified',
      reason: 'replay passed',
      rationale: 'prefer the catalog tool whose name the task says',
      diff: '--- a/harness/policy/ranking.ts\n+++ b/harness/policy/ranking.ts\n@@ -1 +1 @@\n-export const nameBonus = 0;\n+export const nameBonus = 0.1;',
      imageDigest: digest,
    });
    const row = page.locator('[data-testid="pending"][data-kind="consent"]');
    await row.waitFor({ timeout: 20_000 });
    assert.equal(await row.getAttribute('data-id'), 'cand-dashboard');
    assert.match(
      await text(row),
      /evolution consent[\s\S]*a harness patch for 2 routing failure\(s\) \(batch routing-1\)[\s\S]*prefer the catalog tool/,
    );
    assert.match(await text(row.locator('pre.diff')), /^\+export const nameBonus = 0\.1;$/m);
    await row.getByRole('button', { name: 'Approve' }).click();
    await until('the refusal on the page', async () => (await text(row)).includes('refused the consent'), 20_000);
    assert.match(
      await text(row.locator('.error')),
      new RegExp(
        `^the evolve cycle ${workflowId} refused the consent: .+— read the candidate again \\(forge evolve show cand-dashboard\\)`,
      ),
    );
    const [after] = await h.db.sql<{ consent: unknown }[]>`select consent from evolve_candidates where id = 'cand-dashboard'`;
    assert.equal(after?.consent, null, 'no consent recorded without its cycle');
    await runs.recordCandidate({ workflowId, status: 'refused', reason: 'test over' });
    await row.waitFor({ state: 'detached', timeout: 20_000 });
    assert.deepEqual(
      pageErrors.filter((e) => !/status of 409/.test(e)),
      [],
    );
  });

  it('refuses a request without the token, from another origin or for another host, and may not be framed', async () => {
    const post = (headers: Record<string, string>) =>
      rawRequest(port, { method: 'POST', path: '/api/freeze', headers: { 'content-type': 'application/json', ...headers }, body: '{}' });
    const none = await post({});
    assert.equal(none.status, 401);
    assert.match(JSON.parse(none.body).error, /^missing bearer token/);
    const wrong = await post({ authorization: 'Bearer not-the-token' });
    assert.equal(wrong.status, 401);
    const crossSite = await post({ authorization: `Bearer ${token}`, origin: 'http://evil.example' });
    assert.equal(crossSite.status, 403);
    assert.match(JSON.parse(crossSite.body).error, /Origin http:\/\/evil\.example refused/);
    // A sibling site (same Origin through a shared host name) and a request made from no page at all, said in words.
    const own = `http://127.0.0.1:${port}`;
    for (const [site, words] of [
      ['same-site', 'a request from a same-site page refused'],
      ['none', 'a request from no page refused'],
    ]) {
      const refused = await post({ authorization: `Bearer ${token}`, origin: own, 'sec-fetch-site': site! });
      assert.equal(refused.status, 403);
      assert.equal(JSON.parse(refused.body).error, `${words}: only the dashboard's own page may act`);
    }
    const rebound = await rawRequest(port, {
      method: 'GET',
      path: '/api/overview',
      headers: { host: `evil.example:${port}`, authorization: `Bearer ${token}` },
    });
    assert.equal(rebound.status, 403);
    const form = await post({ authorization: `Bearer ${token}`, 'content-type': 'text/plain' });
    assert.equal(form.status, 415);
    const [state] = await h.db.sql<{ value: { frozen: boolean } }[]>`select value from system_state where key = 'kill_switch'`;
    assert.equal(state?.value.frozen, false, 'none of them froze Forge');

    const index = await rawRequest(port, { method: 'GET', path: '/' });
    assert.equal(index.status, 200);
    assert.match(String(index.headers['content-security-policy']), /frame-ancestors 'none'/);
    assert.match(String(index.headers['content-security-policy']), /script-src 'self' 'sha256-/);
    assert.equal(index.headers['x-frame-options'], 'DENY');
    const outside = await rawRequest(port, { method: 'GET', path: '/../package.json' });
    assert.equal(outside.status, 404);
  });
});
