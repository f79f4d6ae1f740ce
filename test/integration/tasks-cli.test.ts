/**
 * `forge tasks`: a task started without --wait could not be seen from the CLI at all (only MCP's
 * get_result). Now `forge tasks show <id>` prints it as it stands — status, answer and calls as
 * `forge run --wait` prints them, or its phase while it runs — `--wait` re-attaches to it, and
 * `forge tasks ls` lists recent ones. Through the real CLI, Temporal, Postgres and the scripted model.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sleep } from '../../infra/processes.ts';
import { createKillSwitch } from '../../services/control/kill-switch.ts';
import { harnessCli } from '../helpers/cli.ts';
import { type Harness, startHarness } from '../helpers/harness.ts';

let h: Harness;
let cli: ReturnType<typeof harnessCli>;
const started: string[] = [];

before(async () => {
  h = await startHarness({
    scenarios: [
      {
        name: 'tasks-cli',
        rules: [
          {
            match: { purpose: 'task.turn', first: 'ostrich' },
            responses: [{ tool_use: { name: 'search_tools', input: { query: 'ostrich facts' } } }, { text: 'Ostriches cannot fly.' }],
          },
          // Searches on every turn, so a bound stops it.
          {
            match: { purpose: 'task.turn', first: 'penguin' },
            responses: [{ tool_use: { name: 'search_tools', input: { query: 'penguin facts' } } }],
          },
          { match: { purpose: 'task.turn', first: 'slow' }, responses: [{ text: 'Slow, but done.', delay_ms: 6000 }] },
          { match: { purpose: 'task.turn', first: 'stuck' }, responses: [{ text: 'never seen', delay_ms: 30_000 }] },
          { match: { purpose: 'task.turn', first: 'otters' }, responses: [{ text: 'Otters hold hands while they sleep.' }] },
        ],
      },
    ],
  });
  cli = harnessCli(h, { user: 'tester', timeoutMs: 60_000 });
});

after(async () => {
  for (const id of started)
    await h.client.workflow
      .getHandle(id)
      .terminate('test over')
      .catch(() => {});
  await h?.close();
});

/** `forge run "<task>"` without --wait: the id it printed, and the hint it gave. */
async function runDetached(task: string): Promise<string> {
  const r = await cli('run', task);
  assert.equal(r.code, 0, r.stderr);
  const id = /^started (task-\S+)/m.exec(r.stdout)?.[1];
  assert.ok(id, r.stdout);
  assert.match(r.stdout, new RegExp(`follow it: forge tasks show ${id} --wait`));
  started.push(id);
  return id;
}

