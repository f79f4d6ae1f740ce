import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AgentCall } from '../../domain/agent.ts';
import { loadConfig } from '../../domain/config.ts';
import { ConfigError } from '../../domain/errors.ts';
import {
  type CurationRow,
  curateEvidence,
  curateInputSchema,
  curationPolicy,
  curationRunKey,
  deriveTaskEvidence,
  duplicateKey,
  EVIDENCE_SEVERITY,
  type Expectation,
  evidenceTraceSchema,
  expectationSchema,
  feedbackEvidence,
  feedbackInputSchema,
  isCuratedFailureType,
  judgeExpectation,
  judgeReplay,
  mayHoldEvidence,
  type ReplayedTask,
  scheduledTimeOfWorkflowId,
  sinceMs,
  type TaskTraceSource,
  traceOf,
} from '../../domain/evidence.ts';
import { evolveRequestSchema } from '../../domain/evolve.ts';

const WF = 'task-20261130030000-abc123';
const call = (tool: string, status: AgentCall['status'], extra: Partial<AgentCall> = {}): AgentCall => ({
  turn: 1,
  id: `toolu_${tool}_${status}`,
  tool,
  input: { text: 'a b c' },
  status,
  ...extra,
});
const result = (status: TaskTraceSource['status'], calls: AgentCall[] = [], extra: Partial<TaskTraceSource> = {}): TaskTraceSource => ({
  task: 'how many words are in "a b c"?',
  status,
  answer: status === 'completed' ? 'There are 3 words.' : 'I could not do it.',
  calls,
  forged: [],
  turns: 2,
  ...extra,
});

