/**
 * What a new user sees when a command line is wrong, with nothing of Forge running: the CLI in a
 * child process, as a person runs it (a tester's report: option errors that blamed "the task" with
 * the schema's words, --help that was an unknown option, missing arguments judged as bad values).
 * Every case here fails before Forge is reached, so no Temporal, Postgres or Docker is needed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { joinDashedNumbers } from '../../cli/args.ts';
import { AUDIT_KINDS } from '../../domain/audit.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-cli-usage-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** `forge <args>` with a home of its own and nothing listening where Forge would be (port 1 refuses at once). */
function offlineForge(args: string[], env: Record<string, string | undefined> = {}) {
  const r = spawnSync(process.execPath, ['bin/forge.mjs', ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
    env: {
      ...Object.fromEntries(
        Object.entries(process.env).filter(([n]) => !n.startsWith('TEMPORAL_') && !n.startsWith('FORGE_') && n !== 'DATABASE_URL'),
      ),
      FORGE_HOME: path.join(tmp, 'home'),
      DATABASE_URL: 'postgres://forge:forge@127.0.0.1:1/forge',
      TEMPORAL_ADDRESS: '127.0.0.1:1',
      ...env,
    } as NodeJS.ProcessEnv,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const RUN_USAGE =
  /usage: forge run "<task>" \[--session id\] \[--wait\] \[--json\] \[--max-turns n\] \[--max-tool-calls n\] \[--max-tokens n\]/;

describe('forge run: options and arguments', () => {
  it('a bound that is not a number names the option and what it takes, not "the task"', () => {
    const r = offlineForge(['run', 'count the words in a text', '--max-turns', 'abc']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^error: --max-turns "abc" is not valid: it takes a whole number from 1 to 50 \(default 8\)\n/);
    assert.match(r.stderr, RUN_USAGE);
    assert.doesNotMatch(r.stderr, /invalid task|limits\.|NaN|expected number/);
  });

  it('a bound out of range says the range, for each bound', () => {
    const calls = offlineForge(['run', 'count the words in a text', '--max-tool-calls', '0']);
    assert.equal(calls.code, 2);
    assert.match(calls.stderr, /--max-tool-calls "0" is not valid: it takes a whole number from 1 to 200 \(default 16\)/);
    const tokens = offlineForge(['run', 'count the words in a text', '--max-tokens', '1.5']);
    assert.equal(tokens.code, 2);
    assert.match(tokens.stderr, /--max-tokens "1\.5" is not valid: it takes a whole number from 1000 to 5000000 \(default 300000\)/);
  });

  it('a session id that is not a slug is refused as the session id, with what a valid one looks like, not as "the task"', () => {
    for (const args of [
      ['run', 'count the words in a text', '--session', 'my groceries!'],
      ['sessions', 'show', 'my groceries!'],
    ]) {
      const r = offlineForge(args);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^error: invalid session id: "my groceries!": a session id is a short slug: a letter or digit, then letters/);
      assert.match(
        r.stderr,
        /\n {2}fix: name the session with a slug such as groceries or q3-report_v2 \(forge sessions lists the ones in use\)\n$/,
      );
      assert.doesNotMatch(r.stderr, /invalid task|fix the task/);
    }
  });

  it('no task: says a task is missing, with the usage line', () => {
    const r = offlineForge(['run']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^error: forge run needs a task: what the agent should do, in words/);
    assert.match(r.stderr, RUN_USAGE);
    assert.doesNotMatch(r.stderr, /invalid task|at least a few words/);
  });

  it('--help prints the command usage, bounds included, and exits 0', () => {
    const r = offlineForge(['run', '--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^usage:\n {2}forge run "<task>" .*\[--max-turns n\] \[--max-tool-calls n\] \[--max-tokens n\]\n/);
    assert.match(r.stdout, /start a task workflow/);
    assert.doesNotMatch(r.stdout, /forge improve/, 'only the command asked about');
    assert.equal(r.stderr, '');
    assert.equal(offlineForge(['tools', '-h']).code, 0);
  });

  it('forge help lists the bounds too', () => {
    const r = offlineForge(['help']);
    assert.match(r.stdout, /forge run "<task>" .*\[--max-turns n\] \[--max-tool-calls n\] \[--max-tokens n\]/);
  });

  it('with --json, the refusal is one JSON line with the code, the message and the fix', () => {
    const r = offlineForge(['run', '--json']);
    assert.equal(r.code, 2);
    const line = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.deepEqual([line.ok, line.error], [false, 'USAGE']);
    assert.match(String(line.message), /forge run needs a task/);
    assert.match(String(line.fix), RUN_USAGE);
  });
});

describe('forge schedule', () => {
  it('an unknown schedule is named, with the command that lists them, not "forge up creates it"', () => {
    for (const sub of ['pause', 'unpause', 'trigger']) {
      const r = offlineForge(['schedule', sub, 'nosuch']);
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        /^error: there is no Forge schedule "nosuch"\n {2}fix: forge schedule ls lists Forge's schedules \(forge-nightly-curation\); pause, unpause and trigger without an id act on forge-nightly-curation\n$/,
      );
    }
    const json = JSON.parse(offlineForge(['schedule', 'pause', 'nosuch', '--json']).stdout) as Record<string, unknown>;
    assert.deepEqual([json.error, json.scheduleId], ['SCHEDULE_NOT_FOUND', 'nosuch']);
  });

  it('an unknown subcommand is bad usage, named, with the usage', () => {
    const r = offlineForge(['schedule', 'frobnicate']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^error: unknown schedule command "frobnicate"\n {2}fix: usage: forge schedule \[ls\]/);
  });
});

describe('forge mcp and forge dashboard: help and --port', () => {
  it('help shows the address this configuration gives, not a fixed port', () => {
    const mcp = offlineForge(['mcp', '--help'], { FORGE_MCP_PORT: '18999' });
    assert.equal(mcp.code, 0, mcp.stderr);
    // stdout is the MCP protocol's: help goes to stderr.
    assert.match(mcp.stderr, /the Streamable HTTP endpoint \(forge up starts it\): http:\/\/127\.0\.0\.1:18999\/mcp\n.*FORGE_MCP_PORT/);
    assert.doesNotMatch(mcp.stderr, /8235/);
    const dashboard = offlineForge(['dashboard', '--help'], { FORGE_DASHBOARD_PORT: '18998' });
    assert.equal(dashboard.code, 0, dashboard.stderr);
    assert.match(dashboard.stdout, /the web dashboard on http:\/\/127\.0\.0\.1:18998\/ \(FORGE_DASHBOARD_HOST, FORGE_DASHBOARD_PORT;/);
    assert.doesNotMatch(dashboard.stdout, /8234/);
  });

  it('a bad --port (negative too) names the option and its range, never the parser', () => {
    for (const [args, value] of [
      [['mcp', '--http', '--port', '-3'], '-3'],
      [['dashboard', '--port', '-3'], '-3'],
      [['dashboard', '--port', '70000'], '70000'],
    ] as const) {
      const r = offlineForge([...args]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(`^error: --port "${value}" is not valid: it takes a whole number from 1 to 65535 \\(or 0 for any free port\\)\n`),
      );
      assert.doesNotMatch(r.stderr, /ambiguous|Did you forget/);
    }
  });
});

describe("a listing's options given to show are refused, not ignored", () => {
  it('tasks, forges, sessions, failures and audit', () => {
    for (const [args, message] of [
      [['tasks', 'show', 'task-x', '--limit', '3'], '--limit is an option of the listing (forge tasks [ls]), not of show'],
      [['forges', 'show', 'forge-x', '--limit', '3'], '--limit is an option of the listing (forge forges [ls]), not of show'],
      [['sessions', 'show', 'groceries', '--limit', '3'], '--limit is an option of the listing (forge sessions [ls]), not of show'],
      [
        ['failures', 'show', '1', '--since', '2h', '--limit', '3'],
        '--since, --limit are options of the listing (forge failures [ls]), not of show',
      ],
      [['audit', 'show', '1', '--kind', 'tool_call'], '--kind is an option of the listing (forge audit), not of show'],
    ] as const) {
      const r = offlineForge([...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.ok(r.stderr.startsWith(`error: ${message}\n  fix: usage: forge ${args[0]}`), r.stderr);
    }
  });
});

describe('help lines', () => {
  it('schedule and sandbox list every option the commands take', () => {
    const schedule = offlineForge(['schedule', '--help']);
    assert.match(schedule.stdout, /forge schedule \[ls\] \[--json\] \| pause\|unpause \[<id>\] \[--reason r\] \| trigger \[<id>\]/);
    const sandbox = offlineForge(['sandbox', '--help']);
    assert.match(
      sandbox.stdout,
      /forge sandbox exec <tool-file> --input '<json>' \[--env NAME\[=VALUE\]\]\.\.\. \[--timeout <ms>\] \[--json\]/,
    );
    assert.match(
      sandbox.stdout,
      /forge sandbox verify <tool-dir> \[--name <tool-name>\] \[--no-live\] \[--env NAME\[=VALUE\]\]\.\.\. \[--live-input '<json>'\] \[--json\]/,
    );
  });
});

describe('parser refusals', () => {
  it('a parser refusal starts lower-case, as every other error does', () => {
    const r = offlineForge(['tasks', '--bogus']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^error: unknown option '--bogus'\n/);
  });
});

describe('missing arguments say what is missing', () => {
  it('forge improve without a tool', () => {
    const r = offlineForge(['improve']);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /^error: forge improve needs the name of the tool to improve \(forge tools ls lists them\)\n {2}fix: usage: forge improve <tool>/,
    );
    assert.doesNotMatch(r.stderr, /invalid improve request|snake_case/);
  });

  it('forge forge without a need, forge tools show without a name, forge approve without an id', () => {
    assert.match(offlineForge(['forge']).stderr, /^error: forge forge needs a description of the tool/);
    assert.match(offlineForge(['tools', 'show']).stderr, /^error: forge tools show needs the name of a tool/);
    assert.match(offlineForge(['approve']).stderr, /^error: forge approve needs the id of the approval/);
    assert.match(offlineForge(['feedback', 'task-1']).stderr, /^error: forge feedback needs --bad/);
    assert.match(offlineForge(['audit', 'show']).stderr, /^error: forge audit show needs the id of an audit entry/);
  });
});

describe('forge audit --kind', () => {
  it('a kind Forge never writes is refused, exit 2, listing the kinds', () => {
    const r = offlineForge(['audit', '--kind', 'bogus']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /^error: --kind "bogus" is not an audit kind: it takes one of tool_call, refused_call, replay, promotion, rollback/,
    );
    const json = offlineForge(['audit', '--kind', 'bogus', '--json']);
    const line = JSON.parse(json.stdout) as Record<string, unknown>;
    assert.deepEqual([json.code, line.ok, line.error, line.kinds], [2, false, 'USAGE', Object.keys(AUDIT_KINDS)]);
  });

  it("README's audit row names every kind the code writes", () => {
    const row = fs
      .readFileSync(path.join(root, 'README.md'), 'utf8')
      .split('\n')
      .find((l) => l.startsWith('| `forge audit [--tool'));
    assert.ok(row, 'the forge audit row');
    const missing = Object.keys(AUDIT_KINDS).filter((k) => !row.includes(`\`${k}\``));
    assert.deepEqual(missing, []);
  });
});

describe('forge sandbox exec and verify: the path they were given', () => {
  const example = 'examples/tools/fetch_exchange_rate';

  it('exec on a tool folder: exit 2, pointing at its tool.ts and at sandbox verify, no raw EISDIR', () => {
    const r = offlineForge(['sandbox', 'exec', example, '--input', '{}']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^error: <tool-file> examples\/tools\/fetch_exchange_rate is a folder: sandbox exec runs one tool file\n/);
    assert.match(
      r.stderr,
      /fix: run its tool: forge sandbox exec examples\/tools\/fetch_exchange_rate\/tool\.ts --input '<json>'; or verify the whole folder: forge sandbox verify examples\/tools\/fetch_exchange_rate/,
    );
    assert.doesNotMatch(r.stderr, /EISDIR/);
  });

  it('exec on a missing file: exit 2, with what to pass', () => {
    const r = offlineForge(['sandbox', 'exec', 'no/such/tool.ts', '--input', '{}', '--json']);
    assert.equal(r.code, 2);
    const line = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(line.message, '<tool-file> no/such/tool.ts does not exist');
    assert.match(String(line.fix), /a tool's \.ts file/);
  });

  it('verify on a file: exit 2, pointing at its folder, no raw ENOTDIR', () => {
    const r = offlineForge(['sandbox', 'verify', `${example}/tool.ts`, '--no-live']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /is a file: sandbox verify takes the tool's folder\n {2}fix: verify the folder that holds it: forge sandbox verify \S+fetch_exchange_rate;/,
    );
    assert.doesNotMatch(r.stderr, /ENOTDIR/);
  });
});

describe('--json refusals are JSON lines', () => {
  it('forge dashboard --json: exit 2 with the error line on stdout, not silence', () => {
    const r = offlineForge(['dashboard', '--json']);
    assert.equal(r.code, 2, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 1, r.stdout);
    const line = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.deepEqual([line.ok, line.error], [false, 'USAGE']);
    assert.match(String(line.message), /forge dashboard is a server/);
    assert.match(String(line.fix), /without --json: it prints the address/);
  });
});

describe('Postgres down: the fix fits the database in use', () => {
  it('DATABASE_URL unset (the embedded database): forge up, not "check DATABASE_URL"', () => {
    const r = offlineForge(['approvals', '--json'], { DATABASE_URL: undefined, FORGE_PGLITE_PORT: '1' });
    assert.equal(r.code, 3, r.stderr);
    const line = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(line.error, 'COMPONENT_DOWN');
    assert.match(String(line.fix), /^forge up \(starts Forge's embedded Postgres/);
    assert.doesNotMatch(String(line.fix), /check DATABASE_URL/);
  });

  it('DATABASE_URL set: check it', () => {
    const r = offlineForge(['approvals', '--json']);
    assert.equal(r.code, 3, r.stderr);
    assert.match(String((JSON.parse(r.stdout) as Record<string, unknown>).fix), /^check DATABASE_URL and that its server runs/);
  });
});

describe('--limit on every listing', () => {
  it('a negative, zero or non-number --limit names the option, its range and default, and the command usage: never the parser', () => {
    const cases: [string[], number, RegExp][] = [
      [['tasks', '--limit', '-3'], 20, /forge tasks \[ls\] \[--limit n\]/],
      [['forges', 'ls', '--limit', '0'], 20, /forge forges \[ls\] \[--limit n\]/],
      [['sessions', '--limit', '-3'], 50, /forge sessions \[ls\] \[--limit n\]/],
      [['failures', '--limit', 'abc'], 50, /forge failures \[ls\] \[--since 24h\] \[--limit n\]/],
      [['audit', '--limit', '-3'], 20, /forge audit .*\[--limit n\]/],
    ];
    for (const [args, dflt, usage] of cases) {
      const r = offlineForge(args);
      const value = args[args.length - 1]!;
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(
        r.stderr,
        new RegExp(`^error: --limit "${value}" is not valid: it takes a whole number from 1 to 1000 \\(default ${dflt}\\)\\n`),
      );
      assert.match(r.stderr, usage, args.join(' '));
      assert.doesNotMatch(r.stderr, /ambiguous|To specify an option argument/);
    }
  });

  it('a negative bound of forge run is judged as any bad bound is', () => {
    const r = offlineForge(['run', 'count the words in a text', '--max-turns', '-2']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^error: --max-turns "-2" is not valid: it takes a whole number from 1 to 50 \(default 8\)\n/);
  });

  it('joins only a number option with a dash-led value, and nothing after --', () => {
    assert.deepEqual(joinDashedNumbers(['ls', '--limit', '-3', '--json'], ['--limit']), ['ls', '--limit=-3', '--json']);
    assert.deepEqual(joinDashedNumbers(['--limit', '--json'], ['--limit']), ['--limit', '--json']);
    assert.deepEqual(joinDashedNumbers(['--wait', '-3'], ['--limit']), ['--wait', '-3']);
    assert.deepEqual(joinDashedNumbers(['--', '--limit', '-3'], ['--limit']), ['--', '--limit', '-3']);
  });
});
