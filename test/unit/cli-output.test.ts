/**
 * The CLI's contract with scripts and people (issue 13, item 3): exit codes by what went wrong,
 * --json errors as one line, the usage a bad command line is answered with, and progress — a live
 * line with phase, attempt and elapsed time on a terminal, plain lines anywhere else.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseArgs } from 'node:util';
import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, RetryState } from '@temporalio/common';
import { componentDownIn, settled } from '../../app/follow.ts';
import { usageOf } from '../../cli/main.ts';
import { capturingJson, EXIT, exitCodeFor, printJson, reportCycleFailure, reportError, usageError } from '../../cli/output.ts';
import { attemptLabel, progressPrinter } from '../../cli/progress.ts';
import { loadConfig } from '../../domain/config.ts';
import { ComponentDownError, ConfigError, ForgeError, InvalidInputError } from '../../domain/errors.ts';

/** What a function writes to stdout and stderr. */
async function captured(fn: () => unknown): Promise<{ stdout: string; stderr: string; value: unknown }> {
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  let stdout = '';
  let stderr = '';
  process.stdout.write = ((s: string) => {
    stdout += s;
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => {
    stderr += s;
    return true;
  }) as typeof process.stderr.write;
  try {
    return { value: await fn(), stdout, stderr };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}

const parseError = (args: string[]) => {
  try {
    parseArgs({ args, options: { json: { type: 'boolean' } } });
  } catch (err) {
    return err;
  }
  throw new Error('expected a parse error');
};

describe('exit codes', () => {
  it('0 ok, 1 failed or refused, 2 bad usage, 3 a component down', () => {
    assert.deepEqual(EXIT, { ok: 0, failed: 1, usage: 2, componentDown: 3 });
    assert.equal(exitCodeFor(new InvalidInputError('task', 'too short')), 2);
    assert.equal(exitCodeFor(new ConfigError('FORGE_POOL_SIZE', 'lots', 'a whole number')), 2);
    assert.equal(exitCodeFor(usageError('unknown command "x"')), 2);
    assert.equal(exitCodeFor(parseError(['--bogus'])), 2);
    assert.equal(exitCodeFor(new ComponentDownError('Temporal', 'cannot reach 127.0.0.1:7233', 'run: forge up')), 3);
    assert.equal(exitCodeFor(new ForgeError('approval x is already approved', 'APPROVAL_DECIDED')), 1);
    assert.equal(exitCodeFor(new Error('boom')), 1);
  });

  it('an error with --json is one JSON line on stdout with the code and the fix; without, two lines on stderr', async () => {
    const json = await captured(() => reportError(new ComponentDownError('Postgres', 'refused', 'run: forge up'), true));
    assert.equal(json.value, 3);
    assert.equal(json.stderr, '');
    const lines = json.stdout.trim().split('\n');
    assert.equal(lines.length, 1);
    assert.deepEqual(JSON.parse(lines[0]!), {
      ok: false,
      error: 'COMPONENT_DOWN',
      message: 'Postgres is not available: refused',
      fix: 'run: forge up',
      component: 'Postgres',
    });
    const human = await captured(() => reportError(new InvalidInputError('task', 'too short'), false));
    assert.equal(human.value, 2);
    assert.equal(human.stdout, '');
    assert.equal(human.stderr, 'error: invalid task: too short\n  fix: fix the task and try again\n');
  });

  it("a command line that does not parse is bad usage, answered with the command's usage", async () => {
    const r = await captured(() => reportError(parseError(['--bogus']), true, usageOf('run')));
    assert.equal(r.value, 2);
    const line = JSON.parse(r.stdout) as Record<string, string>;
    assert.equal(line.error, 'USAGE');
    assert.equal(line.message, "unknown option '--bogus'");
    assert.match(line.fix!, /^usage: forge run "<task>" \[--session id\] \[--wait\] \[--json\]/);
  });

  it('every --json error line has the same shape: an unexpected error and a failed workflow too', async () => {
    const unexpected = await captured(() => reportError(new Error('EISDIR: illegal operation on a directory, read'), true));
    assert.equal(unexpected.value, 1);
    const u = JSON.parse(unexpected.stdout) as Record<string, unknown>;
    assert.deepEqual([u.ok, u.error, u.message], [false, 'UNEXPECTED', 'EISDIR: illegal operation on a directory, read']);
    assert.match(String(u.fix), /forge doctor/);

    const cycle = { workflowId: 'task-x', uiUrl: 'http://localhost:8233/namespaces/default/workflows/task-x' };
    const failed = await captured(() => reportCycleFailure(true, cycle, 'the model API refused the turn', { status: 'failed' }));
    assert.equal(failed.value, 1);
    assert.deepEqual(JSON.parse(failed.stdout), {
      ok: false,
      status: 'failed',
      workflowId: 'task-x',
      uiUrl: cycle.uiUrl,
      error: 'CYCLE_FAILED',
      message: 'the model API refused the turn',
      fix: `its history in the Temporal UI shows the step that failed: ${cycle.uiUrl}`,
    });
    const human = await captured(() => reportCycleFailure(false, { workflowId: 'task-x', uiUrl: null }, 'boom'));
    assert.equal(human.stdout, '');
    assert.equal(human.stderr, 'failed: boom\n  fix: its history in the Temporal UI (workflow task-x) shows the step that failed\n');
  });

  it('a cycle that failed because the model does not answer is a component down (exit 3, its fix); any other failure stays exit 1', async () => {
    const cfg = loadConfig({ FORGE_SCRIPTED_MODEL_PORT: '4399' }, '/tmp/forge-cli-output');
    /** A task workflow's failure as the client sees it: TaskFailed, caused by an activity whose own failure has `type`. */
    const taskFailure = (type: string, details: unknown[] = []) =>
      new WorkflowFailedError(
        'Workflow execution failed',
        ApplicationFailure.create({
          type: 'TaskFailed',
          message: 'the agentTurn step failed',
          cause: new ActivityFailure(
            'Activity task failed',
            'agentTurn',
            '1',
            RetryState.MAXIMUM_ATTEMPTS_REACHED,
            'worker',
            ApplicationFailure.create({ type, message: 'Connection error.', details }),
          ),
        }),
        RetryState.NON_RETRYABLE_FAILURE,
      );
    const report = async (err: Error) => {
      const end = await settled(Promise.reject(err));
      return captured(() =>
        reportCycleFailure(
          true,
          { workflowId: 'task-x' },
          end.ok ? '' : end.error,
          { status: 'failed' },
          componentDownIn(cfg, 'task-x', end),
        ),
      );
    };

    const scripted = await report(taskFailure('LlmUnreachable', [{ url: 'http://127.0.0.1:4399', scripted: true }]));
    assert.equal(scripted.value, EXIT.componentDown);
    const line = JSON.parse(scripted.stdout) as Record<string, unknown>;
    assert.deepEqual([line.ok, line.error, line.component, line.workflowId], [false, 'COMPONENT_DOWN', 'the model', 'task-x']);
    assert.match(String(line.message), /nothing answers at http:\/\/127\.0\.0\.1:4399, where Forge's scripted model runs/);
    assert.match(String(line.fix), /^forge up \(starts the scripted model\)/);

    const elsewhere = await report(taskFailure('LlmUnreachable', [{ url: 'http://10.0.0.9:8080', scripted: false }]));
    assert.equal(elsewhere.value, EXIT.componentDown);
    assert.match(String((JSON.parse(elsewhere.stdout) as { fix: string }).fix), /ANTHROPIC_BASE_URL/);

    const refused = await report(taskFailure('LlmRequestInvalid'));
    assert.equal(refused.value, EXIT.failed, 'a model that answers and refuses is the cycle failing, not a component down');
    assert.equal((JSON.parse(refused.stdout) as { error: string }).error, 'CYCLE_FAILED');
  });

  it('usageOf finds each command in the help text, aliases included', () => {
    assert.match(usageOf('approve') ?? '', /^forge approve\|reject <id> \[--json\]$/);
    assert.match(usageOf('reject') ?? '', /^forge approve\|reject <id>/);
    assert.match(usageOf('tools') ?? '', /forge tools ls \[--all\][\s\S]*forge tools archive <name> --reason r/);
    assert.equal(usageOf('nonsense'), undefined);
  });

  it('a composite command captures the lines of its steps and prints one of its own', async () => {
    const r = await captured(() =>
      capturingJson(async () => {
        printJson({ step: 1 });
        printJson({ step: 2 });
        return 0;
      }),
    );
    assert.equal(r.stdout, '');
    assert.deepEqual(r.value, { value: 0, lines: [{ step: 1 }, { step: 2 }] });
  });
});

describe('progress', () => {
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  const at = (s: number) => new Date(t0 + s * 1000).toISOString();

  it('names the attempt: a task by its turn, an improve by its attempt, a forge by its verifications', () => {
    assert.equal(attemptLabel({ phase: 'thinking', history: [], turn: 3 }), 'turn 3');
    assert.equal(attemptLabel({ phase: 'rewriting', history: [], attempt: 2 }), 'attempt 2');
    assert.equal(attemptLabel({ phase: 'verifying', history: [], attempts: [] }), 'attempt 1');
    assert.equal(attemptLabel({ phase: 'repairing', history: [], attempts: [{}] }), 'attempt 1');
    assert.equal(attemptLabel({ phase: 'verifying', history: [], attempts: [{}] }), 'attempt 2');
    assert.equal(attemptLabel({ phase: 'spec', history: [], attempts: [] }), undefined);
  });

  it('not on a terminal: one plain line per transition, with its time since the start, and no control characters', () => {
    let out = '';
    let now = t0 + 2500;
    const print = progressPrinter({ tty: false, write: (s) => (out += s), now: () => now });
    print({
      phase: 'spec',
      history: [
        { phase: 'budget', at: at(0) },
        { phase: 'spec', at: at(0.4) },
      ],
      attempts: [],
    });
    now = t0 + 9000;
    print({
      phase: 'verifying',
      history: [
        { phase: 'budget', at: at(0) },
        { phase: 'spec', at: at(0.4) },
        { phase: 'verifying', at: at(6.2), note: 'attempt 1' },
      ],
      attempts: [],
      pendingApproval: 'forge-x.budget.1',
    });
    print.stop();
    assert.equal(
      out,
      [
        '  …    0.0 s  budget',
        '  …    0.4 s  spec',
        '  …    6.2 s  verifying — attempt 1',
        '  waiting for a person: forge approve forge-x.budget.1   (or: forge reject forge-x.budget.1)',
        '',
      ].join('\n'),
    );
    assert.ok(!out.includes('\r') && !out.includes('\x1b'), 'no carriage return, no escape sequence');
  });

  it("the last transition's reason is left to the outcome line the command prints after it: said once, not twice", () => {
    let out = '';
    const print = progressPrinter({ tty: false, write: (s) => (out += s), now: () => t0 + 5000 });
    const reason = 'the rewriting step failed: LLM call "improve.rewrite" failed: Connection error. could not reach the model server';
    print({
      phase: 'failed',
      history: [
        { phase: 'starting', at: at(0) },
        { phase: 'rewriting', at: at(0.2), note: 'attempt 1 of 3' },
        { phase: 'failed', at: at(4.8), note: reason },
      ],
    });
    print.stop();
    assert.equal(out, ['  …    0.0 s  starting', '  …    0.2 s  rewriting — attempt 1 of 3', '  …    4.8 s  failed', ''].join('\n'));
  });

  it('on a terminal: the same lines, and a live last line with phase, attempt and elapsed, redrawn and cleared at the end', () => {
    let out = '';
    let now = t0 + 1000;
    const print = progressPrinter({ tty: true, write: (s) => (out += s), now: () => now });
    print({
      phase: 'thinking',
      history: [
        { phase: 'starting', at: at(0) },
        { phase: 'thinking', at: at(0.3), note: 'turn 1' },
      ],
      turn: 1,
    });
    assert.ok(out.endsWith('  ⏵ thinking · turn 1 · 1.0 s'), JSON.stringify(out));
    now = t0 + 75_000;
    print({
      phase: 'thinking',
      history: [
        { phase: 'starting', at: at(0) },
        { phase: 'thinking', at: at(0.3), note: 'turn 1' },
      ],
      turn: 1,
    });
    assert.ok(out.endsWith('\r\x1b[2K  ⏵ thinking · turn 1 · 1 min 15 s'), 'redrawn in place, minutes past a minute');
    print({
      phase: 'completed',
      history: [
        { phase: 'starting', at: at(0) },
        { phase: 'thinking', at: at(0.3), note: 'turn 1' },
        { phase: 'completed', at: at(75) },
      ],
      turn: 1,
    });
    print.stop();
    assert.ok(
      out.endsWith('\r\x1b[2K  … 1 min 15 s  completed\n'),
      'the live line gives way to the last transition, and is not redrawn after the end',
    );
  });
});