describe('failure evidence: what a finished task leaves', () => {
  it('leaves nothing for a task that completed cleanly, and says so before the activity is paid for', () => {
    const clean = result('completed', [call('count_words', 'succeeded', { output: { words: 3 } })]);
    assert.equal(mayHoldEvidence(clean), false);
    assert.deepEqual(deriveTaskEvidence({ workflowId: WF, result: clean }), []);
    // A slip the model made good is no failure either.
    const corrected = result('completed', [
      call('word_counter', 'not-run', { slip: 'unknown-tool', reason: 'not offered' }),
      call('count_words', 'succeeded'),
    ]);
    assert.equal(mayHoldEvidence(corrected), true, 'a call that did not run may be a rejected approval: the activity looks');
    assert.deepEqual(deriveTaskEvidence({ workflowId: WF, result: corrected }), []);
  });

  it('a task a bound stopped is a state failure that must complete on replay', () => {
    const limits = { maxTurns: 8, maxToolCalls: 16, maxTokens: 300_000 };
    const stopped = result('stopped', [call('count_words', 'failed', { reason: 'boom' })], {
      answer: 'stopped: no answer after 8 turns, the bound per task (raise limits.maxTurns)',
      stoppedBy: 'maxTurns',
      limits,
    } as Partial<TaskTraceSource>);
    const [row, ...rest] = deriveTaskEvidence({ workflowId: WF, result: stopped });
    // The bounds it ran under go with it: a replay runs under the same ones (services/evolution/replay.ts).
    assert.deepEqual(evidenceTraceSchema.parse(row?.trace).limits, limits);
    assert.equal(
      evidenceTraceSchema.parse(traceOf(result('stopped'))).limits,
      undefined,
      'a result stored before bounds were kept has none',
    );
    assert.equal(rest.length, 0);
    assert.equal(row?.idempotencyKey, `${WF}:task`);
    assert.equal(row?.source, 'task_failed');
    assert.equal(row?.failureType, 'state');
    assert.deepEqual(row?.expectations, [{ kind: 'completes' }]);
    assert.equal(row?.severity, EVIDENCE_SEVERITY.stopped);
    assert.match(row!.happened, /no answer after 8 turns/);
  });

  it('a task that failed on a call is a tool_call failure naming the call; on an unknown tool it is routing', () => {
    const failed = deriveTaskEvidence({
      workflowId: WF,
      result: result('failed', [call('count_words', 'failed', { version: 2, reason: 'TypeError: x is undefined' })]),
    });
    assert.equal(failed.length, 1);
    assert.equal(failed[0]?.source, 'call_failed');
    assert.equal(failed[0]?.failureType, 'tool_call');
    assert.equal(failed[0]?.happened, 'count_words v2 failed: TypeError: x is undefined');
    assert.equal(failed[0]?.severity, EVIDENCE_SEVERITY.callFailed);

    const routed = deriveTaskEvidence({
      workflowId: WF,
      result: result('failed', [
        call('word_counter', 'not-run', { slip: 'unknown-tool', reason: 'word_counter is not one of the offered tools' }),
      ]),
    });
    assert.equal(routed[0]?.failureType, 'routing');
    assert.deepEqual(routed[0]?.expectations, [{ kind: 'completes' }]);
  });

  it('a workflow that itself failed is a state failure below the curation floor (an engine fault, rarely the harness)', () => {
    const [row] = deriveTaskEvidence({ workflowId: WF, result: result('failed'), error: 'the offerTools step failed: connection refused' });
    assert.equal(row?.failureType, 'state');
    assert.equal(row?.source, 'task_failed');
    assert.match(row!.happened, /^the task workflow failed: the offerTools step failed/);
    assert.ok(row!.severity < curationPolicy.minSeverity);
  });

  it('a call escalated to a person is a tool_call failure whose replay must not escalate; it explains the task’s failure', () => {
    const escalated = call('sign_message', 'failed', {
      version: 1,
      reason: 'FORGE_TEST_SIGNING_SECRET is not set',
      recovery: {
        retries: 0,
        diagnosis: { atFault: 'environment', fixable: false, diagnosis: 'the secret is not configured' },
        escalation: { approvalId: `${WF}.escalation.1`, decision: 'declined' },
      },
    });
    const rows = deriveTaskEvidence({ workflowId: WF, result: result('failed', [escalated]) });
    assert.equal(rows.length, 1, 'one row per cause: the escalation explains the failed task');
    assert.equal(rows[0]?.idempotencyKey, `${WF}:escalation:${WF}.escalation.1`);
    assert.equal(rows[0]?.source, 'call_escalated');
    assert.equal(rows[0]?.failureType, 'tool_call');
    assert.deepEqual(rows[0]?.expectations, [{ kind: 'no-escalation' }, { kind: 'completes' }]);
    assert.match(rows[0]!.happened, /escalated to a person \(approval .*\): declined to retry it/);

    // Escalated, retried with a person's approval, succeeded: still evidence, without "completes".
    const rescued = {
      ...escalated,
      status: 'succeeded' as const,
      recovery: { ...escalated.recovery!, escalation: { decision: 'retry' as const } },
    };
    const [row] = deriveTaskEvidence({ workflowId: WF, result: result('completed', [rescued]) });
    assert.deepEqual(row?.expectations, [{ kind: 'no-escalation' }]);
    assert.match(row!.happened, /approved a retry; the retry succeeded/);
  });

  it('a write a person rejected is declined: their decision, with nothing for a replay to judge, not a routing miss', () => {
    const blocked = call('create_note', 'not-run', { reason: 'ana rejected the call' });
    const rows = deriveTaskEvidence({
      workflowId: WF,
      result: result('failed', [blocked]),
      rejected: [
        { approvalId: `${WF}.write.1`, kind: 'write', tool: 'create_note', by: 'ana', summary: 'create_note v1 with {"title":"x"}' },
        { approvalId: `${WF}.question.2`, kind: 'question', summary: 'which list?' },
      ],
    });
    assert.equal(rows.length, 1, 'the rejection explains the failed task; a declined question is no evidence');
    assert.equal(rows[0]?.idempotencyKey, `${WF}:approval:${WF}.write.1`);
    assert.equal(rows[0]?.source, 'approval_rejected');
    assert.equal(rows[0]?.failureType, 'declined');
    assert.equal(isCuratedFailureType(rows[0]!.failureType), false, 'curation never batches it');
    assert.deepEqual(rows[0]?.expectations, []);
    assert.ok(rows[0]!.severity < curationPolicy.minSeverity, 'below the curation floor too');
    assert.match(rows[0]!.happened, /^ana rejected the write call/);
    assert.match(rows[0]!.expected, new RegExp(`forge feedback ${WF} --bad`));
    assert.throws(() => evolveRequestSchema.parse({ batchKey: 'k', failureType: 'declined', evidenceIds: [1], sandboxQueue: 'q' }));
  });

  it('a forged duplicate of a catalog tool is routing even when the task completed: reuse it, forge nothing', () => {
    const res = result('completed', [call('forge_tool', 'succeeded'), call('word_tally', 'succeeded')], { forged: ['word_tally'] });
    assert.equal(mayHoldEvidence(res), true);
    const rows = deriveTaskEvidence({
      workflowId: WF,
      result: res,
      duplicates: [{ forged: 'word_tally', existing: 'count_words', similarity: 0.91 }],
    });
    assert.equal(rows.length, 1);
    assert.equal(rows[0]?.source, 'duplicate_forged');
    assert.equal(rows[0]?.failureType, 'routing');
    assert.deepEqual(rows[0]?.expectations, [{ kind: 'uses-tool', tool: 'count_words' }, { kind: 'forges-nothing' }]);
    assert.equal(rows[0]?.idempotencyKey, `${WF}:duplicate:word_tally`);
    assert.equal(deriveTaskEvidence({ workflowId: WF, result: res, duplicates: [] }).length, 0, 'a new tool nobody had is no failure');
  });

  it('a forge that ended on a catalog tool with exactly its code is a duplicate of that very tool', () => {
    const res = result('completed', [call('forge_tool', 'succeeded'), call('count_words', 'succeeded')], { forged: ['count_words'] });
    const [row, ...rest] = deriveTaskEvidence({
      workflowId: WF,
      result: res,
      duplicates: [{ forged: 'count_words', existing: 'count_words', similarity: 1, sameCode: { version: 2 } }],
    });
    assert.equal(rest.length, 0);
    assert.deepEqual(
      [row?.source, row?.failureType, row?.expectations],
      ['duplicate_forged', 'routing', [{ kind: 'uses-tool', tool: 'count_words' }, { kind: 'forges-nothing' }]],
    );
    assert.equal(
      row?.happened,
      'the agent forged count_words again: count_words v2 already had exactly that code, so nothing was registered',
    );
  });

  it('every row fits the stored shapes, keys are unique per cause and the same facts give the same rows', () => {
    const facts = {
      workflowId: WF,
      result: result(
        'stopped',
        [call('count_words', 'failed', { recovery: { retries: 0, escalation: { approvalId: 'e1', decision: 'timed-out' as const } } })],
        {
          forged: ['word_tally'],
        },
      ),
      duplicates: [{ forged: 'word_tally', existing: 'count_words', similarity: 0.9 }],
      rejected: [{ approvalId: 'w1', kind: 'destructive', tool: 'delete_note', summary: 'delete' }],
      sessionId: 'groceries',
    };
    const rows = deriveTaskEvidence(facts);
    assert.deepEqual(rows.map((r) => r.source).sort(), ['approval_rejected', 'call_escalated', 'duplicate_forged', 'task_failed']);
    assert.equal(new Set(rows.map((r) => r.idempotencyKey)).size, rows.length);
    assert.deepEqual(deriveTaskEvidence(facts), rows);
    for (const r of rows) {
      for (const e of r.expectations) expectationSchema.parse(e);
      assert.equal(evidenceTraceSchema.parse(r.trace).sessionId, 'groceries');
      assert.ok(r.severity >= 0 && r.severity <= 1);
    }
  });

  it('the trace keeps every call, clipping a huge input or output and saying how much was cut', () => {
    const huge = 'x'.repeat(10_000);
    const trace = traceOf(result('failed', [call('count_words', 'succeeded', { input: { text: huge }, output: { echo: huge } })]));
    const [c] = trace.calls;
    assert.equal(typeof c?.input, 'string');
    assert.match(String(c?.input), /more characters cut\)$/);
    assert.ok(String(c?.output).length < 4100);
    const small = traceOf(result('failed', [call('count_words', 'succeeded', { output: { words: 3 } })]));
    assert.deepEqual(small.calls[0]?.output, { words: 3 }, 'a small value is kept whole');
  });
});

