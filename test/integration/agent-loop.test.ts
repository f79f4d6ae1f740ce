import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import type { ForgeOutcome } from '../../domain/forge.ts';
import type { TaskInput, TaskResult } from '../../domain/task.ts';
import { sleep } from '../../infra/processes.ts';
import type { ScenarioInput } from '../../scripted-model/scenario.ts';
import { listAudit } from '../../services/catalog/audit.ts';
import { createRegistry } from '../../services/catalog/registry.ts';
import { harnessCli } from '../helpers/cli.ts';
import { type Harness, startHarness } from '../helpers/harness.ts';

// Scenario tests of the agent loop (issue 8, items 2 and 11) on a real Forge: Temporal, Postgres,
// Docker and the scripted model. count_words (read) and create_note (write) are forged first; the
// two-tool chain and the parallel counts are demo.json's own rules, the model's mistakes are
// scripted here (ahead of the bundled files, so they answer first).

const CHAIN_TASK = 'make a note titled stats with the word count of "a b c d"';
const TWO_TASK = 'how many words are in "one two" and in "three four five"?';

/** The model's mistakes, each keyed on a marker in the task; its corrections read the tool_result it got back. */
const mistakes: ScenarioInput = {
  name: 'agent-loop mistakes',
  rules: [
    // input that does not fit count_words' schema, then the right input
    {
      match: { purpose: 'task.turn', first: '(sloppy caller)', user: '/"words":(\\d+)/' },
      responses: [{ text: 'There are {{user.1}} words.' }],
    },
    {
      match: { purpose: 'task.turn', tool: 'count_words', first: '/"([^"]*)" \\(sloppy caller\\)/', user: 'invalid input for count_words' },
      responses: [{ tool_use: { name: 'count_words', input: { text: '{{first.1}}' } } }],
    },
    {
      match: { purpose: 'task.turn', tool: 'count_words', first: '(sloppy caller)' },
      responses: [{ tool_use: { name: 'count_words', input: { txt: 1 } } }],
    },
    // never gets it right: the turn bound ends it
    {
      match: { purpose: 'task.turn', tool: 'count_words', first: '(hopeless caller)' },
      responses: [{ tool_use: { name: 'count_words', input: { txt: 1 } } }],
    },
    // a tool it was not offered, then the right one
    {
      match: { purpose: 'task.turn', first: '(wrong name)', user: '/"words":(\\d+)/' },
      responses: [{ text: 'There are {{user.1}} words.' }],
    },
    {
      match: {
        purpose: 'task.turn',
        tool: 'count_words',
        first: '/"([^"]*)" \\(wrong name\\)/',
        user: 'word_counter is not one of the offered tools',
      },
      responses: [{ tool_use: { name: 'count_words', input: { text: '{{first.1}}' } } }],
    },
    {
      match: { purpose: 'task.turn', first: '/"([^"]*)" \\(wrong name\\)/' },
      responses: [{ tool_use: { name: 'word_counter', input: { text: '{{first.1}}' } } }],
    },
    // a meta-tool call without what its schema requires
    {
      match: { purpose: 'task.turn', first: '(a tool without words)', user: '/(invalid forge_tool input: [^\\n]*)/' },
      responses: [{ text: 'I could not ask for the tool: {{user.1}}' }],
    },
    {
      match: { purpose: 'task.turn', first: '(a tool without words)' },
      responses: [{ tool_use: { name: 'forge_tool', input: { name: 'spell_checker' } } }],
    },
    // ask_person: the person's answer is the text to count; a declined question ends it in words
    {
      match: { purpose: 'task.turn', first: '(ask me which)', user: '/(\\S+ declined to answer)/' },
      responses: [{ text: 'I counted nothing: {{user.1}}, and I will not guess the text.' }],
    },
    {
      match: { purpose: 'task.turn', tool: 'count_words', first: '(ask me which)', user: '/answered: ([^\\n]+)/' },
      responses: [{ tool_use: { name: 'count_words', input: { text: '{{user.1}}' } } }],
    },
    {
      match: { purpose: 'task.turn', first: '(ask me which)', user: '/"words":(\\d+)/' },
      responses: [{ text: 'There are {{user.1}} words in the text you gave me.' }],
    },
    {
      match: { purpose: 'task.turn', first: '(ask me which)' },
      responses: [{ tool_use: { name: 'ask_person', input: { question: 'Which text should I count the words of?' } } }],
    },
  ],
};

