import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DenseIndex, normalized } from '../../services/catalog/dense-index.ts';

describe('the in-memory index of tool vectors', () => {
  const query = normalized([1, 0, 0]);

  it('gives the k nearest tools, nearest first, with their cosines', () => {
    const index = new DenseIndex();
    index.set('east', [10, 0, 0]);
    index.set('north_east', [1, 1, 0]);
    index.set('north', [0, 3, 0]);
    index.set('west', [-1, 0, 0]);
    assert.deepEqual(
      index.nearest(query, 2).map((n) => n.name),
      ['east', 'north_east'],
    );
    assert.ok(Math.abs(index.nearest(query, 2)[1]!.cosine - Math.SQRT1_2) < 1e-6);
    assert.equal(index.nearest(query, 10).length, 4);
    assert.equal(index.cosine(query, 'west'), 0, 'an opposite tool scores 0, not below');
    assert.equal(index.cosine(query, 'nobody'), null);
  });

  it('replaces a tool’s vector in place, and ignores a vector of another model’s length', () => {
    const index = new DenseIndex();
    index.set('a', [0, 1, 0]);
    index.set('a', [1, 0, 0]);
    index.set('b', [1, 0]);
    assert.equal(index.size, 1);
    assert.ok(Math.abs(index.cosine(query, 'a')! - 1) < 1e-6);
  });

  it('grows past its first block of rows', () => {
    const index = new DenseIndex();
    for (let i = 0; i < 3000; i++) index.set(`t${i}`, [Math.cos(i / 1000), Math.sin(i / 1000), 0]);
    assert.equal(index.size, 3000);
    assert.equal(index.nearest(query, 1)[0]!.name, 't0');
  });

  it('finds the same nearest tools and cosines as a plain dot product, whatever the vectors’ length', () => {
    for (const dim of [5, 384]) {
      // a seeded generator: the same vectors every run
      let seed = dim;
      const next = () => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return (seed / 2 ** 31) * 2 - 1;
      };
      const vectors = Array.from({ length: 500 }, () => normalized(Array.from({ length: dim }, next)));
      const index = new DenseIndex();
      for (const [i, v] of vectors.entries()) index.set(`t${i}`, v);
      const request = normalized(Array.from({ length: dim }, next));
      const plain = vectors
        .map((v, i) => ({
          name: `t${i}`,
          cosine: Math.max(
            0,
            v.reduce((sum, x, j) => sum + x * request[j]!, 0),
          ),
        }))
        .sort((a, b) => b.cosine - a.cosine)
        .slice(0, 10);
      const found = index.nearest(request, 10);
      assert.deepEqual(
        found.map((n) => n.name),
        plain.map((n) => n.name),
        `dimension ${dim}`,
      );
      for (const [i, n] of found.entries()) assert.ok(Math.abs(n.cosine - plain[i]!.cosine) < 1e-5);
    }
  });
});
