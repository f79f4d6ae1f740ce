/**
 * Every `forge` command with --json prints exactly one JSON line on stdout — its result, or its
 * error — and exits with the code the README documents: 0 ok, 1 the thing failed or was refused,
 * 2 bad usage, 3 a component down. The test walks the command list itself (cli/main.ts), so a new
 * command without a row here fails it. And `forge run --wait` piped (not a terminal) prints plain
 * progress lines: phase and time since the start, no control characters.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { commandNames } from '../../cli/main.ts';
import { createRegistry } from '../../services/catalog/registry.ts';
import { createApprovalLedger } from '../../services/control/approvals.ts';
import { harnessCli, harnessEnv } from '../helpers/cli.ts';
import { type Harness, startHarness } from '../helpers/harness.ts';

let h: Harness;
let cli: ReturnType<typeof harnessCli>;

before(async () => {
  h = await startHarness({
    scenarios: [
      {
        name: 'cli-json',
        rules: [
          { match: { purpose: 'task.turn', first: 'zebra' }, responses: [{ text: 'Zebras have stripes.' }] },
          // Anything else (a forge started below, never followed) gets a plain refusal.
          { responses: [{ error: { status: 400, message: 'cli-json: not scripted' } }] },
        ],
      },
    ],
  });
  cli = harnessCli(h, { user: 'tester', timeoutMs: 60_000 });
});

after(() => h?.close());

/** The CLI with some of the harness's environment replaced (a broken setting, a server that is not there; undefined: unset). */
function cliWith(env: Record<string, string | undefined>, ...args: string[]) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const merged = { ...harnessEnv(h, { FORGE_USER: 'tester' }), ...env };
    for (const [k, v] of Object.entries(merged)) if (v === undefined) delete merged[k];
    const child = spawn(process.execPath, ['bin/forge.mjs', ...args], {
      env: merged,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 60_000,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function oneJsonLine(what: string, r: { code: number | null; stdout: string; stderr: string }): Record<string, unknown> {
  const lines = r.stdout.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `${what}: exactly one line on stdout, got:\n${r.stdout}\nstderr:\n${r.stderr}`);
  assert.ok(r.stdout.endsWith('\n'), `${what}: the line ends`);
  const value = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.equal(typeof value.ok, 'boolean', `${what}: has ok`);
  assert.equal(value.ok, r.code === 0, `${what}: ok is true exactly when the exit code is 0 (exit ${r.code}: ${lines[0]})`);
  return value;
}

describe('--json: one line, every command', () => {
  it('walks the command list', async () => {
    // A finished task and a session to point feedback and `sessions show` at.
    const ran = await cli('run', 'tell me one thing about a zebra', '--session', 'zebras', '--wait', '--json');
    const task = oneJsonLine('run --wait', ran);
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(task.status, 'completed');
    const taskId = String(task.workflowId);

    const BAD_CONFIG = { FORGE_POOL_SIZE: 'lots' };
    // command → [args after the name, expected exit code, environment]
    const rows: Record<string, [string[], number, Record<string, string>?][]> = {
      // up and demo start services: here they are asked with a broken setting, which they refuse before starting anything.
      up: [[[], 2, BAD_CONFIG]],
      demo: [[[], 2, BAD_CONFIG]],
      down: [[[], 0]],
      doctor: [[[], 1]],
      run: [[['tell me about a zebra'], 0]],
      sessions: [[['show', 'zebras'], 0]],
      tasks: [
        [['show', taskId], 0],
        [['show', 'task-nobody-000000'], 1],
      ],
      forge: [[['count the zebras in a text'], 0]],
      forges: [
        [['ls'], 0],
        [['show', 'forge-nobody-000000'], 1],
      ],
      improve: [
        [['no_such_tool'], 1],
        [['ls'], 0],
        [['show', 'improve-nobody@00000000-0000-0000-0000-000000000000'], 1],
      ],
      evolve: [[['ls'], 0]],
      feedback: [[[taskId, '--bad', 'it should have counted the stripes'], 0]],
      failures: [[['ls'], 0]],
      schedule: [[['ls'], 0]],
      tools: [
        [['ls'], 0],
        [['frobnicate', 'x'], 2],
      ],
      approvals: [[[], 0]],
      approve: [[['task-nobody.write.1'], 1]],
      reject: [[['task-nobody.write.1'], 1]],
      answer: [[['task-nobody.question.1', 'blue'], 1]],
      freeze: [[['--reason', 'cli-json'], 0]],
      thaw: [[[], 0]],
      budget: [[[], 0]],
      audit: [[[], 0]],
      worker: [[[], 2]],
      sandbox: [[['exec', '/no/such/tool.ts', '--input', '{}'], 2]],
    };
    const names = commandNames();
    const servers = ['mcp', 'dashboard'];
    const unlisted = names.filter((n) => !(n in rows) && !servers.includes(n));
    assert.deepEqual(unlisted, [], 'every command has a row');

    const check = (name: string, args: string[], code: number, r: { code: number | null; stdout: string; stderr: string }) => {
      const what = `forge ${name} ${args.join(' ')}`.trim();
      assert.equal(r.code, code, `${what} --json: exit ${code}\n${r.stdout}\n${r.stderr}`);
      const line = oneJsonLine(what, r);
      // A refusal names its error and how to fix it; a result that is a failure (doctor's checks, a failed task) has its own fields.
      if (code >= 2) {
        assert.equal(typeof line.error, 'string', `${what}: names the error`);
        assert.equal(typeof line.fix, 'string', `${what}: says how to fix it`);
      }
    };
    const run = ([name, args, , env]: [string, string[], number, Record<string, string>?]) =>
      env ? cliWith(env, name, ...args, '--json') : cli(name, ...args, '--json');
    const all = Object.entries(rows).flatMap(([name, cases]) =>
      cases.map(([args, code, env]) => [name, args, code, env] as [string, string[], number, Record<string, string>?]),
    );
    // freeze, then thaw, in that order and alone; the rest three at a time (each is a process of its own).
    const ordered = all.filter(([name]) => name === 'freeze' || name === 'thaw');
    const rest = all.filter(([name]) => name !== 'freeze' && name !== 'thaw');
    for (let i = 0; i < rest.length; i += 3) {
      const chunk = rest.slice(i, i + 3);
      const results = await Promise.all(chunk.map(run));
      for (const [j, [name, args, code]] of chunk.entries()) check(name, args, code, results[j]!);
    }
    for (const c of ordered) check(c[0], c[1], c[2], await run(c));

    // The servers have no result to print: --json is a flag they do not know, bad usage. The dashboard
    // answers with the error line like any command; mcp's stdout is the MCP protocol, so it says so on stderr.
    const dashboard = await cli('dashboard', '--json');
    assert.equal(dashboard.code, 2, dashboard.stderr);
    const refusal = oneJsonLine('forge dashboard', dashboard);
    assert.deepEqual([refusal.error, typeof refusal.fix], ['USAGE', 'string']);
    const mcp = await cli('mcp', '--json');
    assert.equal(mcp.code, 2, mcp.stderr);
    assert.equal(mcp.stdout, '');
    assert.match(mcp.stderr, /^error: unknown option '--json'/);
    const help = await cli('help', '--json');
    assert.equal(help.code, 0);
    assert.deepEqual(oneJsonLine('forge help', help).commands, names);
    // An unknown command, asked for JSON, answers in JSON too.
    const unknown = await cli('frobnicate', '--json');
    assert.equal(unknown.code, 2);
    assert.equal(oneJsonLine('forge frobnicate', unknown).error, 'USAGE');
  });

  it('exit 3 when a component does not answer, with the command that fixes it', async () => {
    const r = await cliWith({ DATABASE_URL: 'postgres://forge:forge@127.0.0.1:1/forge' }, 'approvals', '--json');
    assert.equal(r.code, 3, r.stderr);
    const line = oneJsonLine('approvals with Postgres down', r);
    assert.equal(line.error, 'COMPONENT_DOWN');
    assert.equal(line.component, 'Postgres');
    assert.match(String(line.fix), /DATABASE_URL/);
    const human = await cliWith({ TEMPORAL_ADDRESS: '127.0.0.1:1' }, 'run', 'tell me about a zebra');
    assert.equal(human.code, 3);
    assert.match(human.stderr, /^error: Temporal is not available: cannot reach 127\.0\.0\.1:1.*\n {2}fix: /);
  });
});

describe("a command's own output is text for a person", () => {
  it('pin, archive, freeze and thaw print no JSON log lines on stderr, unless FORGE_LOG_LEVEL asks for them', async () => {
    const registry = createRegistry({ sql: h.db.sql, root: path.join(h.home, 'tools') });
    await registry.registerVersion({
      name: 'zebra_stripes',
      source: 'export const manifest = {};\nexport async function run() {\n  return { stripes: 42 };\n}\n',
      tests: '',
      manifest: {
        description: 'Counts the stripes of a zebra',
        sideEffect: 'read',
        permissions: { network: [], env: [] },
        inputSchema: { type: 'object', properties: {} },
        outputSchema: { type: 'object' },
      },
      createdBy: 'human',
      idempotencyKey: 'cli-json:zebra_stripes',
    });
    // As a person runs them: no FORGE_LOG_LEVEL in the environment (the test runner sets one).
    const asPerson = (...args: string[]) => cliWith({ FORGE_LOG_LEVEL: undefined }, ...args);
    // A tool nobody called yet has no success rate: "0%" would read as every call failing.
    const shown = await asPerson('tools', 'show', 'zebra_stripes');
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /\n {2}calls: 0, success - \(no calls yet\), avg -\n/);
    for (const args of [
      ['tools', 'pin', 'zebra_stripes', '--reason', 'hand-tuned'],
      ['tools', 'unpin', 'zebra_stripes'],
      ['freeze', '--reason', 'quiet please'],
      ['thaw'],
    ]) {
      const r = await asPerson(...args);
      assert.equal(r.code, 0, `forge ${args.join(' ')}: ${r.stderr}`);
      assert.notEqual(r.stdout, '', `forge ${args.join(' ')} says what it did`);
      assert.equal(r.stderr, '', `forge ${args.join(' ')}: nothing on stderr`);
    }
    const verbose = await cliWith({ FORGE_LOG_LEVEL: 'info' }, 'tools', 'pin', 'zebra_stripes', '--reason', 'logged');
    assert.equal(verbose.code, 0, verbose.stderr);
    const logged = verbose.stderr
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { level: string; msg: string });
    assert.ok(
      logged.some((l) => l.level === 'info' && l.msg === 'tool pinned'),
      verbose.stderr,
    );
    const archived = await asPerson('tools', 'archive', 'zebra_stripes', '--reason', 'a better one exists');
    assert.equal(archived.code, 0, archived.stderr);
    assert.equal(archived.stderr, '', 'forge tools archive: nothing on stderr');
  });
});