describe('failure evidence: explicit feedback', () => {
  const task = { workflowId: WF, task: 'how many words are in "a b c"?', status: 'completed', result: result('completed') };
  it('is routing with --expect-tool, output with --expect-answer or nothing, and always must complete', () => {
    const tool = feedbackEvidence(
      feedbackInputSchema.parse({ workflowId: WF, bad: 'should reuse count_words', expectTool: 'count_words' }),
      task,
      'f1',
    );
    assert.equal(tool.failureType, 'routing');
    assert.equal(tool.source, 'feedback');
    assert.equal(tool.severity, EVIDENCE_SEVERITY.feedback);
    assert.deepEqual(tool.expectations, [
      { kind: 'uses-tool', tool: 'count_words' },
      { kind: 'completes', description: 'should reuse count_words' },
    ]);
    assert.equal(tool.idempotencyKey, `${WF}:feedback:f1`);
    assert.equal(tool.happened, 'There are 3 words.');

    const answer = feedbackEvidence(
      feedbackInputSchema.parse({ workflowId: WF, bad: 'the count is wrong', expectAnswer: '3 words', severity: 0.5 }),
      task,
      'f2',
    );
    assert.equal(answer.failureType, 'output');
    assert.equal(answer.severity, 0.5);
    assert.deepEqual(answer.expectations[0], { kind: 'answer-contains', text: '3 words' });

    const plain = feedbackEvidence(feedbackInputSchema.parse({ workflowId: WF, bad: 'too chatty' }), task, 'f3');
    assert.equal(plain.failureType, 'output');
    assert.deepEqual(plain.expectations, [{ kind: 'completes', description: 'too chatty' }]);
  });

  it('a task whose workflow failed has no result: the trace says so', () => {
    const row = feedbackEvidence(
      feedbackInputSchema.parse({ workflowId: WF, bad: 'it should have answered' }),
      { workflowId: WF, task: 'count', status: 'failed', error: 'boom' },
      'f4',
    );
    assert.equal(row.trace.status, 'failed');
    assert.match(row.happened, /the task workflow failed: boom/);
  });

  it('refuses feedback that says nothing or names no tool', () => {
    assert.equal(feedbackInputSchema.safeParse({ workflowId: WF, bad: ' ' }).success, false);
    assert.equal(feedbackInputSchema.safeParse({ workflowId: WF, bad: 'use a tool', expectTool: 'Count Words!' }).success, false);
  });
});

