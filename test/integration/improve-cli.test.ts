/**
 * `forge improve ls | show`: an improve cycle could be started and followed (`forge improve <tool>
 * --wait`) but, once started without --wait — or by the evaluator, a task's failure, a forge under
 * a taken name — not seen or re-attached to from the CLI. Now `forge improve ls` lists cycles,
 * newest first, and `forge improve show <id|tool>` prints one as it stands, ended ones exactly as
 * `forge improve --wait` ends (outcome and gate lines); `--wait` follows a running one. Through the
 * real CLI, Temporal, Postgres, Docker and the scripted model.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createRegistry } from '../../services/catalog/registry.ts';
import { harnessCli } from '../helpers/cli.ts';
import { type Harness, startHarness } from '../helpers/harness.ts';
import { romanSource, romanVersion } from '../helpers/roman-tool.ts';

const TOOL = 'roman_cli';
const source = romanSource.replace("name: 'roman_numeral'", `name: '${TOOL}'`);
// A rewrite the gate passes (the code, said otherwise), and one it refuses (its suite fails).
const rewritten = source.replace("let roman = '';", "let roman = ''; // built from the largest value down");
const broken = source.replace('return { roman };', "return { roman: roman.toLowerCase() + '?' };");

let h: Harness;
let cli: ReturnType<typeof harnessCli>;
const started: string[] = [];

before(async () => {
  const rewrite = (src: string, diagnosis: string) => [
    { tool_use: { name: 'submit_rewrite', input: { diagnosis, source: src, tests: '' } } },
  ];
  h = await startHarness({
    scenarios: [
      {
        name: 'improve-cli',
        rules: [
          {
            match: { purpose: 'improve.rewrite', user: `/^Tool: ${TOOL} v\\d+[\\s\\S]*\\(break it\\)/m` },
            responses: rewrite(broken, 'Lower case reads softer.'),
          },
          { match: { purpose: 'improve.rewrite', user: `/^Tool: ${TOOL} v\\d+/m` }, responses: rewrite(rewritten, 'Said more plainly.') },
        ],
      },
    ],
  });
  cli = harnessCli(h, { user: 'tester', timeoutMs: 180_000 });
  const registry = createRegistry({ sql: h.db.sql, root: path.join(h.home, 'tools') });
  for (const name of [TOOL, 'ls']) await registry.registerVersion(romanVersion(name, `improve-cli:${name}`));
});

after(async () => {
  for (const id of started)
    await h.client.workflow
      .getHandle(id)
      .terminate('test over')
      .catch(() => {});
  await h?.close();
});

/** The lines from the outcome line on: what `forge improve --wait` prints at the end. */
const endLines = (stdout: string, status: string) => stdout.slice(stdout.indexOf(`\n${status}: `) + 1);

