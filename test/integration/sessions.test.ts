import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { listSessions, showSession } from '../../app/sessions.ts';
import type { DocumentBlock } from '../../domain/agent.ts';
import { PermanentError } from '../../domain/errors.ts';
import type { TaskResult } from '../../domain/task.ts';
import { createSessionStore } from '../../services/runs/sessions.ts';
import { type Harness, startHarness } from '../helpers/harness.ts';

/**
 * Session memory through real Temporal, Postgres, Docker and the scripted model: a follow-up in the
 * same session resolves "that" to an earlier tool output; another session sees nothing of it.
 */
describe('sessions: a conversation of tasks', () => {
  let h: Harness;
  let n = 0;
  const S = `words-${Date.now()}`;
  const FIRST = 'how many words are in "the quick brown fox"?';
  const FOLLOW_UP = 'and how many characters was that?';
  let first: { workflowId: string; result: TaskResult };
  let second: { workflowId: string; result: TaskResult };

  before(async () => {
    h = await startHarness({
      scenarioFiles: ['scenarios/forge-word-count.json', 'scenarios/demo.json'],
      env: { FORGE_DAILY_FORGE_BUDGET: '20' },
    });
  });

  after(() => h.close());

  async function run(task: string, sessionId?: string) {
    const workflowId = `task-session-${++n}-${Date.now()}`;
    const handle = await h.client.workflow.start('taskWorkflow', {
      taskQueue: h.cfg.FORGE_TASK_QUEUE,
      workflowId,
      args: [{ task, sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE, ...(sessionId ? { sessionId } : {}) }],
    });
    return { workflowId, result: (await handle.result()) as TaskResult };
  }

  /** `forge …` as a person runs it, against this file's database; its stdout. */
  function forge(...args: string[]): string {
    const res = spawnSync(process.execPath, ['bin/forge.mjs', ...args], {
      env: { ...process.env, DATABASE_URL: h.db.url, FORGE_HOME: h.home },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(res.status, 0, res.stderr);
    return res.stdout;
  }

  /** The first user message of the model turns whose task is `task`. */
  function openings(task: string) {
    const taskText = (c: unknown) =>
      typeof c === 'string'
        ? c
        : Array.isArray(c)
          ? c.flatMap((b: { type?: string; text?: string }) => (b.type === 'text' ? [b.text] : [])).join('\n')
          : '';
    return h.model.requests
      .map((r) => (r.body as { messages?: { content: unknown }[] } | undefined)?.messages?.[0]?.content)
      .filter((c) => taskText(c) === `Task:\n${task}`);
  }

  it('a follow-up in the same session resolves "that" to the earlier tool output and answers from it', async () => {
    first = await run(FIRST, S);
    assert.equal(first.result.status, 'completed', first.result.answer);
    assert.match(first.result.answer, /There are 4 words/);
    const counted = first.result.calls.find((c) => c.tool === 'count_words');
    assert.deepEqual(counted?.output, { words: 4, characters: 19, lines: 1 });
    assert.equal(typeof openings(FIRST)[0], 'string', 'the task that opens a session has nothing before it');

    second = await run(FOLLOW_UP, S);
    const [opening] = openings(FOLLOW_UP);
    assert.ok(Array.isArray(opening), 'the follow-up opens with the session document, then the task');
    const [doc, text] = opening as [DocumentBlock, { type: string; text: string }];
    assert.equal(doc.type, 'document');
    assert.equal(doc.title, 'Earlier in this session');
    assert.match(doc.source.data, /#1 \[completed\] Task: how many words are in "the quick brown fox"\?/);
    const output = /^- count_words v1 \{"text":"the quick brown fox"\} → (.+)$/m.exec(doc.source.data)?.[1];
    assert.deepEqual(JSON.parse(output ?? 'null'), { words: 4, characters: 19, lines: 1 }, 'the earlier call with its output');
    assert.match(doc.source.data, /Answer: There are 4 words/);
    assert.deepEqual(text, { type: 'text', text: `Task:\n${FOLLOW_UP}` });
    assert.equal(second.result.status, 'completed', second.result.answer);
    assert.deepEqual(second.result.calls, [], 'answered from the earlier result, without calling a tool again');
    // 19 characters is in no answer and no task: only in count_words' earlier output.
    assert.match(second.result.answer, /19 characters, 4 words and 1 lines/);
  });

  it('a task in another session, or in none, sees nothing of it', async () => {
    for (const sessionId of [`other-${Date.now()}`, undefined]) {
      const other = await run(FOLLOW_UP, sessionId);
      assert.equal(other.result.status, 'completed');
      assert.doesNotMatch(other.result.answer, /19|characters, \d+ words/, 'no earlier output to resolve "that" to');
      assert.match(other.result.answer, /Offline answer/);
    }
    for (const opening of openings(FOLLOW_UP).slice(1)) assert.equal(typeof opening, 'string', 'no session document');
  });

  it('lists the session with its tasks in order, and another session apart', async () => {
    const detail = await showSession(h.cfg, S);
    assert.equal(detail.tasks, 2);
    assert.equal(detail.title, FIRST);
    assert.deepEqual(
      detail.entries.map((e) => [e.position, e.workflowId, e.task, e.status]),
      [
        [1, first.workflowId, FIRST, 'completed'],
        [2, second.workflowId, FOLLOW_UP, 'completed'],
      ],
    );
    assert.deepEqual(
      detail.entries[0]?.calls.map((c) => [c.tool, c.status]),
      [
        ['forge_tool', 'succeeded'],
        ['count_words', 'succeeded'],
      ],
    );
    assert.match(String(detail.entries[1]?.answer), /19 characters/);

    const { sessions, total } = await listSessions(h.cfg);
    assert.equal(total, 2);
    assert.deepEqual(
      sessions.map((s) => [s.id.startsWith('other-') ? 'other' : s.id, s.tasks]),
      [
        ['other', 1],
        [S, 2],
      ],
      'most recently continued first',
    );
    await assert.rejects(showSession(h.cfg, 'no-such-session'), /no session "no-such-session"/);
    await assert.rejects(showSession(h.cfg, 'not a slug'), /short slug/);
  });

  it('joins a task once: a retried join finds the same place and the same view', async () => {
    const store = createSessionStore(h.db.sql);
    const again = await store.joinSession({ sessionId: S, workflowId: second.workflowId, task: FOLLOW_UP });
    assert.equal(again.position, 2);
    assert.deepEqual(
      again.recent.map((e) => [e.position, e.workflowId]),
      [[1, first.workflowId]],
    );
    const [rows] = await h.db.sql`select count(*)::int as n from session_tasks where session_id = ${S}`;
    assert.equal(rows?.n, 2, 'no second place');
    await assert.rejects(
      store.joinSession({ sessionId: 'elsewhere', workflowId: second.workflowId, task: FOLLOW_UP }),
      (err: unknown) => err instanceof PermanentError && /already belongs to session/.test(err.message),
    );
  });

  it('forge sessions ls|show print them', async () => {
    const ls = forge('sessions', 'ls');
    assert.match(ls, /^session +tasks +last +title\n/, 'a header row, as the other listings have');
    assert.match(ls, new RegExp(`^${S}\\s+2 tasks .+ how many words are in "the quick brown fox"\\?$`, 'm'));
    const show = forge('sessions', 'show', S);
    assert.match(
      show,
      new RegExp(
        `#1 completed\\s+${first.workflowId}  ${FIRST.replace(/[?"]/g, '.')}\\n\\s+calls: forge_tool, count_words v1\\n\\s+→ There are 4 words`,
      ),
    );
    assert.match(
      show,
      new RegExp(`#2 completed\\s+${second.workflowId}  ${FOLLOW_UP.replace('?', '.')}\\n\\s+→ That text has 19 characters`),
    );
    const json = JSON.parse(forge('sessions', 'show', S, '--json'));
    assert.deepEqual(
      json.session.entries.map((e: { workflowId: string }) => e.workflowId),
      [first.workflowId, second.workflowId],
    );
  });

  it('a new question in the session is answered on its own terms, with the earlier ones in view', async () => {
    const third = await run('count the words in "one two three"', S);
    assert.equal(third.result.status, 'completed', third.result.answer);
    assert.deepEqual(
      third.result.calls.map((c) => [c.tool, c.input]),
      [['count_words', { text: 'one two three' }]],
    );
    assert.match(third.result.answer, /There are 3 words/);
    const [opening] = openings('count the words in "one two three"');
    assert.ok(Array.isArray(opening));
    assert.match(
      (opening[0] as DocumentBlock).source.data,
      /#1 \[completed\][\s\S]*#2 \[completed\] Task: and how many characters was that\?/,
    );
  });

  it('concurrent tasks of one session take distinct places', async () => {
    const busy = `busy-${Date.now()}`;
    const runs = await Promise.all(
      ['Check DNS for a.example', 'Check DNS for b.example', 'Check DNS for c.example'].map((t) => run(t, busy)),
    );
    for (const r of runs) assert.equal(r.result.status, 'completed');
    const detail = await showSession(h.cfg, busy);
    assert.deepEqual(
      detail.entries.map((e) => e.position),
      [1, 2, 3],
    );
    assert.deepEqual(detail.entries.map((e) => e.workflowId).sort(), runs.map((r) => r.workflowId).sort());
  });
});