const bundled = ['scenarios/forge-word-count.json', 'scenarios/demo.json'].map(
  (f) => JSON.parse(fs.readFileSync(path.resolve(f), 'utf8')) as ScenarioInput,
);

interface ModelRequest {
  messages: {
    role: string;
    content: string | Array<{ type: string; tool_use_id?: string; id?: string; content?: string; is_error?: boolean }>;
  }[];
}

describe('agent loop: chains, parallel calls, the model’s mistakes and questions to a person', () => {
  let h: Harness;
  let n = 0;

  const forge = (...args: string[]) => harnessCli(h, { user: 'tester', timeoutMs: 120_000 })(...args);

  const start = (task: string, extra: Partial<TaskInput> = {}) =>
    h.client.workflow.start('taskWorkflow', {
      taskQueue: h.cfg.FORGE_TASK_QUEUE,
      workflowId: `agent-loop-${++n}-${Date.now()}`,
      args: [{ task, sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE, ...extra }],
    });
  const run = async (task: string, extra: Partial<TaskInput> = {}) => {
    const handle = await start(task, extra);
    return { workflowId: handle.workflowId, result: (await handle.result()) as TaskResult };
  };

  async function pendingApproval(handle: WorkflowHandle): Promise<{ id: string; kind: string; tool: string | null; summary: string }> {
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const [row] = await h.db.sql<{ id: string; kind: string; tool: string | null; summary: string }[]>`
        select id, kind, tool, summary from approvals where workflow_id = ${handle.workflowId} and status = 'pending'`;
      if (row) return row;
      await sleep(200);
    }
    throw new Error(`${handle.workflowId} asked for no approval within 60 s`);
  }

  /** The request the model got for this task's turn `turn` (the last one, should a turn have been retried). */
  function turnRequest(task: string, turn: number): ModelRequest {
    const asked = h.model.requests
      .map((r) => r.body as ModelRequest | undefined)
      .filter((b) => {
        const first = b?.messages?.[0]?.content;
        return typeof first === 'string' && first.includes(task) && b!.messages.length === 2 * turn - 1;
      });
    assert.ok(asked.length, `the model was asked turn ${turn} of ${task}`);
    return asked[asked.length - 1]!;
  }
  const toolResults = (req: ModelRequest) => {
    const last = req.messages[req.messages.length - 1]!;
    assert.equal(last.role, 'user');
    return typeof last.content === 'string' ? [] : last.content.filter((b) => b.type === 'tool_result');
  };
  const auditKeys = (workflowId: string) =>
    h.db.sql<{ idempotency_key: string; kind: string; tool: string }[]>`
      select idempotency_key, kind, tool from audit_log where workflow_id = ${workflowId} order by id`;
  const invocations = (workflowId: string) =>
    h.db.sql<{ idempotency_key: string; tool: string; success: boolean }[]>`
      select idempotency_key, tool, success from invocations where workflow_id = ${workflowId} order by id`;

  before(async () => {
    h = await startHarness({ scenarios: [mistakes, ...bundled], env: { FORGE_DAILY_FORGE_BUDGET: '20' } });
    // Both tools first, as `forge forge` would, so every task here reuses them.
    const needs = [
      'count the words in a text: input text, output words, characters and lines',
      'create a note with a title, a body and tags: output the note id',
    ];
    const outcomes = await Promise.all(
      needs.map(
        async (need, i) =>
          (await (
            await h.client.workflow.start('forgeWorkflow', {
              taskQueue: h.cfg.FORGE_TASK_QUEUE,
              workflowId: `agent-loop-forge-${i}-${Date.now()}`,
              args: [{ need, sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE }],
            })
          ).result()) as ForgeOutcome,
      ),
    );
    assert.deepEqual(
      outcomes.map((o) => [o.status, o.status === 'registered' ? o.name : o.reason]),
      [
        ['registered', 'count_words'],
        ['registered', 'create_note'],
      ],
    );
  });

  after(() => h?.close());

  it('chains two tools: count_words’ output is create_note’s input (a write a person approves), and the audit log shows the chain', async () => {
    const handle = await start(CHAIN_TASK);
    const approval = await pendingApproval(handle);
    assert.deepEqual([approval.kind, approval.tool], ['write', 'create_note']);
    assert.match(approval.summary, /create_note v1 with \{"title":"stats","body":"4 words in \\"a b c d\\"","tags":\[\]\}/);
    const wrong = await forge('answer', approval.id, 'yes please', '--json');
    assert.equal(wrong.code, 1, 'a write takes a decision, not an answer');
    assert.deepEqual(
      [wrong.json().error, wrong.json().fix],
      ['APPROVAL_NOT_A_QUESTION', `forge approve ${approval.id} or forge reject ${approval.id}`],
    );
    const approved = await forge('approve', approval.id);
    assert.equal(approved.code, 0, approved.stderr);

    const result = (await handle.result()) as TaskResult;
    assert.equal(result.status, 'completed', result.answer);
    assert.deepEqual(
      result.calls.map((c) => [c.turn, c.tool, c.status]),
      [
        [1, 'count_words', 'succeeded'],
        [2, 'create_note', 'succeeded'],
      ],
    );
    assert.deepEqual(result.calls[0]?.input, { text: 'a b c d' });
    assert.equal((result.calls[0]?.output as { words?: number } | undefined)?.words, 4);
    assert.deepEqual(result.calls[1]?.input, { title: 'stats', body: '4 words in "a b c d"', tags: [] }, 'the count flowed into the note');
    const note = result.calls[1]?.output as { id: string; title: string };
    assert.equal(note.title, 'stats');
    assert.equal(result.answer, `Created the note ${note.id}.`);
    assert.deepEqual([result.turns, result.forged], [3, []]);

    // Turn 2 saw count_words' result; the audit log holds each call once, under its own key, in the chain's order.
    assert.match(toolResults(turnRequest(CHAIN_TASK, 2))[0]?.content ?? '', /"words":4/);
    assert.deepEqual(
      (await auditKeys(handle.workflowId)).map((a) => [a.idempotency_key, a.kind, a.tool]),
      [
        [`${handle.workflowId}:call:1.1`, 'tool_call', 'count_words'],
        [`${handle.workflowId}:call:2.1`, 'tool_call', 'create_note'],
      ],
    );
    const [newest] = await listAudit(h.db.sql, { workflowId: handle.workflowId });
    assert.match(String(newest?.reasoning), /count_words found 4 words in "a b c d"; that count is the body of the note stats/);
    const audit = await forge('audit', '--workflow', handle.workflowId);
    assert.equal(audit.code, 0, audit.stderr);
    const note_ = audit.stdout.search(/tool_call {2}create_note@1 .* ok$/m);
    const count = audit.stdout.search(/tool_call {2}count_words@1 .* ok$/m);
    assert.ok(note_ >= 0 && count > note_, `newest first: create_note, then the count that fed it\n${audit.stdout}`);
    assert.match(audit.stdout, /^ {4}input {6}\{.*"body":"4 words in \\"a b c d\\"".*\}$/m);
  });

  it('runs independent calls of one turn in parallel: both results return in one message, each call audited under its own key', async () => {
    const { workflowId, result } = await run(TWO_TASK);
    assert.equal(result.status, 'completed', result.answer);
    assert.deepEqual(
      result.calls.map((c) => [c.turn, c.tool, c.input]),
      [
        [1, 'count_words', { text: 'one two' }],
        [1, 'count_words', { text: 'three four five' }],
      ],
    );
    assert.equal(result.answer, '"one two" has 2 words and "three four five" has 3, as counted by count_words (two calls in one turn).');
    assert.equal(result.turns, 2);

    // Both tool_results, in the order of the tool_use blocks, in the one user message of turn 2.
    const turn1 = turnRequest(TWO_TASK, 2).messages[1]!;
    const uses = (turn1.content as Array<{ type: string; id?: string }>).filter((b) => b.type === 'tool_use');
    const results = toolResults(turnRequest(TWO_TASK, 2));
    assert.deepEqual(
      results.map((r) => r.tool_use_id),
      uses.map((u) => u.id),
    );
    assert.match(results[0]?.content ?? '', /"words":2/);
    assert.match(results[1]?.content ?? '', /"words":3/);

    // In parallel: the workflow scheduled both sandbox runs in one workflow task, before either finished.
    const events = (await h.client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
    const runs = events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'sandboxRunRegisteredTool');
    assert.equal(runs.length, 2);
    const batch = new Set(runs.map((e) => String(e.activityTaskScheduledEventAttributes?.workflowTaskCompletedEventId)));
    assert.equal(batch.size, 1, 'both calls were scheduled by the same workflow task');
    const ids = runs.map((e) => Number(String(e.eventId)));
    const firstDone = events.find(
      (e) =>
        e.activityTaskCompletedEventAttributes && ids.includes(Number(String(e.activityTaskCompletedEventAttributes.scheduledEventId))),
    );
    assert.ok(Number(String(firstDone?.eventId)) > Math.max(...ids), 'the second was scheduled before the first completed');

    assert.deepEqual((await auditKeys(workflowId)).map((a) => a.idempotency_key).sort(), [
      `${workflowId}:call:1.1`,
      `${workflowId}:call:1.2`,
    ]);
    assert.deepEqual((await invocations(workflowId)).map((i) => [i.idempotency_key, i.success]).sort(), [
      [`${workflowId}:call:1.1`, true],
      [`${workflowId}:call:1.2`, true],
    ]);
  });

  it('feeds input that does not fit the schema back as the validation error; the model corrects it and the task completes', async () => {
    const task = 'count the words in "fix my input please" (sloppy caller)';
    const { workflowId, result } = await run(task);
    assert.equal(result.status, 'completed', result.answer);
    assert.equal(result.answer, 'There are 4 words.');
    assert.deepEqual(
      result.calls.map((c) => [c.turn, c.tool, c.status, c.slip, c.input]),
      [
        [1, 'count_words', 'failed', 'invalid-input', { txt: 1 }],
        [2, 'count_words', 'succeeded', undefined, { text: 'fix my input please' }],
      ],
    );
    // The error names what is wrong and what the tool takes, at its source (the sandbox's runner).
    const expected =
      /^invalid input for count_words: text: Invalid input: expected string, received undefined; not a parameter: txt \(the parameters are: text\)/;
    assert.match(result.calls[0]?.reason ?? '', expected);
    const [fed] = toolResults(turnRequest(task, 2));
    assert.equal(fed?.is_error, true);
    assert.match(fed?.content ?? '', expected);
    assert.match(fed?.content ?? '', /Call count_words again with input that fits its schema\.$/);

    // The refused call is audited, but it is the model's mistake: no invocation, so no mark on the tool.
    assert.deepEqual(
      (await auditKeys(workflowId)).map((a) => [a.idempotency_key, a.kind]),
      [
        [`${workflowId}:call:1.1`, 'refused_call'],
        [`${workflowId}:call:2.1`, 'tool_call'],
      ],
    );
    assert.deepEqual(
      (await invocations(workflowId)).map((i) => [i.idempotency_key, i.success]),
      [[`${workflowId}:call:2.1`, true]],
    );
  });

  it('stops a model that keeps sending bad input at the turn bound, says why, and leaves the tool sound', async () => {
    const registry = createRegistry({ sql: h.db.sql, root: `${h.home}/tools` });
    const before = await registry.stats('count_words');
    const { workflowId, result } = await run('count the words in "never right" (hopeless caller)', { limits: { maxTurns: 6 } });
    assert.equal(result.status, 'stopped');
    assert.equal(result.stoppedBy, 'maxTurns');
    assert.match(
      result.answer,
      /^stopped: no answer after 6 turns, the bound per task \(raise it: forge run --max-turns <n>, or maxTurns in MCP's run_task\); the last call, count_words, failed: invalid input for count_words: text: .*not a parameter: txt/,
    );
    assert.equal(result.calls.length, 6);
    assert.ok(result.calls.every((c) => c.tool === 'count_words' && c.status === 'failed' && c.slip === 'invalid-input'));
    // Six refusals would have quarantined count_words (< 70% after 5 calls) had they been metered as its failures.
    assert.equal((await invocations(workflowId)).length, 0);
    const after = await registry.stats('count_words');
    assert.deepEqual([after.invocations, after.successes, after.level], [before.invocations, before.successes, before.level]);
    assert.equal((await registry.getCurrent('count_words'))?.status, 'active');
  });

  it('refuses a tool the model was not offered, naming the ones it was; the model corrects itself and the task completes', async () => {
    const { result } = await run('count the words in "call me by my name" (wrong name)');
    assert.equal(result.status, 'completed', result.answer);
    assert.equal(result.answer, 'There are 5 words.');
    assert.deepEqual(
      result.calls.map((c) => [c.tool, c.status, c.slip]),
      [
        ['word_counter', 'not-run', 'unknown-tool'],
        ['count_words', 'succeeded', undefined],
      ],
    );
    assert.match(
      result.calls[0]?.reason ?? '',
      /^word_counter is not one of the offered tools \(.*count_words.*\); use search_tools or forge_tool$/,
    );
  });

  it('refuses forge_tool without a description with the validation message; nothing is forged and the task fails in words', async () => {
    const task = 'build something that checks spelling (a tool without words)';
    const { workflowId, result } = await run(task);
    assert.equal(result.status, 'failed');
    assert.deepEqual(
      result.calls.map((c) => [c.tool, c.status, c.slip]),
      [['forge_tool', 'failed', 'invalid-input']],
    );
    const message =
      'invalid forge_tool input: description: Invalid input: expected string, received undefined. Call it again with input that fits its schema.';
    assert.equal(result.calls[0]?.reason, message);
    const [fed] = toolResults(turnRequest(task, 2));
    assert.deepEqual([fed?.is_error, fed?.content], [true, message]);
    assert.equal(result.answer, `I could not ask for the tool: ${message}`);
    assert.deepEqual(result.forged, []);
    await assert.rejects(h.client.workflow.getHandle(`${workflowId}.forge.1.1`).describe(), /not found/i, 'no forge child was started');
  });

  it('asks the person: forge approvals lists the question, forge answer answers it, and the next turn uses the answer', async () => {
    const task = 'count the words of the text I have in mind (ask me which)';
    const handle = await start(task);
    const question = await pendingApproval(handle);
    assert.deepEqual([question.kind, question.summary], ['question', 'Which text should I count the words of?']);

    const [listed, bare] = await Promise.all([forge('approvals', '--json'), forge('approve', question.id, '--json')]);
    assert.equal(listed.code, 0, listed.stderr);
    const pending = (listed.json() as { pending: { id: string; kind: string; summary: string }[] }).pending;
    assert.deepEqual(
      pending.filter((p) => p.id === question.id).map((p) => [p.kind, p.summary]),
      [['question', 'Which text should I count the words of?']],
    );
    assert.equal(bare.code, 1, 'approving a question says nothing: it needs an answer');
    assert.equal(bare.json().error, 'APPROVAL_NEEDS_ANSWER');
    assert.match(String(bare.json().fix), new RegExp(`forge answer ${question.id.replace(/\./g, '\\.')} "<your answer>"`));

    const answered = await forge('answer', question.id, 'red green blue yellow', '--json');
    assert.equal(answered.code, 0, answered.stderr);
    assert.deepEqual([answered.json().approvalId, answered.json().answer], [question.id, 'red green blue yellow']);

    const result = (await handle.result()) as TaskResult;
    assert.equal(result.status, 'completed', result.answer);
    assert.deepEqual(
      result.calls.map((c) => [c.tool, c.status, c.output ?? null]),
      [
        ['ask_person', 'succeeded', 'red green blue yellow'],
        ['count_words', 'succeeded', { words: 4, characters: 21, lines: 1 }],
      ],
    );
    assert.deepEqual(result.calls[1]?.input, { text: 'red green blue yellow' });
    assert.equal(result.answer, 'There are 4 words in the text you gave me.');
    assert.equal(toolResults(turnRequest(task, 2))[0]?.content, 'tester answered: red green blue yellow');
    const [row] = await h.db.sql`select status, decided_by from approvals where id = ${question.id}`;
    assert.deepEqual([row?.status, row?.decided_by], ['approved', 'tester']);
  });

  it('a declined question (forge reject) gives the model a clear error result, and the task ends failed in words', async () => {
    const task = 'count the words of the secret text (ask me which)';
    const handle = await start(task);
    const question = await pendingApproval(handle);
    const rejected = await forge('reject', question.id);
    assert.equal(rejected.code, 0, rejected.stderr);

    const result = (await handle.result()) as TaskResult;
    assert.equal(result.status, 'failed');
    assert.deepEqual(
      result.calls.map((c) => [c.tool, c.status, c.reason]),
      [['ask_person', 'not-run', 'tester declined to answer']],
    );
    const [fed] = toolResults(turnRequest(task, 2));
    assert.equal(fed?.is_error, true);
    assert.equal(
      fed?.content,
      'tester declined to answer (the question was "Which text should I count the words of?"). Do not guess the answer: finish without it, or say what you could not do without it.',
    );
    assert.equal(result.answer, 'I counted nothing: tester declined to answer, and I will not guess the text.');
  });
});
