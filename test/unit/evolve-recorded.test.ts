import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { recordedCalls, recordedOutput } from '../../services/evolution/replay.ts';

// A replayed held-out task's write is answered with the output its production run had for the same
// call (services/evolution/replay.ts): which calls of a stored result count, and what "the same call" is.

describe("evolve replay: a held-out task's recorded calls", () => {
  const stored = [
    { turn: 1, id: 'c1', tool: 'count_words', input: { text: 'a b' }, status: 'succeeded', output: { words: 2 } },
    { turn: 2, id: 'c2', tool: 'create_note', input: { title: 'x', body: 'y', tags: [] }, status: 'failed', reason: 'boom' },
    {
      turn: 3,
      id: 'c3',
      tool: 'create_note',
      input: { title: 'x', body: 'y', tags: ['a'] },
      status: 'succeeded',
      output: { id: 'note_1' },
    },
    { turn: 3, id: 'c4', tool: 'create_note', input: { title: 'z', body: 'y', tags: [] }, status: 'not-run', reason: 'rejected' },
    'not a call',
  ];

  it('keeps the calls that succeeded, with their outputs, and nothing else', () => {
    assert.deepEqual(recordedCalls(stored), [
      { tool: 'count_words', input: { text: 'a b' }, output: { words: 2 } },
      { tool: 'create_note', input: { title: 'x', body: 'y', tags: ['a'] }, output: { id: 'note_1' } },
    ]);
    assert.deepEqual(recordedCalls(null), []);
    assert.deepEqual(recordedCalls({ calls: [] }), []);
  });

  it('answers the same tool with an equal input, whatever the order of its keys (jsonb reorders them)', () => {
    const calls = recordedCalls(stored);
    assert.deepEqual(recordedOutput(calls, 'create_note', { tags: ['a'], body: 'y', title: 'x' }), { output: { id: 'note_1' } });
  });

  it('answers nothing for another input, another tool, or a call that failed in production', () => {
    const calls = recordedCalls(stored);
    assert.equal(recordedOutput(calls, 'create_note', { title: 'x', body: 'y', tags: ['b'] }), undefined);
    assert.equal(recordedOutput(calls, 'create_note', { title: 'x', body: 'y', tags: [] }), undefined);
    assert.equal(recordedOutput(calls, 'update_note', { title: 'x', body: 'y', tags: ['a'] }), undefined);
    assert.equal(recordedOutput([], 'create_note', { title: 'x', body: 'y', tags: ['a'] }), undefined);
  });
});
