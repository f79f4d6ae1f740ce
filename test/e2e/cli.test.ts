import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { e2eDown, e2eEnv } from '../helpers/e2e.ts';

// The CLI as a user runs it: `forge up` on embedded defaults (its own Temporal dev server, PGlite,
// scripted model and worker, on free ports), `forge run --wait --json`, `forge doctor`, `forge down`.
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-e2e-'));
let env: NodeJS.ProcessEnv;

function forge(...args: string[]) {
  const res = spawnSync(process.execPath, ['bin/forge.mjs', ...args], { env, encoding: 'utf8', timeout: 240_000 });
  return {
    code: res.status,
    stdout: res.stdout,
    stderr: res.stderr,
    json: () => JSON.parse(res.stdout.trim().split('\n').at(-1) ?? 'null'),
  };
}

before(async () => {
  env = await e2eEnv(home, 'e2e');
});

after(async () => {
  await e2eDown(env);
  fs.rmSync(home, { recursive: true, force: true });
});

it('forge up → run --wait → doctor, on embedded defaults', async () => {
  const up = forge('up', '--json');
  assert.equal(up.code, 0, up.stdout + up.stderr);
  const upOut = up.json();
  assert.equal(upOut.ok, true);
  assert.equal(upOut.scripted, true, 'with no ANTHROPIC_API_KEY Forge says it runs on the scripted model');
  assert.equal(upOut.uiUrl, `http://localhost:${env.TEMPORAL_UI_PORT}`);
  assert.ok(fs.existsSync(path.join(home, 'temporal.db')), 'Temporal history persists in the data directory');
  // The MCP endpoint: up on loopback, with a bearer token generated into the data directory (owner-only).
  assert.deepEqual(upOut.mcp, { url: `http://127.0.0.1:${env.FORGE_MCP_PORT}/mcp`, token: path.join(home, 'mcp-token') });
  assert.equal(fs.statSync(path.join(home, 'mcp-token')).mode & 0o777, 0o600);
  const refused = await fetch(upOut.mcp.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  assert.equal(refused.status, 401, 'no token, no MCP');
  // The dashboard: up on loopback, its address printed with the same token in its fragment.
  const token = fs.readFileSync(path.join(home, 'mcp-token'), 'utf8').trim();
  const dashboard = `http://127.0.0.1:${env.FORGE_DASHBOARD_PORT}/`;
  assert.ok((upOut.steps as string[]).includes(`dashboard: ${dashboard}#token=${token}`), String(upOut.steps));
  assert.equal((await fetch(dashboard)).status, 200, 'the page itself holds no data');
  assert.equal((await fetch(`${dashboard}api/overview`)).status, 401, 'no token, no data');
  const overview = await fetch(`${dashboard}api/overview`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(overview.status, 200);
  assert.equal(((await overview.json()) as { killSwitch: { frozen: boolean } }).killSwitch.frozen, false);

  const run = forge('run', 'count the steps of a DNS check', '--wait', '--json');
  assert.equal(run.code, 0, run.stderr);
  const out = run.json();
  assert.equal(out.status, 'completed');
  assert.match(out.workflowId, /^task-/);
  assert.match(out.uiUrl, new RegExp(`/namespaces/default/workflows/${out.workflowId}$`));
  assert.match(out.result.answer, /count the steps of a DNS check/);

  const doctor = forge('doctor', '--json');
  assert.equal(doctor.code, 0, doctor.stdout);
  const checks = doctor.json().checks as { component: string; ok: boolean; detail: string }[];
  assert.deepEqual(
    checks.filter((c) => !c.ok),
    [],
  );
  assert.ok(['docker', 'postgres', 'temporal', 'worker', 'llm', 'mcp'].every((c) => checks.some((x) => x.component === c)));
  const model = Number(fs.readFileSync(path.join(home, 'run', 'scripted-model.pid'), 'utf8'));
  assert.match(checks.find((c) => c.component === 'llm')?.detail ?? '', new RegExp(`scripted model at \\S+ \\(pid ${model}\\) answers`));
});

it('forge forge, tools, approvals, approve, budget, freeze and thaw, as a person runs them', async () => {
  const forged = forge('forge', 'count the words in a text', '--wait', '--json');
  assert.equal(forged.code, 0, forged.stdout + forged.stderr);
  assert.deepEqual([forged.json().outcome.status, forged.json().outcome.name], ['registered', 'count_words']);

  const ls = forge('tools', 'ls', '--json').json();
  assert.deepEqual(
    ls.tools.map((t: { name: string }) => t.name),
    ['count_words'],
  );
  assert.equal(ls.tools[0].stats.level, 'probationary');
  const show = forge('tools', 'show', 'count_words', '--json').json();
  assert.equal(show.tool.manifest.sideEffect, 'read');
  const history = forge('tools', 'history', 'count_words', '--json').json();
  assert.deepEqual(
    history.history.map((h: { version: number; createdBy: string }) => [h.version, h.createdBy]),
    [[1, 'forge']],
  );
  const missing = forge('tools', 'show', 'no_such_tool', '--json');
  assert.equal(missing.code, 1);
  assert.match(missing.json().message, /no_such_tool/);

  // A write by a new tool waits for a person.
  const started = forge('run', 'create a note titled groceries with milk and eggs', '--json').json();
  let pending: { id: string; kind: string; workflow_id: string }[] = [];
  for (let i = 0; i < 240 && !pending.length; i++) {
    pending = forge('approvals', '--json').json().pending;
    if (!pending.length) await new Promise((r) => setTimeout(r, 500));
  }
  assert.equal(pending[0]?.workflow_id, started.workflowId);
  assert.equal(pending[0]?.kind, 'write');
  const wrong = forge('approve', 'not-a-real-approval', '--json');
  assert.equal(wrong.code, 1);
  assert.equal(wrong.json().error, 'APPROVAL_NOT_FOUND');
  const approved = forge('approve', pending[0]!.id, '--json');
  assert.equal(approved.code, 0, approved.stdout);
  assert.equal(approved.json().approve, true);
  const again = forge('approve', pending[0]!.id, '--json');
  assert.equal(again.json().error, 'APPROVAL_DECIDED');

  const budget = forge('budget', '--json').json();
  assert.equal(budget.limit, 3);
  assert.equal(budget.usedToday, 2, 'count_words and create_note were forged today');

  const frozen = forge('freeze', '--reason', 'e2e', '--json');
  assert.equal(frozen.json().frozen, true);
  const doctor = forge('doctor', '--json');
  assert.equal(doctor.code, 0, `frozen is a state a person chose, not a fault:\n${doctor.stdout}`);
  const killSwitch = (doctor.json().checks as { component: string; ok: boolean; notice?: boolean; detail: string }[]).find(
    (c) => c.component === 'kill switch',
  );
  assert.deepEqual([killSwitch?.ok, killSwitch?.notice], [true, true]);
  assert.match(killSwitch?.detail ?? '', /FROZEN .*\(e2e\).*resume with: forge thaw$/);
  assert.match(forge('doctor').stdout, /^NOTE kill switch +FROZEN by /m);
  assert.equal(forge('tools', 'ls', '--json').code, 0, 'read-only commands still answer while frozen');
  assert.equal(forge('thaw', '--json').json().frozen, false);
});

it("a broken edit of a tool's folder is refused by the running Forge, and calls keep running the registered code", async () => {
  // README: edit a version's folder and the worker re-verifies it; a broken edit never displaces the last good one.
  const file = path.join(home, 'tools', 'count_words', 'v1', 'tool.ts');
  const registered = fs.readFileSync(file, 'utf8');
  fs.appendFileSync(file, '\nexport const broken = ;\n');
  let rejected: { kind: string; tool: string }[] = [];
  for (let i = 0; i < 120 && !rejected.length; i++) {
    rejected = forge('audit', '--kind', 'human_edit_rejected', '--json').json().entries;
    if (!rejected.length) await new Promise((r) => setTimeout(r, 500));
  }
  assert.equal(rejected[0]?.tool, 'count_words', `the edit was verified and refused; the worker log said:\n${watcherLog()}`);
  assert.equal(fs.readFileSync(file, 'utf8'), registered, 'the folder holds the registered code again');
  const history = forge('tools', 'history', 'count_words', '--json').json();
  assert.deepEqual(
    history.history.map((h: { version: number }) => h.version),
    [1],
    'no version was added',
  );
  const run = forge('run', 'how many words are in "one two three"?', '--wait', '--json');
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.equal(run.json().status, 'completed');
});

/** What the worker said about tool folders and sandboxes (and any error): why an edit went unhandled, if it did. */
function watcherLog(): string {
  const pid = Number(fs.readFileSync(path.join(home, 'run', 'worker.pid'), 'utf8'));
  let alive = true;
  try {
    process.kill(pid, 0);
  } catch {
    alive = false;
  }
  const file = path.join(home, 'logs', 'worker.log');
  if (!fs.existsSync(file)) return `(worker ${pid} ${alive ? 'alive' : 'gone'}; no ${file})`;
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  return `worker ${pid} ${alive ? 'alive' : 'gone'}\n${lines
    .filter((l) => /registry-watch|tool folder|edit|sandbox|"level":"(warn|error)"/.test(l))
    .slice(-40)
    .join('\n')}`;
}

it('a SIGKILLed worker (and scripted model) is down for doctor at once, and forge up restarts it at once', () => {
  const pidFile = path.join(home, 'run', 'worker.pid');
  const killed = Number(fs.readFileSync(pidFile, 'utf8').trim());
  process.kill(killed, 'SIGKILL');
  const model = Number(fs.readFileSync(path.join(home, 'run', 'scripted-model.pid'), 'utf8').trim());
  process.kill(model, 'SIGKILL');
  // Temporal still lists the dead worker's pollers for minutes: doctor must believe the pid file.
  const doctor = forge('doctor', '--json');
  assert.equal(doctor.code, 1, doctor.stdout);
  const worker = (doctor.json().checks as { component: string; ok: boolean; detail: string; fix?: string }[]).find(
    (c) => c.component === 'worker',
  );
  assert.equal(worker?.ok, false);
  assert.match(
    worker!.detail,
    new RegExp(`^down: the worker Forge started \\(pid ${killed}, in .*worker\\.pid\\) is not running; it crashed or was killed`),
  );
  assert.match(worker!.fix ?? '', /^forge up \(restarts it/);
  const llm = (doctor.json().checks as { component: string; ok: boolean; detail: string }[]).find((c) => c.component === 'llm');
  assert.deepEqual(
    { ok: llm?.ok, detail: llm?.detail },
    { ok: false, detail: `down: the scripted model Forge started (pid ${model}) is not running; it crashed or was killed` },
  );

  const up = forge('up', '--json');
  assert.equal(up.code, 0, up.stdout + up.stderr);
  const restarted = Number(fs.readFileSync(pidFile, 'utf8').trim());
  assert.notEqual(restarted, killed);
  assert.ok(
    (up.json().steps as string[]).includes(
      `worker: the worker Forge started (pid ${killed}) had crashed or been killed; started a new one (pid ${restarted})`,
    ),
    up.stdout,
  );
  assert.equal(forge('doctor', '--json').code, 0, 'doctor is content again');
  const run = forge('run', 'count the steps of a DNS check', '--wait', '--json');
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.json().status, 'completed', 'the new worker does the work');
});

it('forge down stops everything it started, and doctor then says what to run', () => {
  const down = forge('down', '--json');
  assert.equal(down.code, 0);
  const stopped = (down.json().stopped as string[]).sort();
  assert.ok(
    stopped.some((s) => s.startsWith('control worker forge-e2e-control-img-')),
    'the control worker container stops',
  );
  assert.deepEqual(
    stopped.filter((s) => !s.startsWith('control worker')),
    ['dashboard', 'mcp', 'pglite', 'scripted-model', 'temporal', 'worker'],
  );

  const after = forge('doctor', '--json');
  assert.equal(after.code, 1, 'doctor fails once things are down');
  const temporal = (after.json().checks as { component: string; ok: boolean; fix?: string }[]).find((c) => c.component === 'temporal');
  assert.equal(temporal?.ok, false);
  assert.equal(temporal?.fix, 'forge up');
  // Every component is still listed; those whose check needs a component that is down say so.
  const lines = after.json().checks as { component: string; ok: boolean; detail: string }[];
  for (const [component, needs] of [
    ['kill switch', 'Postgres'],
    ['worker', 'Temporal'],
    ['control worker', 'Temporal'],
  ])
    assert.equal(lines.find((c) => c.component === component)?.detail, `not checked: ${needs} is down`, component);
});

it('a malformed task gets a clear error and starts nothing', () => {
  const res = forge('run', 'x', '--json');
  assert.equal(res.code, 2, 'bad usage');
  const out = res.json();
  assert.equal(out.error, 'INPUT_INVALID');
  assert.match(out.message, /describe the task in at least a few words/);
});
