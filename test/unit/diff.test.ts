import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { diffLines, splitLines, unifiedDiff } from '../../domain/diff.ts';

describe('unifiedDiff', () => {
  it('is empty for equal texts', () => {
    assert.equal(unifiedDiff('a\nb\n', 'a\nb\n'), '');
  });

  it('renders diff -u hunks', () => {
    assert.equal(
      unifiedDiff('a\nb\nc\n', 'a\nB\nc\nd\n', { fromLabel: 'v1/tool.ts', toLabel: 'v2/tool.ts' }),
      ['--- v1/tool.ts', '+++ v2/tool.ts', '@@ -1,3 +1,4 @@', ' a', '-b', '+B', ' c', '+d', ''].join('\n'),
    );
  });

  it('splits far-apart changes into hunks and names the line before an empty range', () => {
    const a = Array.from({ length: 20 }, (_, i) => `l${i}`).join('\n') + '\n';
    const b = a.replace('l1\n', 'L1\n').replace('l18\n', 'l18\nnew\n');
    const d = unifiedDiff(a, b);
    assert.deepEqual(
      d.split('\n').filter((l) => l.startsWith('@@')),
      ['@@ -1,5 +1,5 @@', '@@ -17,4 +17,5 @@'],
    );
    assert.equal(unifiedDiff('', 'x\n').split('\n')[2], '@@ -0,0 +1,1 @@');
  });

  it('produces a minimal edit script that rebuilds both sides', () => {
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    for (let t = 0; t < 200; t++) {
      const a = Array.from({ length: Math.floor(rnd() * 25) }, () => `x${Math.floor(rnd() * 5)}`);
      const b = a.filter(() => rnd() > 0.25).flatMap((l) => (rnd() > 0.8 ? [l, `y${Math.floor(rnd() * 3)}`] : [l]));
      const ops = diffLines(a, b);
      assert.deepEqual(
        ops.filter((o) => o.kind !== '+').map((o) => o.line),
        a,
      );
      assert.deepEqual(
        ops.filter((o) => o.kind !== '-').map((o) => o.line),
        b,
      );
    }
    assert.equal(diffLines(splitLines('a\nb\nc\n'), splitLines('a\nc\n')).filter((o) => o.kind !== ' ').length, 1);
  });
});
