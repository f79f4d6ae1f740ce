/**
 * `forge run --wait` while the sandbox worker is down: the task forges a tool whose verification
 * waits on the sandbox queue, where nobody polls, and the wait used to sit silent. It now says
 * once, on stderr, which queue has no worker, where the task waits, and the fix. Real Temporal,
 * Postgres and CLI; the in-process worker serves the control queue only.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { harnessEnv } from '../helpers/cli.ts';
import { type Harness, startHarness } from '../helpers/harness.ts';

let h: Harness;
let child: ChildProcess | undefined;
let workflowId: string | undefined;

before(async () => {
  h = await startHarness({ scenarioFiles: ['scenarios/forge-word-count.json', 'scenarios/demo.json'], role: 'control' });
});

after(async () => {
  child?.kill('SIGTERM');
  if (workflowId)
    await h.client.workflow
      .getHandle(workflowId)
      .terminate('test over')
      .catch(() => {});
  await h?.close();
});

/** Runs `forge <args>` and resolves with its output so far once stderr matches `until` (or it exits, or time runs out). */
function runUntil(args: string[], until: RegExp, timeoutMs: number): Promise<{ stdout: string; stderr: string; exited: number | null }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, ['bin/forge.mjs', ...args], { env: harnessEnv(h), stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    let stdout = '';
    let stderr = '';
    const done = (exited: number | null) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, exited });
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    proc.stdout.on('data', (d: Buffer) => {
      stdout += d;
      workflowId ??= /^started (task-\S+)/m.exec(stdout)?.[1];
    });
    proc.stderr.on('data', (d: Buffer) => {
      stderr += d;
      if (until.test(stderr)) done(null);
    });
    proc.on('close', (code) => done(code));
  });
}

describe('forge run --wait with the sandbox worker down', () => {
  it('says once which queue has no worker, where the task waits, and the fix', async () => {
    const queue = h.cfg.FORGE_SANDBOX_QUEUE;
    const r = await runUntil(['run', 'how many words are in "a rose is a rose"?', '--wait'], /fix: .*\n/, 150_000);
    assert.equal(r.exited, null, `still waiting, not ended:\n${r.stdout}\n${r.stderr}`);
    assert.ok(workflowId, r.stdout);
    const warnings = r.stderr.split('\n').filter((l) => l.startsWith('warning: '));
    assert.deepEqual(warnings, [
      `warning: no worker polls ${queue} (the sandbox queue, where tool calls and forge verifications run in Docker): the task waits at forging until one does`,
    ]);
    assert.match(
      r.stderr,
      /\n {2}fix: forge up starts the missing worker; forge doctor says what is down \(worker log: .*\/logs\/worker\.log\)\n/,
    );
    assert.ok(!r.stderr.includes(h.cfg.FORGE_TASK_QUEUE), 'the control queue has its worker: not named');
  });
});