describe('forge tasks: a task started without --wait, seen and followed later', () => {
  it('show --wait re-attaches and prints the answer and calls as run --wait does; show prints the same once it ended', async () => {
    const id = await runDetached('tell me one thing about an ostrich');
    const followed = await cli('tasks', 'show', id, '--wait');
    assert.equal(followed.code, 0, followed.stderr);
    assert.match(followed.stdout, new RegExp(`^task ${id}: tell me one thing about an ostrich\\n`));
    assert.match(followed.stdout, /\ncompleted\nOstriches cannot fly\.\ncalls:\n {2}1\. search_tools \{"query":"ostrich facts"\} → /);

    const shown = await cli('tasks', 'show', id);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /\ncompleted\nOstriches cannot fly\.\ncalls:\n {2}1\. search_tools/);
    const json = (await cli('tasks', 'show', id, '--json')).json() as {
      ok: boolean;
      task: { status: string; result: { answer: string; calls: { tool: string }[] } };
    };
    assert.deepEqual(
      [json.ok, json.task.status, json.task.result.answer, json.task.result.calls.map((c) => c.tool)],
      [true, 'completed', 'Ostriches cannot fly.', ['search_tools']],
    );

    const listed = await cli('tasks');
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^id +status +started +task\n/, 'a header row, as the other listings have');
    assert.match(listed.stdout, new RegExp(`${id} +completed .* tell me one thing about an ostrich`));
  });

  it('a running task shows its phase and how to follow it; --wait then follows it to its answer', async () => {
    const id = await runDetached('a slow question');
    let shown = await cli('tasks', 'show', id);
    for (let i = 0; i < 20 && !/thinking/.test(shown.stdout); i++) {
      await sleep(250);
      shown = await cli('tasks', 'show', id);
    }
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /\nrunning — thinking \(turn 1\)\n/);
    assert.match(shown.stdout, new RegExp(`follow it: forge tasks show ${id} --wait\\n$`));

    const followed = await cli('tasks', 'show', id, '--wait', '--json');
    assert.equal(followed.code, 0, followed.stderr);
    const line = followed.json();
    assert.deepEqual([line.ok, line.status, (line.result as { answer: string }).answer], [true, 'completed', 'Slow, but done.']);
  });

  it('a task terminated from outside shows why; --wait on it exits 1; an unknown id names the fix', async () => {
    const id = await runDetached('a stuck question');
    let shown = await cli('tasks', 'show', id);
    for (let i = 0; i < 20 && !/thinking/.test(shown.stdout); i++) {
      await sleep(250);
      shown = await cli('tasks', 'show', id);
    }
    await h.client.workflow.getHandle(id).terminate('nobody needs it any more');
    shown = await cli('tasks', 'show', id);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /\nterminated\nterminated by \S+: nobody needs it any more\n/);
    const waited = await cli('tasks', 'show', id, '--wait');
    assert.equal(waited.code, 1, waited.stdout);
    // as forge run --wait ends on it: why, and where its history is
    assert.match(waited.stderr, /^failed: terminated by \S+: nobody needs it any more\n {2}fix: its history in the Temporal UI/m);
    const waitedJson = await cli('tasks', 'show', id, '--wait', '--json');
    assert.equal(waitedJson.code, 1, waitedJson.stdout);
    const failure = waitedJson.json();
    assert.deepEqual([failure.ok, failure.error, failure.status], [false, 'CYCLE_FAILED', 'terminated']);
    assert.match(String(failure.message), /nobody needs it any more/);
    assert.match(String(failure.fix), /Temporal UI/);

    // A task no worker has begun (its queue has none) has no row yet: Temporal still knows what it was asked.
    const unbegun = `task-unbegun-${Date.now()}`;
    await h.client.workflow.start('taskWorkflow', {
      taskQueue: `${h.cfg.FORGE_TASK_QUEUE}-nobody`,
      workflowId: unbegun,
      args: [{ task: 'a question nobody picks up', sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE }],
    });
    started.push(unbegun);
    const notBegun = await cli('tasks', 'show', unbegun);
    assert.equal(notBegun.code, 0, notBegun.stderr);
    assert.match(notBegun.stdout, new RegExp(`^task ${unbegun}: a question nobody picks up\n`));
    assert.match(notBegun.stdout, /\nrunning — not begun: no worker has picked it up yet/);

    const unknown = await cli('tasks', 'show', 'task-nobody-000000', '--json');
    assert.equal(unknown.code, 1);
    const refusal = unknown.json();
    assert.equal(refusal.error, 'TASK_NOT_FOUND');
    assert.match(String(refusal.fix), /forge tasks/);
  });

  it("a task the scenarios have no rule for fails with one line saying so and what to do, not the scripted model's whole 400", async () => {
    const r = await cli('run', 'tell me one thing about a walrus', '--wait');
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const failed = /^failed: (.*)$/m.exec(r.stderr)?.[1] ?? '';
    assert.match(
      failed,
      /the scripted model has no scenario rule for this request \(model call "task\.turn"\); set ANTHROPIC_API_KEY for a real model, or add a rule to a scenario file \(docs\/scenarios\.md\)$/,
    );
    assert.ok(failed.length < 300, `one short line: ${failed}`);
    assert.doesNotMatch(r.stdout + r.stderr, /scenarios loaded|Last user message/);
  });

  it('a task a bound stopped names the option that raises it, not the workflow field', async () => {
    const r = await cli('run', 'tell me one thing about a penguin', '--max-turns', '1', '--wait');
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      /\nstopped \(--max-turns\)\nstopped: no answer after 1 turn, the bound per task \(raise it: forge run --max-turns <n>, or maxTurns in MCP's run_task\)\n/,
    );
    assert.doesNotMatch(r.stdout, /limits\.|\(maxTurns\)/);
  });

  it('while Forge is frozen, run without --wait and show say so (who, since, why, forge thaw); thawed, the task goes on to its answer', async () => {
    const ended = await runDetached('one thing about otters');
    assert.equal((await cli('tasks', 'show', ended, '--wait')).code, 0);
    const killSwitch = createKillSwitch(h.db.sql, 0);
    await killSwitch.freeze('tester', 'checking what tasks say');
    const frozen =
      /^(?: {2})?Forge is frozen by tester since \S+ \(checking what tasks say\): this task waits until it is thawed — forge thaw$/m;
    let id: string;
    try {
      const r = await cli('run', 'another thing about otters');
      assert.equal(r.code, 0, r.stderr);
      id = /^started (task-\S+)/m.exec(r.stdout)?.[1] ?? '';
      started.push(id);
      assert.match(r.stdout, frozen);
      assert.match(r.stdout, new RegExp(`forge thaw\n {2}follow it: forge tasks show ${id} --wait\n$`));
      const json = await cli('run', 'a third thing about otters', '--json');
      started.push(String(json.json().workflowId));
      const said = json.json().frozen as { by: string; reason: string };
      assert.deepEqual([said.by, said.reason], ['tester', 'checking what tasks say']);

      const shown = await cli('tasks', 'show', id);
      assert.equal(shown.code, 0, shown.stderr);
      assert.match(shown.stdout, /\nrunning — /);
      assert.match(shown.stdout, frozen, 'said on its own line under the task');
      const shownJson = (await cli('tasks', 'show', id, '--json')).json();
      assert.equal((shownJson.frozen as { by: string }).by, 'tester');
      // A task that ended is not held by the freeze: nothing is said of it.
      const over = await cli('tasks', 'show', ended);
      assert.doesNotMatch(over.stdout, /frozen/);
      assert.equal((await cli('tasks', 'show', ended, '--json')).json().frozen, undefined);
    } finally {
      await killSwitch.thaw('tester');
    }
    const followed = await cli('tasks', 'show', id, '--wait');
    assert.equal(followed.code, 0, followed.stderr);
    assert.match(followed.stdout, /\ncompleted\nOtters hold hands while they sleep\.\n/);
    assert.doesNotMatch((await cli('tasks', 'show', id)).stdout, /frozen/);
  });
});