describe('the judge: expectations against a replayed task', () => {
  const replay = (extra: Partial<ReplayedTask> = {}): ReplayedTask => ({
    status: 'completed',
    answer: 'There are 3 Words.',
    calls: [
      { tool: 'count_words', status: 'succeeded' },
      { tool: 'slugify', status: 'failed' },
    ],
    forged: [],
    ...extra,
  });
  it('judges each kind of expectation on the result alone', () => {
    const cases: [Expectation, ReplayedTask, boolean][] = [
      [{ kind: 'completes' }, replay(), true],
      [{ kind: 'completes' }, replay({ status: 'stopped' }), false],
      [{ kind: 'uses-tool', tool: 'count_words' }, replay(), true],
      [{ kind: 'uses-tool', tool: 'slugify' }, replay(), false],
      [{ kind: 'avoids-tool', tool: 'slugify' }, replay(), false],
      [{ kind: 'avoids-tool', tool: 'create_note' }, replay(), true],
      [{ kind: 'forges-nothing' }, replay(), true],
      [{ kind: 'forges-nothing' }, replay({ forged: ['word_tally'] }), false],
      [{ kind: 'answer-contains', text: '3 words' }, replay(), true],
      [{ kind: 'answer-contains', text: '4 words' }, replay(), false],
      [{ kind: 'no-escalation' }, replay(), true],
      [
        { kind: 'no-escalation' },
        replay({ calls: [{ tool: 'x', status: 'failed', recovery: { escalation: { decision: 'declined' } } }] }),
        false,
      ],
    ];
    for (const [e, r, pass] of cases) assert.equal(judgeExpectation(e, r).pass, pass, `${JSON.stringify(e)} on ${JSON.stringify(r)}`);
    assert.equal(
      judgeExpectation({ kind: 'uses-tool', tool: 'slugify' }, replay()).reason,
      'slugify was not called successfully (called: count_words)',
    );
  });

  it('a replay passes when every expectation holds, and says which did not', () => {
    assert.deepEqual(judgeReplay([{ kind: 'completes' }, { kind: 'uses-tool', tool: 'count_words' }], replay()), {
      pass: true,
      reasons: [],
    });
    const verdict = judgeReplay([{ kind: 'completes' }, { kind: 'forges-nothing' }], replay({ status: 'failed', forged: ['t'] }));
    assert.equal(verdict.pass, false);
    assert.deepEqual(verdict.reasons, ['the task ended failed', 'forged t']);
  });
});

