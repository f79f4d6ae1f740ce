import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { summaryLines } from '../../cli/commands/audit.ts';
import { auditedOutput, parseAuditId } from '../../domain/audit.ts';
import { type AuditEntry, outputDiff, outputHash } from '../../services/catalog/audit.ts';

describe('audit replay helpers', () => {
  it('reads audit ids as people type them, and nothing else', () => {
    assert.equal(parseAuditId('12'), 12);
    assert.equal(parseAuditId('#12'), 12);
    assert.equal(parseAuditId(' 7 '), 7);
    for (const bad of [undefined, '', '0', '-3', '1.5', 'abc', '12abc', '#', '9999999999999999'])
      assert.equal(parseAuditId(bad), null, String(bad));
  });

  it('hashes outputs stably: key order does not matter, values do', () => {
    assert.equal(outputHash({ words: 5, lines: 1 }), outputHash({ lines: 1, words: 5 }));
    assert.notEqual(outputHash({ words: 5 }), outputHash({ words: 6 }));
    assert.equal(outputHash(undefined), outputHash(null), 'a missing output is stored as null');
    assert.match(outputHash({}), /^[a-f0-9]{64}$/);
  });

  it('stores a failed call as its error, the way the task workflow audits it', () => {
    assert.deepEqual(auditedOutput({ ok: true, output: { words: 5 } }), { words: 5 });
    assert.deepEqual(auditedOutput({ ok: false, output: { partial: true }, error: 'exit 1' }), { error: 'exit 1' });
  });

  it('diffs outputs as sorted pretty JSON, only the changed lines and their context', () => {
    assert.equal(outputDiff({ a: 1, b: 2 }, { b: 2, a: 1 }, { from: 'x', to: 'y' }), '', 'equal outputs: no diff');
    const diff = outputDiff(
      { words: 5, characters: 25, lines: 1 },
      { lines: 1, characters: 25, words: 6 },
      { from: 'original #1', to: 'replay #2' },
    );
    assert.equal(
      diff,
      [
        '--- original #1',
        '+++ replay #2',
        '@@ -1,5 +1,5 @@',
        ' {',
        '   "characters": 25,',
        '   "lines": 1,',
        '-  "words": 5',
        '+  "words": 6',
        ' }',
        '',
      ].join('\n'),
    );
  });

  it('keeps a long diff short and says where the whole outputs are', () => {
    const before = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${String(i).padStart(3, '0')}`, i]));
    const after = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${String(i).padStart(3, '0')}`, -i]));
    const lines = outputDiff(before, after, { from: 'a', to: 'b' }).trimEnd().split('\n');
    assert.equal(lines.length, 41);
    assert.match(lines.at(-1)!, /^… \d+ more diff lines \(forge audit show <id> prints both outputs whole\)$/);
  });

  it('lists an entry in a few lines, each clipped; --json and show keep it whole', () => {
    const entry: AuditEntry = {
      id: 7,
      at: '2026-11-22T10:00:00.000Z',
      kind: 'tool_call',
      tool: 'count_words',
      version: 1,
      latencyMs: 41,
      success: true,
      reasoning: "count_words counts words; the task's text is the input.",
      taskContext: { task: 'how many words are in this?' },
      input: { text: 'word '.repeat(100) },
      output: { words: 100, characters: 500, lines: 1 },
      workflowId: 'task-1',
      replayOf: null,
    };
    const lines = summaryLines(entry);
    assert.deepEqual(lines.slice(0, 3), [
      '#7  2026-11-22T10:00:00.000Z  tool_call  count_words@1  41 ms  ok',
      "    reasoning  count_words counts words; the task's text is the input.",
      '    task       how many words are in this?',
    ]);
    assert.equal(lines[3], `    input      ${JSON.stringify(entry.input).slice(0, 119)}…`);
    assert.equal(lines[4], '    output     {"words":100,"characters":500,"lines":1}');

    const replay = summaryLines({
      ...entry,
      id: 8,
      kind: 'replay',
      success: false,
      replayOf: 7,
      taskContext: { same: false, requestedBy: 'ana' },
      reasoning: null,
    });
    assert.equal(replay[0], '#8  2026-11-22T10:00:00.000Z  replay  count_words@1  41 ms  FAILED');
    assert.equal(replay[1], '    task       replay of #7 (output differs), requested by ana');
  });
});
