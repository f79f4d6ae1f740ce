/**
 * How the CLI's tables read (a tester's report): `forge tools ls` had no header row, unlike
 * `forge tools score`; lines ended in padding; `forge tools show` printed the registry's mean
 * latency as it is stored, `avg 48.666666666666664 ms`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ToolListing } from '../../app/catalog.ts';
import { cycleRowLines } from '../../cli/commands/cycle-listing.ts';
import { callLines } from '../../cli/commands/task-output.ts';
import { historyLines, latency, toolsTable } from '../../cli/commands/tools.ts';

const tool = (over: Partial<ToolListing> & { name: string }): ToolListing =>
  ({
    currentVersion: 1,
    status: 'active',
    description: 'Counts the words in a text.',
    sideEffect: 'read',
    destructive: false,
    versions: 1,
    pinned: false,
    archivedAt: null,
    archiveReason: null,
    replacedBy: null,
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    stats: {
      tool: over.name,
      invocations: 3,
      successes: 3,
      successRate: 1,
      avgLatencyMs: 48.666666666666664,
      successfulRunsByOperation: {},
      lastFailureAt: null,
      lastError: null,
      level: 'standard',
    },
    ...over,
  }) as ToolListing;

describe('forge tools ls', () => {
  const lines = toolsTable([
    tool({ name: 'count_words' }),
    tool({ name: 'create_note', currentVersion: 12, sideEffect: 'write', pinned: true, description: '' }),
    tool({ name: 'slugify', status: 'quarantined', description: 'Makes a URL slug.   ' }),
  ]);

  it('starts with a header row, whose columns the rows line up under', () => {
    assert.match(lines[0]!, /^tool {25}ver {2}status {7}trust {8}effect calls {2}description$/);
    const at = (line: string, word: string) => line.indexOf(word);
    for (const [row, cells] of [
      [lines[1]!, ['v1', 'active', 'standard', 'read', '3', 'Counts']],
      [lines[2]!, ['v12', 'active*', 'standard', 'write']],
      [lines[3]!, ['v1', 'quarantined', 'standard', 'read']],
    ] as const) {
      assert.equal(at(row, cells[0]), at(lines[0]!, 'ver'), row);
      assert.equal(at(row, cells[1]), at(lines[0]!, 'status'), row);
      assert.equal(at(row, cells[2]), at(lines[0]!, 'trust'), row);
      assert.equal(at(row, cells[3]), at(lines[0]!, 'effect'), row);
    }
    assert.equal(lines.at(-1), '* pinned: never rewritten automatically');
  });

  it('no line ends in spaces, an empty description included', () => {
    for (const line of lines) assert.doesNotMatch(line, /\s$/, JSON.stringify(line));
  });
});

describe('forge tools history', () => {
  it('a version in a folder that matches, with a diff: no line ends in spaces, a blank context line included', () => {
    const lines = historyLines({
      version: 2,
      status: 'verified',
      createdBy: 'rewrite',
      createdAt: '2026-01-01T00:00:00.000Z',
      sourceSha256: 'x',
      current: true,
      dir: '/tmp/tools/slugify/v2',
      onDisk: 'same',
      diff: '--- v1/tool.ts\n+++ v2/tool.ts\n@@ -1,3 +1,3 @@\n import { z } from "zod";\n \n-const x = 1;\n+const x = 2;\n',
      gateReport: null,
    });
    assert.equal(lines[0], 'v2 (current) verified by rewrite at 2026-01-01T00:00:00.000Z');
    assert.deepEqual(lines.slice(4), ['     import { z } from "zod";', '', '    -const x = 1;', '    +const x = 2;']);
    for (const line of lines) assert.doesNotMatch(line, /\s$/, JSON.stringify(line));
  });
});

describe('forge tools show', () => {
  it('a mean latency in whole milliseconds', () => {
    assert.equal(latency(48.666666666666664), '49 ms');
    assert.equal(latency(null), '-');
  });
});

describe("a task's call lines", () => {
  const noLink = () => null;
  it('a long input or output is clipped with …; a short one is whole, its spaces as they were', () => {
    const text = 'word '.repeat(40);
    const [, long] = callLines(
      [{ turn: 1, id: 'c1', tool: 'count_words', version: 1, input: { text }, status: 'succeeded', output: { echo: text } }],
      noLink,
    );
    const [input, output] = long!.replace(/^ {2}1\. count_words v1 /, '').split(' → ');
    assert.equal(input!.length, 100);
    assert.ok(input!.endsWith('…') && output!.endsWith('…'), long);
    assert.ok(JSON.stringify({ text }).startsWith(input!.slice(0, -1)), 'the clip is the start of the JSON');

    const [, short] = callLines(
      [{ turn: 2, id: 'c2', tool: 'count_words', input: { text: 'a  rose' }, status: 'succeeded', output: { words: 2 } }],
      noLink,
    );
    assert.equal(short, '  2. count_words {"text":"a  rose"} → {"words":2}');
  });
});

describe('forge tasks and forge forges', () => {
  const listing = { plural: 'tasks', what: 'task', empty: 'no tasks yet', showOne: 'one task: forge tasks show <id> [--wait]' };
  it('list under a header row whose columns the rows line up under, no line ending in spaces', () => {
    const lines = cycleRowLines(
      [
        { workflowId: 'task-20261202120000-abcdef', status: 'completed', createdAt: '2026-12-02T12:00:00.000Z', text: 'how many words?' },
        { workflowId: 'task-20261202110000-123456', status: 'running', text: 'not begun yet' },
      ],
      5,
      listing,
    );
    assert.match(lines[0]!, /^id +status +started +task$/);
    for (const column of ['status', 'started', 'task'])
      assert.equal(
        lines[1]!.indexOf(column === 'status' ? 'completed' : column === 'started' ? '2026-' : 'how many'),
        lines[0]!.indexOf(column),
        column,
      );
    assert.equal(lines[2]!.indexOf('not begun yet'), lines[0]!.indexOf('task'));
    assert.deepEqual(lines.slice(3), ['(3 older tasks not shown: --limit 5)', 'one task: forge tasks show <id> [--wait]']);
    for (const l of lines) assert.equal(l, l.trimEnd());
    assert.deepEqual(cycleRowLines([], 0, listing), ['no tasks yet'], 'no header over nothing');
  });

  it("forge improve ls: ids longer than a task's widen their column, and its attempts column lines up too", () => {
    const key = 'improve-roman_numeral@01a23aa3-bba5-7377-8541-7ad6511dc503';
    const lines = cycleRowLines(
      [
        { workflowId: key, status: 'refused', createdAt: '2026-12-02T12:00:00.000Z', extra: '3', text: 'roman_numeral: no rewrite passed' },
        { workflowId: 'improve-ab@1', status: 'running', extra: '-', text: 'ab: manual' },
      ],
      2,
      { plural: 'improve cycles', what: 'tool: outcome', extra: 'attempts', empty: '', showOne: 'one cycle: forge improve show <id|tool>' },
    );
    assert.match(lines[0]!, /^id +status +started +attempts {2}tool: outcome$/);
    for (const [row, value] of [
      [1, 'refused'],
      [2, 'running'],
    ] as const)
      assert.equal(lines[row]!.indexOf(value), lines[0]!.indexOf('status'));
    const attempts = lines[0]!.indexOf('attempts');
    assert.match(lines[1]!.slice(attempts - 1), /^ 3 {2}/);
    assert.match(lines[2]!.slice(attempts - 1), /^ - {2}/);
    assert.equal(lines[1]!.indexOf('roman_numeral:'), lines[0]!.indexOf('tool: outcome'));
    assert.equal(lines[2]!.indexOf('ab: manual'), lines[0]!.indexOf('tool: outcome'));
    assert.equal(lines.at(-1), 'one cycle: forge improve show <id|tool>');
  });
});