describe('curation: de-duplicated, batched by failure type, bounded per night', () => {
  const row = (
    id: number,
    failureType: CurationRow['failureType'],
    severity: number,
    task = `task ${id}`,
    expectations: Expectation[] = [{ kind: 'completes' }],
  ): CurationRow => ({
    id,
    failureType,
    severity,
    task,
    expectations,
  });
  const RUN = 'curate-2026-11-30T030000Z';

  it('folds duplicates (same task, type and expectations) into the most severe one and batches by type', () => {
    const rows = [
      row(1, 'routing', 0.6, 'count the words in "x"', [{ kind: 'uses-tool', tool: 'count_words' }, { kind: 'forges-nothing' }]),
      row(2, 'routing', 0.8, '  Count the words in "x" ', [{ kind: 'forges-nothing' }, { kind: 'uses-tool', tool: 'count_words' }]),
      row(3, 'routing', 0.6, 'count the words in "x"', [{ kind: 'uses-tool', tool: 'word_tally' }]),
      row(4, 'tool_call', 0.7),
      row(5, 'output', 0.8, 'count the words in "x"', [{ kind: 'uses-tool', tool: 'count_words' }, { kind: 'forges-nothing' }]),
    ];
    const c = curateEvidence(rows, { runKey: RUN, maxBatches: 3 });
    assert.deepEqual(c.batches, [
      { batchKey: `${RUN}:routing`, failureType: 'routing', evidenceIds: [2, 3] },
      { batchKey: `${RUN}:output`, failureType: 'output', evidenceIds: [5] },
      { batchKey: `${RUN}:tool_call`, failureType: 'tool_call', evidenceIds: [4] },
    ]);
    assert.deepEqual(c.duplicates, [{ id: 1, of: 2, batchKey: `${RUN}:routing` }]);
    assert.deepEqual(c.deferred, []);
    assert.deepEqual(
      curateEvidence([...rows].reverse(), { runKey: RUN, maxBatches: 3 }),
      c,
      'the same rows in any order give the same batches',
    );
  });

  it('takes the most severe batches up to the night’s bound and leaves the rest (and their duplicates) uncurated', () => {
    const rows = [row(1, 'state', 0.6), row(2, 'routing', 0.9), row(3, 'tool_call', 0.7), row(4, 'state', 0.6, 'task 1')];
    const c = curateEvidence(rows, { runKey: RUN, maxBatches: 2 });
    assert.deepEqual(
      c.batches.map((b) => b.failureType),
      ['routing', 'tool_call'],
    );
    assert.deepEqual(c.deferred, [1, 4]);
    assert.deepEqual(c.duplicates, []);
    assert.deepEqual(curateEvidence(rows, { runKey: RUN, maxBatches: 0 }).batches, []);
  });

  it('caps a batch at the evolve request’s size, most severe first', () => {
    const rows = Array.from({ length: 53 }, (_, i) => row(i + 1, 'output', i < 3 ? 0.5 : 0.9));
    const c = curateEvidence(rows, { runKey: RUN, maxBatches: 3 });
    assert.equal(c.batches[0]?.evidenceIds.length, curationPolicy.maxBatchSize);
    assert.deepEqual(c.deferred, [1, 2, 3]);
    evolveRequestSchema.parse({ ...c.batches[0], sandboxQueue: 'q' });
  });

  it('keys a run by its scheduled time, read from the id a schedule gives the workflow', () => {
    const at = scheduledTimeOfWorkflowId('forge-nightly-curation-2026-11-30T03:00:00Z');
    assert.equal(at?.toISOString(), '2026-11-30T03:00:00.000Z');
    assert.equal(curationRunKey(at!), 'curate-2026-11-30T030000Z');
    assert.equal(scheduledTimeOfWorkflowId('curate-manual-1'), undefined);
    assert.equal(duplicateKey(row(1, 'state', 1, 'A  b')), duplicateKey(row(2, 'state', 0, 'a b')));
  });

  it('reads durations and the curation input with the policy’s defaults', () => {
    assert.equal(sinceMs('24h'), 86_400_000);
    assert.equal(sinceMs('30m'), 1_800_000);
    assert.equal(sinceMs('7d'), 604_800_000);
    assert.equal(sinceMs('yesterday'), undefined);
    assert.equal(sinceMs('0h'), undefined);
    const input = curateInputSchema.parse({ sandboxQueue: 'q' });
    assert.deepEqual(input, { sandboxQueue: 'q', windowHours: 24, minSeverity: 0.5, maxBatches: 3 });
  });
});

