import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type SessionContextPolicy, type SessionTaskRow, sessionContextFrom, sessionIdSchema } from '../../domain/session.ts';
import { taskInputSchema } from '../../domain/task.ts';
import { harness } from '../../harness/index.ts';
import { matchRule } from '../../scripted-model/scenario.ts';

const policy: SessionContextPolicy = { recent: 2, summarised: 2, callChars: 40, answerChars: 60, lineChars: 50 };

/** Task i of a session: counted "text i" with count_words, answered in words. */
function row(i: number, over: Partial<SessionTaskRow> = {}): SessionTaskRow {
  return {
    position: i,
    workflowId: `task-${i}`,
    task: `how many words are in "text ${i}"?`,
    status: 'completed',
    result: {
      status: 'completed',
      answer: `There are ${i} words.`,
      calls: [
        { turn: 1, id: `t${i}`, tool: 'count_words', version: 1, input: { text: `text ${i}` }, status: 'succeeded', output: { words: i } },
      ],
    },
    ...over,
  };
}

describe('session context', () => {
  it('shows the last exchanges whole, the ones before as one line each, and only counts the oldest', () => {
    const rows = [1, 2, 3, 4, 5, 6].map((i) => row(i));
    const ctx = sessionContextFrom('s', 7, rows, policy);
    assert.equal(ctx.position, 7);
    assert.equal(ctx.omitted, 2);
    assert.deepEqual(
      ctx.older.map((o) => [o.position, o.task, o.answer]),
      [
        [3, 'how many words are in "text 3"?', 'There are 3 words.'],
        [4, 'how many words are in "text 4"?', 'There are 4 words.'],
      ],
    );
    assert.deepEqual(
      ctx.recent.map((e) => [e.position, e.calls]),
      [
        [5, [{ tool: 'count_words', version: 1, status: 'succeeded', input: '{"text":"text 5"}', output: '{"words":5}' }]],
        [6, [{ tool: 'count_words', version: 1, status: 'succeeded', input: '{"text":"text 6"}', output: '{"words":6}' }]],
      ],
    );
  });

  it('sees only what came before the task, counts rows it was not given, and clips', () => {
    const long = 'x'.repeat(100);
    const rows = [
      row(3, { task: `a\n\nmulti-line   task ${long}` }),
      row(4, {
        result: {
          status: 'completed',
          answer: long,
          calls: [{ turn: 1, id: 'a', tool: 't', input: { long }, status: 'succeeded', output: long }],
        },
      }),
      row(5, { status: 'running', result: null }),
      row(6),
    ];
    const ctx = sessionContextFrom('s', 6, rows, { ...policy, recent: 2, summarised: 5 });
    assert.equal(ctx.omitted, 2, 'positions 1 and 2 were not loaded: counted');
    assert.equal(ctx.older[0]?.task.startsWith('a multi-line task xxx'), true, 'a summary line is one line');
    assert.match(ctx.older[0]?.task ?? '', /… \(\d+ more characters\)$/);
    assert.deepEqual(
      ctx.recent.map((e) => [e.position, e.status, e.answer]),
      [
        [4, 'completed', `${'x'.repeat(60)}… (40 more characters)`],
        [5, 'running', undefined],
      ],
    );
    const lines = sessionContextFrom('s', 6, rows, { ...policy, recent: 1, summarised: 5 }).older;
    assert.equal(lines[1]?.answer, `${'x'.repeat(50)}… (50 more characters)`);
    const call = sessionContextFrom('s', 5, rows, { ...policy, recent: 1 }).recent[0]?.calls[0];
    assert.equal(call?.output, `${'x'.repeat(40)}… (60 more characters)`, 'a text output as the model saw it, clipped');
  });

  it('an earlier task that failed shows why', () => {
    const ctx = sessionContextFrom('s', 2, [row(1, { status: 'failed', result: null, error: 'the sandbox refused it' })], policy);
    assert.deepEqual([ctx.recent[0]?.status, ctx.recent[0]?.answer], ['failed', 'failed: the sandbox refused it']);
  });

  it('the harness renders it as a document: data before the task, each call with its output', () => {
    const ctx = sessionContextFrom(
      'groceries',
      7,
      [1, 2, 3, 4, 5, 6].map((i) => row(i)),
      policy,
    );
    const doc = harness.prompts.agent.session(ctx);
    assert.equal(doc.type, 'document');
    assert.equal(doc.source.type, 'text');
    assert.match(String(doc.context), /Session groceries/);
    const text = doc.source.data;
    assert.match(text, /^\(2 earlier exchanges not shown\)/);
    assert.match(text, /^#3 \[completed\] how many words are in "text 3"\? → There are 3 words\.$/m);
    assert.match(
      text,
      /^#6 \[completed\] Task: how many words are in "text 6"\?\nCalls:\n- count_words v1 \{"text":"text 6"\} → \{"words":6\}\nAnswer: There are 6 words\.$/m,
    );
    assert.ok(text.indexOf('#3') < text.indexOf('#5') && text.indexOf('#5') < text.indexOf('#6'), 'oldest first');
  });

  it('the scripted model matches a document apart from the text, and fills {{document.N}}', () => {
    const facts = {
      system: '',
      user: 'Task:\nhow many characters was that?',
      first: 'Task:\nhow many characters was that?',
      document: 'Earlier in this session\n- count_words v1 {"text":"ab"} → {"words":1,"characters":2,"lines":1}',
      tools: [],
      model: 'm',
    };
    assert.deepEqual(matchRule({ document: '/"characters":(\\d+)/' }, facts)?.document, ['"characters":2', '2']);
    assert.equal(matchRule({ user: '/"characters"/' }, facts), undefined, 'the last user message is the task alone');
    assert.equal(matchRule({ document: 'count_words' }, { ...facts, document: undefined }), undefined);
  });
});

describe('session id', () => {
  it('is a short slug', () => {
    for (const ok of ['groceries', 'q3-report_v2', 'A.1']) assert.equal(sessionIdSchema.safeParse(ok).success, true, ok);
    for (const bad of ['', '-x', 'has space', 'x'.repeat(65), 'a/b']) assert.equal(sessionIdSchema.safeParse(bad).success, false, bad);
    const parsed = taskInputSchema.safeParse({ task: 'count the words', sessionId: 'not a slug' });
    assert.equal(parsed.success, false);
    assert.match(parsed.error?.issues[0]?.message ?? '', /a session id is a short slug/);
  });
});
