/**
 * A model that does not answer (the scripted model not running, ANTHROPIC_BASE_URL pointing at
 * nothing) used to read as the cycle failing: exit 1 and "its history in the Temporal UI shows the
 * step that failed". It is a component down: exit 3, naming what does not answer and the fix. The
 * worker here calls a port nobody listens on; real Temporal, Postgres and CLI.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../../infra/processes.ts';
import { createRegistry } from '../../services/catalog/registry.ts';
import { harnessCli } from '../helpers/cli.ts';
import { type Harness, startHarness } from '../helpers/harness.ts';
import { romanVersion } from '../helpers/roman-tool.ts';

let h: Harness;
let cli: ReturnType<typeof harnessCli>;
let port: number;

before(async () => {
  port = await freePort();
  // Where forge up would run the scripted model, and where the worker calls it: nothing listens there.
  const env = { ANTHROPIC_BASE_URL: `http://127.0.0.1:${port}`, FORGE_SCRIPTED_MODEL_PORT: String(port) };
  // The harness's own scripted model (a scenario it never serves) is not the one the worker calls.
  h = await startHarness({ scenarios: [{ name: 'unused', rules: [{ responses: [{ text: 'never asked' }] }] }], env });
  // The CLI shares the worker's settings, as a person's shell does.
  cli = harnessCli(h, { user: 'tester', timeoutMs: 150_000, env: { FORGE_SCRIPTED_MODEL_PORT: String(port) } });
  // Tools to improve, registered as a person would: no model needed to have them.
  // Names of their own: workflow ids are the shared Temporal's, and improve-roman_numeral is self-repair.test.ts's to assert on.
  const registry = createRegistry({ sql: h.db.sql, root: path.join(h.home, 'tools') });
  for (const name of ['down_roman', 'down_roman_json']) await registry.registerVersion(romanVersion(name, `model-down:${name}`));
});

after(() => h?.close());

describe('the model does not answer', () => {
  it('forge run --wait and forge forge --wait exit 3, naming the scripted model and forge up, and so do tasks/forges show --wait after', async () => {
    const [task, forge] = await Promise.all([
      cli('run', 'tell me one thing about a zebra', '--wait'),
      cli('forge', 'count the words in a text', '--wait', '--json'),
    ]);
    assert.equal(task.code, 3, `${task.stdout}\n${task.stderr}`);
    assert.match(
      task.stderr,
      new RegExp(
        `^error: the model is not available: nothing answers at http://127\\.0\\.0\\.1:${port}, where Forge's scripted model runs \\(no ANTHROPIC_API_KEY\\); task-\\S+ failed at a model call after its retries\\n {2}fix: forge up \\(starts the scripted model\\)`,
        'm',
      ),
    );
    assert.doesNotMatch(task.stderr, /Temporal UI/);
    // Said while the wait still runs, at the first failed attempts, not only when the retries ran out.
    const warnings = task.stderr.split('\n').filter((l) => l.startsWith('warning: '));
    assert.equal(warnings.length, 1, task.stderr);
    assert.match(
      warnings[0]!,
      new RegExp(
        `^warning: the model is not available: nothing answers at http://127\\.0\\.0\\.1:${port}, .*; task-\\S+ waits while Temporal retries its model call \\(attempt \\d\\)$`,
      ),
    );
    assert.ok(task.stderr.indexOf('warning: ') < task.stderr.indexOf('error: '), 'the warning comes first');
    // The same task re-attached to once it failed: the same error, fix and exit code.
    const id = /started (task-\S+)/.exec(task.stdout)?.[1] ?? /(task-\S+) failed at a model call/.exec(task.stderr)?.[1];
    assert.ok(id, task.stdout);
    const again = await cli('tasks', 'show', id, '--wait');
    assert.equal(again.code, 3, `${again.stdout}\n${again.stderr}`);
    assert.match(
      again.stderr,
      /^error: the model is not available: nothing answers at .*\n {2}fix: forge up \(starts the scripted model\)/m,
    );

    assert.equal(forge.code, 3, `${forge.stdout}\n${forge.stderr}`);
    const line = forge.json();
    assert.deepEqual([line.ok, line.error, line.component], [false, 'COMPONENT_DOWN', 'the model']);
    assert.match(String(line.workflowId), /^forge-/);
    assert.match(String(line.fix), /^forge up/);
    // The same forge re-attached to once it failed: the same error, fix and exit code.
    const forgeAgain = await cli('forges', 'show', String(line.workflowId), '--wait');
    assert.equal(forgeAgain.code, 3, `${forgeAgain.stdout}\n${forgeAgain.stderr}`);
    assert.match(
      forgeAgain.stderr,
      /^error: the model is not available: nothing answers at .*\n {2}fix: forge up \(starts the scripted model\)/m,
    );
  });

  it('forge improve --wait exits 3 too, naming where nothing answers and the fix', async () => {
    const [text, json] = await Promise.all([cli('improve', 'down_roman', '--wait'), cli('improve', 'down_roman_json', '--wait', '--json')]);
    assert.equal(text.code, 3, `${text.stdout}\n${text.stderr}`);
    assert.match(
      text.stderr,
      new RegExp(
        `^error: the model is not available: nothing answers at http://127\\.0\\.0\\.1:${port}, where Forge's scripted model runs \\(no ANTHROPIC_API_KEY\\); improve-down_roman failed at a model call after its retries\\n {2}fix: forge up \\(starts the scripted model\\)`,
        'm',
      ),
    );
    assert.doesNotMatch(text.stderr, /Temporal UI/);

    assert.equal(json.code, 3, `${json.stdout}\n${json.stderr}`);
    const line = json.json();
    assert.deepEqual(
      [line.ok, line.error, line.component, line.workflowId],
      [false, 'COMPONENT_DOWN', 'the model', 'improve-down_roman_json'],
    );
    assert.match(String(line.fix), /^forge up/);
    // The cycle's own record: it failed, the tool untouched.
    const [run] = await h.db.sql<{ status: string; to_version: number | null }[]>`
      select status, to_version from improve_runs where tool = 'down_roman'`;
    assert.deepEqual([run?.status, run?.to_version], ['failed', null]);
  });
});