describe('forge approvals: one line per summary, the whole text on show', () => {
  it('a summary that spans lines (a tool input, a question) is one line in the listing, whole in show and --json', async () => {
    const ledger = createApprovalLedger(h.db.sql);
    const id = `task-cli-json-${Date.now()}.write.1`;
    const summary = `save_note v1 with {"title":"groceries",\n  "body":"milk\neggs\nbread"}\n— writes need a person's approval: ${'x'.repeat(200)}`;
    await ledger.requestApproval({ id, workflowId: id.replace(/\.write\.1$/, ''), kind: 'write', tool: 'save_note', summary });
    try {
      const listed = await cli('approvals');
      assert.equal(listed.code, 0, listed.stderr);
      const lines = listed.stdout.split('\n');
      const at = lines.indexOf(id);
      assert.ok(at >= 0, listed.stdout);
      assert.match(
        lines[at + 1] ?? '',
        /^ {4}write save_note: save_note v1 with \{"title":"groceries", "body":"milk eggs bread"\} — writes .*x…$/,
      );
      assert.ok((lines[at + 1] ?? '').length <= 4 + 'write save_note: '.length + 160, lines[at + 1]);
      assert.equal(lines[at + 2], `    (all of it: forge approvals show ${id})`);
      assert.equal(lines[at + 3], `    decide with: forge approve ${id}   (or: forge reject ${id})`);

      const shown = await cli('approvals', 'show', id);
      assert.equal(shown.code, 0, shown.stderr);
      assert.match(shown.stdout, new RegExp(`^${id.replace(/\./g, '\\.')}: write save_note, pending, asked `));
      assert.ok(shown.stdout.includes(summary.replace(/^/gm, '  ')), shown.stdout);
      assert.match(shown.stdout, new RegExp(`decide with: forge approve ${id.replace(/\./g, '\\.')} `));
      const json = await cli('approvals', 'show', id, '--json');
      assert.equal((json.json().approval as { summary: string }).summary, summary);
      assert.equal(
        ((await cli('approvals', '--json')).json().pending as { id: string; summary: string }[]).find((a) => a.id === id)?.summary,
        summary,
      );
      const unknown = await cli('approvals', 'show', 'task-nobody.write.9', '--json');
      assert.deepEqual([unknown.code, unknown.json().error], [1, 'APPROVAL_NOT_FOUND']);
    } finally {
      await ledger.resolveApproval({ id, status: 'expired' });
    }
  });
});

describe('progress when stdout is not a terminal', () => {
  it('forge run --wait prints one plain line per phase with its time, then the answer', async () => {
    const r = await cli('run', 'one more thing about a zebra', '--wait');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stdout.includes('\r') && !r.stdout.includes('\x1b'), 'no carriage return, no escape sequence');
    const progress = r.stdout.split('\n').filter((l) => l.startsWith('  … '));
    assert.ok(progress.length >= 3, r.stdout);
    for (const l of progress) assert.match(l, /^ {2}… +\d+\.\d s {2}[a-z-]+( — .+)?$/, l);
    assert.ok(
      progress.some((l) => /thinking — turn 1$/.test(l)),
      'the attempt (the model turn) is named',
    );
    assert.match(r.stdout, /\ncompleted\nZebras have stripes\.\n/);
  });
});
