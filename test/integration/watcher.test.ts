import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, it } from 'node:test';
import type { ForgeOutcome } from '../../domain/forge.ts';
import { type Harness, startHarness } from '../helpers/harness.ts';
import { until } from '../helpers/wait.ts';

// A person edits a registered tool's folder while the worker runs: the worker's watcher re-verifies
// the edit in the real sandbox before it becomes a version; a broken edit never displaces the last good one.
let h: Harness;

before(async () => {
  h = await startHarness({ scenarioFiles: ['scenarios/forge-word-count.json'] });
  const outcome = (await (
    await h.client.workflow.start('forgeWorkflow', {
      taskQueue: h.cfg.FORGE_TASK_QUEUE,
      workflowId: `forge-watch-${Date.now()}`,
      args: [{ need: 'count the words in a text', sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE }],
    })
  ).result()) as ForgeOutcome;
  assert.equal(outcome.status, 'registered');
});

after(() => h.close());

const versions = async () =>
  (await h.db.sql`select version, created_by from tool_versions where name = 'count_words' order by version`).map(
    (r) => `${r.version}:${r.created_by}`,
  );
const current = async () => (await h.db.sql`select current_version from tools where name = 'count_words'`)[0]?.current_version as number;

it('a good edit is verified in the sandbox and becomes the next version, by a human', async () => {
  const file = path.join(h.home, 'tools', 'count_words', 'v1', 'tool.ts');
  const original = fs.readFileSync(file, 'utf8');
  fs.writeFileSync(file, `${original}\n// Reviewed by a person: behaviour unchanged.\n`);
  await until('v2 registered from the edit', async () => (await current()) === 2);
  assert.deepEqual(await versions(), ['1:forge', '2:human']);
  assert.match(fs.readFileSync(path.join(h.home, 'tools', 'count_words', 'v2', 'tool.ts'), 'utf8'), /Reviewed by a person/);
  // The watcher puts v1 back just after registering v2: wait for it rather than race it.
  await until('v1 put back', async () => fs.readFileSync(file, 'utf8') === original, 10_000).catch(() => {});
  assert.equal(fs.readFileSync(file, 'utf8'), original, 'v1 on disk is what was registered as v1 again');
});

it('a broken edit is rejected and the last good version stays current', async () => {
  const file = path.join(h.home, 'tools', 'count_words', 'v2', 'tool.ts');
  const good = fs.readFileSync(file, 'utf8');
  fs.writeFileSync(file, good.replace('export async function run', 'export async function run(((('));
  const rejected = path.join(h.home, 'tools', '.rejected');
  await until('the broken edit set aside', async () => fs.existsSync(rejected) && fs.readdirSync(rejected).length > 0);
  await until('the good file restored', async () => fs.readFileSync(file, 'utf8') === good);
  assert.equal(await current(), 2);
  assert.deepEqual(await versions(), ['1:forge', '2:human']);
});
