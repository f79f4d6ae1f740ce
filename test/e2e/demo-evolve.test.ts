import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { e2eDown, e2eEnv } from '../helpers/e2e.ts';

// `forge demo evolve` as the README gives it, on embedded defaults and free ports: a routing failure
// through feedback, curation, the coding agent's patch, replay, consent from the CLI, swap, probe and
// promotion; the paraphrase then uses count_words on the promoted version. Run again, nothing to do.
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-demo-evolve-'));
const deployment = 'forge-e2e-evolve-control';
let env: NodeJS.ProcessEnv;

const forge = (...args: string[]) => spawnSync(process.execPath, ['bin/forge.mjs', ...args], { env, encoding: 'utf8', timeout: 600_000 });

before(async () => {
  env = { ...(await e2eEnv(home, 'e2e-evolve')), FORGE_DEPLOYMENT: deployment };
});

after(async () => {
  await e2eDown(env);
  fs.rmSync(home, { recursive: true, force: true });
});

it('forge demo evolve: failure → curation → patch → replay → consent → swap → probe → promoted; the paraphrase then uses count_words', () => {
  // The person's own evidence, from before the demo: the demo curates only what it created.
  assert.equal(forge('up').status, 0);
  const own = forge('run', 'tell me a fact about otters', '--wait', '--json');
  const ownTask = String(JSON.parse(own.stdout.trim()).workflowId);
  const fed = forge('feedback', ownTask, '--bad', 'the fact should have been about sea otters', '--json');
  assert.equal(fed.status, 0, fed.stdout + fed.stderr);
  const ownEvidence = Number(JSON.parse(fed.stdout.trim()).evidence.id);

  const run = forge('demo', 'evolve');
  assert.equal(run.status, 0, run.stdout.slice(-4000) + run.stderr.slice(-4000));
  const out = run.stdout;
  for (const step of [
    'recorded as failure evidence',
    'batch curate-',
    'verified: the batch passed',
    'waiting for consent: forge evolve approve',
    'promoted:',
  ])
    assert.ok(out.includes(step), `the demo shows "${step}"`);
  const [, after] = out.split('7. the paraphrase again');
  assert.match(after ?? '', /calls: count_words v1 succeeded/);
  assert.match(out, /Promote harness candidate .*\n.*The harness as installed/);
  assert.match(
    out,
    /http:\/\/localhost:\d+\/namespaces\/default\/workflows\/deploy-evolve-curate-/,
    'the deploy cycle has its Temporal UI link',
  );

  const kept = JSON.parse(forge('failures', 'show', String(ownEvidence), '--json').stdout.trim()).evidence;
  assert.equal(kept.curatedAt, undefined, "the person's own evidence waits for the nightly curation");
  assert.match(out, new RegExp(`3\\. curation of #(?!${ownEvidence}\\b)\\d+ alone`));

  const again = forge('demo', 'evolve');
  assert.equal(again.status, 0, again.stderr.slice(-2000));
  assert.match(again.stdout, /already routes the paraphrase to count_words/);
});
