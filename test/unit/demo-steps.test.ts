import assert from 'node:assert/strict';
import { it } from 'node:test';
import { demoStepLines, rerunNote } from '../../cli/commands/demo.ts';

// forge demo prints each task's question before following it, and, run again on a home whose
// catalog holds its tools, says up front that nothing is forged or repaired this time and how to
// see it from scratch, instead of quietly showing less than README promises.

it('a first run heads each task with its question and what it shows', () => {
  const steps = demoStepLines(new Map());
  assert.deepEqual(
    steps.map((s) => s[0]),
    [
      'demo 1/4: how many words are in "the quick brown fox jumps over the lazy dog"?',
      'demo 2/4: count the words in "to be or not to be"',
      'demo 3/4: make a URL slug of "Crème Brûlée"',
      'demo 4/4: how many characters does the URL slug of "Crème Brûlée" have?',
    ],
  );
  assert.match(steps[0]![1]!, /^ {2}a tool nobody has yet: count_words is forged/);
  assert.match(steps[2]![1]!, /repairs it behind the regression gate \(v2\)/);
  assert.equal(rerunNote(new Map(), '/home/me/.forge'), undefined, 'nothing to say on a first run');
});

it('a run on a home that holds the tools says so up front, and each step says what it does instead', () => {
  const held = new Map([
    ['count_words', 1],
    ['slugify', 2],
  ]);
  assert.equal(
    rerunNote(held, '/home/me/.forge'),
    "count_words and slugify are already in this home's catalog (/home/me/.forge): the demo reuses them, so they are not forged or repaired this time.\n" +
      '  To watch the demo from scratch, in a new home: npx forge down && FORGE_HOME=$(mktemp -d) npx forge demo',
  );
  const steps = demoStepLines(held);
  assert.equal(steps[0]![1], '  count_words is in the catalog already (v1): called, nothing forged');
  assert.equal(steps[2]![1], '  slugify is in the catalog already (v2): called as it stands, nothing forged or repaired');
  assert.match(
    rerunNote(new Map([['count_words', 3]]), '/h') ?? '',
    /^count_words is already in this home's catalog \(\/h\): the demo reuses it, so it is not forged this time\./,
  );
  assert.match(demoStepLines(new Map([['count_words', 3]]))[2]![1]!, /slugify is forged/, 'a tool not held yet is still forged');
});
