import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { freePort } from '../../infra/processes.ts';

// The CLI as a user runs it: `forge up` on embedded defaults (its own Temporal dev server, PGlite,
// scripted model and worker, on free ports), `forge run --wait --json`, `forge doctor`, `forge down`.
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-e2e-'));
let env: NodeJS.ProcessEnv;

function forge(...args: string[]) {
  const res = spawnSync(process.execPath, ['bin/forge.mjs', ...args], { env, encoding: 'utf8', timeout: 240_000 });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr, json: () => JSON.parse(res.stdout.trim().split('\n').at(-1) ?? 'null') };
}

before(async () => {
  const { TEMPORAL_ADDRESS: _t, DATABASE_URL: _d, ANTHROPIC_BASE_URL: _a, ANTHROPIC_API_KEY: _k, ...rest } = process.env;
  env = {
    ...rest,
    FORGE_HOME: home,
    TEMPORAL_PORT: String(await freePort()),
    TEMPORAL_UI_PORT: String(await freePort()),
    FORGE_PGLITE_PORT: String(await freePort()),
    FORGE_SCRIPTED_MODEL_PORT: String(await freePort()),
    FORGE_TASK_QUEUE: 'e2e-control',
    FORGE_SANDBOX_QUEUE: 'e2e-sandbox',
    FORGE_POOL_SIZE: '1',
  };
});

after(() => {
  forge('down');
  fs.rmSync(home, { recursive: true, force: true });
});

it('forge up → run --wait → doctor → down, on embedded defaults', async () => {
  const up = forge('up', '--json');
  assert.equal(up.code, 0, up.stderr);
  const upOut = up.json();
  assert.equal(upOut.ok, true);
  assert.equal(upOut.scripted, true, 'with no ANTHROPIC_API_KEY Forge says it runs on the scripted model');
  assert.equal(upOut.uiUrl, `http://localhost:${env.TEMPORAL_UI_PORT}`);
  assert.ok(fs.existsSync(path.join(home, 'temporal.db')), 'Temporal history persists in the data directory');

  const run = forge('run', 'count the steps of a DNS check', '--wait', '--json');
  assert.equal(run.code, 0, run.stderr);
  const out = run.json();
  assert.equal(out.status, 'completed');
  assert.match(out.workflowId, /^task-/);
  assert.match(out.uiUrl, new RegExp(`/namespaces/default/workflows/${out.workflowId}$`));
  assert.match(out.result.answer, /count the steps of a DNS check/);

  const doctor = forge('doctor', '--json');
  assert.equal(doctor.code, 0, doctor.stdout);
  const checks = doctor.json().checks as { component: string; ok: boolean }[];
  assert.deepEqual(
    checks.filter((c) => !c.ok),
    [],
  );
  assert.ok(['docker', 'postgres', 'temporal', 'worker', 'llm'].every((c) => checks.some((x) => x.component === c)));

  const down = forge('down', '--json');
  assert.equal(down.code, 0);
  assert.deepEqual(down.json().stopped.sort(), ['pglite', 'scripted-model', 'temporal', 'worker']);

  const after = forge('doctor', '--json');
  assert.equal(after.code, 1, 'doctor fails once things are down');
  const temporal = (after.json().checks as { component: string; ok: boolean; fix?: string }[]).find((c) => c.component === 'temporal');
  assert.equal(temporal?.ok, false);
  assert.equal(temporal?.fix, 'forge up');
});

it('a malformed task gets a clear error and starts nothing', () => {
  const res = forge('run', 'x', '--json');
  assert.equal(res.code, 1);
  const out = res.json();
  assert.equal(out.error, 'INPUT_INVALID');
  assert.match(out.message, /describe the task in at least a few words/);
});