describe('curation configuration', () => {
  it('defaults to 03:00 UTC, a 24 h window and 3 batches a night', () => {
    const cfg = loadConfig({}, '/tmp/h');
    assert.equal(cfg.FORGE_CURATION_CRON, '0 3 * * *');
    assert.equal(cfg.FORGE_CURATION_TZ, 'UTC');
    assert.equal(cfg.FORGE_CURATION_WINDOW_HOURS, 24);
    assert.equal(cfg.FORGE_EVOLVE_MAX_BATCHES, 3);
    const set = loadConfig(
      { FORGE_CURATION_CRON: '30 2 * * 1-5', FORGE_CURATION_TZ: 'Europe/Berlin', FORGE_EVOLVE_MAX_BATCHES: '0' },
      '/tmp/h',
    );
    assert.equal(set.FORGE_CURATION_TZ, 'Europe/Berlin');
    assert.equal(set.FORGE_EVOLVE_MAX_BATCHES, 0);
  });

  it('names the variable and what it expects for a wrong cron line, time zone or bound', () => {
    for (const [variable, value, expected] of [
      ['FORGE_CURATION_CRON', 'at three', /five fields/],
      ['FORGE_CURATION_TZ', 'Mars/Olympus', /IANA time zone/],
      ['FORGE_EVOLVE_MAX_BATCHES', '50', /from 0/],
    ] as const) {
      assert.throws(
        () => loadConfig({ [variable]: value }, '/tmp/h'),
        (err: unknown) => err instanceof ConfigError && err.message.startsWith(`${variable}=`) && expected.test(err.message),
      );
    }
  });
});
