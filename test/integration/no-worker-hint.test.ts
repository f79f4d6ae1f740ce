/**
 * A `--wait` follower while a worker is down used to sit silent: `forge run --wait` when the task
 * waits on the sandbox queue (a forge's verification) with nobody polling it, and `forge forge
 * --wait` / `forge improve --wait` when no worker runs at all (their progress query, unanswered,
 * held the follow loop too). Each now says once, on stderr, which queue has no worker, where the
 * cycle waits, and the fix. Real Temporal, Postgres and CLI; the in-process worker serves the
 * control queue only, and the cycles of the last test are started on a control queue nobody polls.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createRegistry } from '../../services/catalog/registry.ts';
import { harnessEnv } from '../helpers/cli.ts';
import { type Harness, startHarness } from '../helpers/harness.ts';
import { romanVersion } from '../helpers/roman-tool.ts';

let h: Harness;
const children: ChildProcess[] = [];
const workflowIds: string[] = [];

before(async () => {
  h = await startHarness({ scenarioFiles: ['scenarios/forge-word-count.json', 'scenarios/demo.json'], role: 'control' });
});

after(async () => {
  for (const child of children) child.kill('SIGTERM');
  for (const id of workflowIds)
    await h.client.workflow
      .getHandle(id)
      .terminate('test over')
      .catch(() => {});
  await h?.close();
});

/**
 * Runs `forge <args>` and resolves with its output so far once stderr matches `until` (or it
 * exits, or time runs out); the cycle id its first line names (`started <id>`, `forging in <id>`,
 * `improving <tool> in <id>`) is terminated after the file.
 */
function runUntil(
  args: string[],
  until: RegExp,
  timeoutMs: number,
  env: Record<string, string> = {},
): Promise<{ stdout: string; stderr: string; exited: number | null; workflowId?: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, ['bin/forge.mjs', ...args], { env: harnessEnv(h, env), stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(proc);
    let stdout = '';
    let stderr = '';
    let workflowId: string | undefined;
    const done = (exited: number | null) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, exited, ...(workflowId ? { workflowId } : {}) });
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    proc.stdout.on('data', (d: Buffer) => {
      stdout += d;
      if (workflowId) return;
      workflowId = /^(?:started|forging in|improving \S+ in) (\S+)/m.exec(stdout)?.[1];
      if (workflowId) workflowIds.push(workflowId);
    });
    proc.stderr.on('data', (d: Buffer) => {
      stderr += d;
      if (until.test(stderr)) done(null);
    });
    proc.on('close', (code) => done(code));
  });
}

const FIX =
  /\n {2}fix: forge up starts the missing worker \(or run one in the foreground: forge worker\); forge doctor says what is down \(worker log: .*\/logs\/worker\.log\)\n/;

describe('forge run --wait with the sandbox worker down', () => {
  it('says once which queue has no worker, where the task waits, and the fix', async () => {
    const queue = h.cfg.FORGE_SANDBOX_QUEUE;
    const r = await runUntil(['run', 'how many words are in "a rose is a rose"?', '--wait'], /fix: .*\n/, 150_000);
    assert.equal(r.exited, null, `still waiting, not ended:\n${r.stdout}\n${r.stderr}`);
    assert.ok(r.workflowId, r.stdout);
    const warnings = r.stderr.split('\n').filter((l) => l.startsWith('warning: '));
    assert.deepEqual(warnings, [
      `warning: no worker polls ${queue} (the sandbox queue, where tool calls and forge verifications run in Docker): the task waits at forging until one does`,
    ]);
    assert.match(r.stderr, FIX);
    assert.ok(!r.stderr.includes(h.cfg.FORGE_TASK_QUEUE), 'the control queue has its worker: not named');
  });
});

describe('forge forge --wait and forge improve --wait with no worker at all', () => {
  it('each says once that no worker polls the control queue, that no worker has begun the cycle, and the fix', async () => {
    const registry = createRegistry({ sql: h.db.sql, root: path.join(h.home, 'tools') });
    await registry.registerVersion(romanVersion('roman_unserved', 'no-worker-hint:roman_unserved'));
    // A Forge whose worker is down: the CLI's control queue is one nobody polls.
    const queue = `${h.cfg.FORGE_TASK_QUEUE}-unserved`;
    const env = { FORGE_TASK_QUEUE: queue };
    const [forge, improve] = await Promise.all([
      runUntil(['forge', 'count the words in a text', '--wait'], /fix: .*\n/, 90_000, env),
      runUntil(['improve', 'roman_unserved', '--wait'], /fix: .*\n/, 90_000, env),
    ]);
    for (const [r, noun] of [
      [forge, 'forge'],
      [improve, 'improve cycle'],
    ] as const) {
      assert.equal(r.exited, null, `still waiting, not ended:\n${r.stdout}\n${r.stderr}`);
      assert.ok(r.workflowId, r.stdout);
      const warnings = r.stderr.split('\n').filter((l) => l.startsWith('warning: '));
      assert.deepEqual(warnings, [
        `warning: no worker polls ${queue} (the control queue, where the ${noun}'s workflow and model calls run): no worker has begun the ${noun} until one does`,
      ]);
      assert.match(r.stderr, FIX);
    }
    assert.equal(improve.workflowId, 'improve-roman_unserved');
  });
});