describe('forge improve ls | show: improve cycles seen and followed later', () => {
  it('lists none yet; a cycle started without --wait is followed by show --wait to what it came to, with the gate lines', async () => {
    const none = await cli('improve', 'ls');
    assert.equal(none.code, 0, none.stderr);
    assert.equal(none.stdout, 'no improve cycles yet: start one with  forge improve <tool>\n');

    const start = await cli('improve', TOOL, '--reason', 'make it plainer');
    assert.equal(start.code, 0, start.stderr);
    const key = /follow it: forge improve show (improve-roman_cli@\S+) --wait\n/.exec(start.stdout)?.[1];
    assert.ok(key, start.stdout);
    assert.match(start.stdout, /^improving roman_cli in improve-roman_cli\n/);

    const followed = await cli('improve', 'show', key, '--wait');
    assert.equal(followed.code, 0, `${followed.stdout}\n${followed.stderr}`);
    assert.match(followed.stdout, new RegExp(`^improve ${key}: roman_cli \\(manual: make it plainer\\)\\n`));
    const promoted = endLines(followed.stdout, 'promoted');
    assert.match(promoted, /^promoted: .*\ngate: passed: .*\n {2}pass suite the existing test suite/);
    assert.doesNotMatch(followed.stderr, /warning:/, 'a worker serves it: nothing to warn about');

    // Seen again without --wait, it reads the same from the ledger.
    const shown = await cli('improve', 'show', key);
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(endLines(shown.stdout, 'promoted'), promoted);
  });

  it('show of a tool is its latest cycle, ending as forge improve --wait ended it; ls lists both, newest first', async () => {
    const waited = await cli('improve', TOOL, '--reason', '(break it)', '--wait');
    assert.equal(waited.code, 1, `${waited.stdout}\n${waited.stderr}`);
    const refused = endLines(waited.stdout, 'refused');
    assert.match(refused, /^refused: no rewrite passed the regression gate in 3 attempt\(s\)[^\n]*\ngate: failed: .*\n {2}FAIL suite /);

    for (const id of [TOOL, `improve-${TOOL}`]) {
      const shown = await cli('improve', 'show', id);
      assert.equal(shown.code, 0, shown.stderr);
      assert.match(shown.stdout, /^improve improve-roman_cli@\S+: roman_cli \(manual: \(break it\)\)\n/);
      assert.equal(endLines(shown.stdout, 'refused'), refused, `forge improve show ${id}`);
    }
    // --wait on an ended cycle: the same end, the same exit code.
    const again = await cli('improve', 'show', TOOL, '--wait');
    assert.equal(again.code, 1, again.stderr);
    assert.equal(endLines(again.stdout, 'refused'), refused);

    const json = (await cli('improve', 'show', TOOL, '--json')).json() as {
      ok: boolean;
      cycle: { status: string; tool: string; trigger: string; attempts: { passed: boolean }[]; gate: { passed: boolean } };
    };
    assert.deepEqual(
      [json.ok, json.cycle.status, json.cycle.tool, json.cycle.trigger, json.cycle.attempts.map((a) => a.passed), json.cycle.gate.passed],
      [true, 'refused', TOOL, 'manual', [false, false, false], false],
    );

    const listed = await cli('improve', 'ls');
    assert.equal(listed.code, 0, listed.stderr);
    const lines = listed.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^id +status +started +attempts {2}tool: outcome$/);
    assert.match(lines[1]!, /^improve-roman_cli@\S+ +refused +\S+ +3 +roman_cli: no rewrite passed the regression gate/);
    assert.match(lines[2]!, /^improve-roman_cli@\S+ +promoted +\S+ +1 +roman_cli: /);
    assert.equal(lines[1]!.indexOf('refused'), lines[0]!.indexOf('status'));
    assert.equal(lines.at(-1), 'one cycle: forge improve show <id|tool> [--wait]');
    const listedJson = (await cli('improve', 'ls', '--limit', '1', '--json')).json() as { cycles: { status: string }[]; total: number };
    assert.deepEqual([listedJson.cycles.map((c) => c.status), listedJson.total], [['refused'], 2]);
  });

  it('an unknown id or tool names forge improve ls; an id of another cycle names the command that shows it; unbegun reads so', async () => {
    const unknown = await cli('improve', 'show', `improve-${TOOL}@00000000-0000-0000-0000-000000000000`, '--json');
    assert.equal(unknown.code, 1, unknown.stdout);
    assert.deepEqual(
      [unknown.json().error, unknown.json().fix],
      [
        'IMPROVE_NOT_FOUND',
        'use the id forge improve ls lists (improve-<tool>@<run id>), or a tool name for its latest cycle: forge improve ls',
      ],
    );
    const never = await cli('improve', 'show', 'never_improved');
    assert.equal(never.code, 1, never.stdout);
    assert.equal(
      never.stderr,
      'error: never_improved has had no improve cycle\n  fix: forge improve never_improved starts one; forge improve ls lists recent cycles\n',
    );

    const task = `task-not-an-improve-${Date.now()}`;
    await h.client.workflow.start('taskWorkflow', {
      taskQueue: `${h.cfg.FORGE_TASK_QUEUE}-nobody`,
      workflowId: task,
      args: [{ task: 'a question', sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE }],
    });
    started.push(task);
    const notImprove = await cli('improve', 'show', task, '--json');
    assert.equal(notImprove.code, 1, notImprove.stdout);
    const refusal = notImprove.json();
    assert.deepEqual(
      [refusal.error, refusal.message, refusal.fix],
      [
        'NOT_AN_IMPROVE_CYCLE',
        `${task} is a task cycle (taskWorkflow), not an improve cycle`,
        `forge tasks show ${task} shows it; forge improve ls lists improve cycles`,
      ],
    );

    // A tool named ls is improved with --tool; here on a control queue nobody polls, so no worker begins it.
    const nobody = harnessCli(h, { user: 'tester', timeoutMs: 60_000, env: { FORGE_TASK_QUEUE: `${h.cfg.FORGE_TASK_QUEUE}-nobody` } });
    const ls = await nobody('improve', '--tool', 'ls');
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, /^improving ls in improve-ls\n/);
    started.push('improve-ls');
    const unbegun = await cli('improve', 'show', 'ls');
    assert.equal(unbegun.code, 0, unbegun.stderr);
    assert.match(unbegun.stdout, /^improve improve-ls@\S+: ls\n/);
    assert.match(unbegun.stdout, /\nrunning — not begun: no worker has picked it up yet/);
    assert.match(unbegun.stdout, /\nfollow it: forge improve show improve-ls@\S+ --wait\n$/);
    // `forge improve ls` still lists: the running one has no ledger row until a worker begins it.
    const listed = await cli('improve', 'ls');
    assert.doesNotMatch(listed.stdout, /improve-ls@/);
  });
});
