import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { scenarioFiles } from '../../app/stack.ts';
import { type RequestFacts, type ScenarioRule, selectResponse } from '../../scripted-model/scenario.ts';
import { loadScenarioFile } from '../../scripted-model/server.ts';

// The bundled scenarios as `forge up` loads them (demo.json last), asked what an agent turn offline
// does. A session follow-up once forged count_words again on every turn while count_words was
// offered (the forge rule matched any word-count task that quoted no text), each forge waiting on a
// budget approval and registering nothing: a rule forges a tool only when it is not offered.
let rules: ScenarioRule[];

before(async () => {
  rules = (await Promise.all(scenarioFiles({ FORGE_SCENARIO: undefined }).map(loadScenarioFile))).flatMap((s) => s.rules);
});

const META = ['search_tools', 'forge_tool', 'ask_person'];
const SLUG_SESSION = [
  'Earlier in this session',
  '#1 [completed] Task: make a URL slug of "Hello World"',
  'Calls:',
  '- slugify v2 {"text":"Hello World"} → {"slug":"hello-world"}',
  'Answer: The slug of "Hello World" is hello-world.',
].join('\n');
const COUNT_SESSION = [
  'Earlier in this session',
  '#1 [completed] Task: how many words are in "the quick brown fox"?',
  'Calls:',
  '- forge_tool {"name":"count_words"} → {"forged":"count_words","version":1}',
  '- count_words v1 {"text":"the quick brown fox"} → {"words":4,"characters":19,"lines":1}',
  'Answer: There are 4 words, as counted by count_words.',
].join('\n');

/** The reply to an agent turn of `task`, offered `tools`, with a session document and the last user message. */
function turn(task: string, tools: string[], opts: { document?: string; user?: string } = {}) {
  const facts: RequestFacts = {
    system: 'You are Forge',
    first: `Task:\n${task}`,
    user: opts.user ?? `Task:\n${task}`,
    ...(opts.document ? { document: opts.document } : {}),
    tools: [...tools, ...META],
    model: 'claude-sonnet-4-6',
    purpose: 'task.turn',
  };
  const picked = selectResponse(rules, [], facts);
  assert.ok(picked, `a rule answers "${task}"`);
  const blocks = picked.response.content ?? [];
  const use = picked.response.tool_use ?? blocks.find((b) => b.type === 'tool_use');
  const said = blocks.find((b) => b.type === 'text')?.text;
  const text = picked.response.text ?? (typeof said === 'string' ? said : undefined);
  return { rule: rules[picked.ruleIndex]?.name, tool: use?.name, input: use?.input, text, captures: picked.captures };
}

describe('the demo scenario forges a tool only when it is not offered', () => {
  it('a follow-up about "that" counts what the session\'s last call returned, with the offered count_words', () => {
    const r = turn('now count the words in that slug', ['count_words', 'slugify'], { document: SLUG_SESSION });
    assert.equal(r.tool, 'count_words', r.rule);
    assert.equal(r.captures.document[1], 'hello-world');
  });

  it('a follow-up about an earlier count answers from it, calling nothing', () => {
    const r = turn('and how many words are in that?', ['count_words'], { document: COUNT_SESSION });
    assert.equal(r.tool, undefined, r.rule);
    assert.match(r.text ?? '', /\{\{document\.1\}\} words/);
    assert.equal(r.captures.document[1], '4');
  });

  it('a word count with no text to count, count_words offered, is answered in words: no forge', () => {
    for (const task of ['count the words', 'how many words does my essay have?']) {
      const r = turn(task, ['count_words']);
      assert.equal(r.tool, undefined, `${task}: ${r.rule}`);
      assert.match(r.text ?? '', /gives no text to count/);
    }
  });

  it('the turn after a forge that registered nothing does not forge again', () => {
    const user = 'count_words v1 already has exactly this code: nothing registered. count_words v1: count the words in a text';
    const r = turn('count the words in that', ['count_words'], { user });
    assert.notEqual(r.tool, 'forge_tool', r.rule);
  });

  it('forges count_words (and create_note) when they are not offered, as the demo does', () => {
    assert.deepEqual(turn('now count the words in that slug', ['slugify'], { document: SLUG_SESSION }).input, {
      name: 'count_words',
      description: 'count the words in a text: input text, output words, characters and lines',
      parameters: 'text: the text to count',
      returns: '{ words, characters, lines }',
      example: '{"text": "the quick brown fox"}',
    });
    assert.equal(turn('create a note please', []).tool, 'forge_tool');
    const offered = turn('create a note please', ['create_note']);
    assert.equal(offered.tool, undefined, offered.rule);
    assert.match(offered.text ?? '', /names no title/);
  });

  it('a quoted text is still counted from the task itself', () => {
    const r = turn('how many words are in "a rose is a rose"?', ['count_words'], { document: SLUG_SESSION });
    assert.deepEqual([r.tool, r.input], ['count_words', { text: '{{first.1}}' }]);
    assert.equal(r.captures.first[1], 'a rose is a rose');
  });
});
