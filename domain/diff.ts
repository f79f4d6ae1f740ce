/**
 * A small line diff (Myers' O(ND) algorithm) and its unified-diff rendering, for tool history:
 * a person reads how v3 differs from v2 the way `diff -u` would show it. No dependency; pure.
 */

export interface DiffOp {
  kind: ' ' | '-' | '+';
  line: string;
}

/** Past this many edits the diff is shown as "all removed, all added": the trace grows as D·(N+M). */
const maxEditDistance = 4000;

export function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

export function diffLines(a: readonly string[], b: readonly string[]): DiffOp[] {
  const n = a.length;
  const m = b.length;
  const max = n + m;
  const offset = max + 1;
  const v = new Int32Array(2 * max + 3);
  const trace: Int32Array[] = [];
  for (let d = 0; d <= max; d++) {
    if (d > maxEditDistance)
      return [...a.map((line) => ({ kind: '-' as const, line })), ...b.map((line) => ({ kind: '+' as const, line }))];
    trace.push(v.slice());
    for (let k = -d; k <= d; k += 2) {
      // Step down (take a line of b) or right (drop a line of a), whichever reaches further.
      let x = k === -d || (k !== d && v[k - 1 + offset]! < v[k + 1 + offset]!) ? v[k + 1 + offset]! : v[k - 1 + offset]! + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[k + offset] = x;
      if (x >= n && y >= m) return backtrack(trace, a, b, offset);
    }
  }
  return []; // unreachable: d = n + m always reaches the end
}

function backtrack(trace: Int32Array[], a: readonly string[], b: readonly string[], offset: number): DiffOp[] {
  const ops: DiffOp[] = [];
  let x = a.length;
  let y = b.length;
  for (let d = trace.length - 1; d >= 0; d--) {
    const v = trace[d]!;
    const k = x - y;
    const prevK = k === -d || (k !== d && v[k - 1 + offset]! < v[k + 1 + offset]!) ? k + 1 : k - 1;
    const prevX = v[prevK + offset]!;
    const prevY = prevX - prevK;
    while (x > prevX && y > prevY) {
      ops.push({ kind: ' ', line: a[x - 1]! });
      x--;
      y--;
    }
    if (d > 0) {
      if (x === prevX) ops.push({ kind: '+', line: b[y - 1]! });
      else ops.push({ kind: '-', line: a[x - 1]! });
    }
    x = prevX;
    y = prevY;
  }
  return ops.reverse();
}

/**
 * `diff -u` output: headers, then hunks with `context` unchanged lines around each change.
 * Empty when the texts are equal.
 */
export function unifiedDiff(before: string, after: string, opts: { fromLabel?: string; toLabel?: string; context?: number } = {}): string {
  const ops = diffLines(splitLines(before), splitLines(after));
  const context = opts.context ?? 3;
  if (!ops.some((o) => o.kind !== ' ')) return '';

  // Line numbers (1-based) of each op in a and b, to write the hunk headers.
  const aAt: number[] = [];
  const bAt: number[] = [];
  let ai = 1;
  let bi = 1;
  for (const op of ops) {
    aAt.push(ai);
    bAt.push(bi);
    if (op.kind !== '+') ai++;
    if (op.kind !== '-') bi++;
  }

  const out = [`--- ${opts.fromLabel ?? 'a'}`, `+++ ${opts.toLabel ?? 'b'}`];
  let i = 0;
  while (i < ops.length) {
    const firstChange = ops.findIndex((o, j) => j >= i && o.kind !== ' ');
    if (firstChange === -1) break;
    const start = Math.max(i, firstChange - context);
    // Extend the hunk while the next change is within 2·context unchanged lines.
    let end = firstChange;
    let j = firstChange;
    while (j < ops.length) {
      if (ops[j]!.kind !== ' ') end = j;
      else if (j - end > 2 * context) break;
      j++;
    }
    const stop = Math.min(ops.length, end + context + 1);
    const slice = ops.slice(start, stop);
    const aLen = slice.filter((o) => o.kind !== '+').length;
    const bLen = slice.filter((o) => o.kind !== '-').length;
    // diff -u names the line *before* an empty range.
    const aStart = aLen === 0 ? aAt[start]! - 1 : aAt[start]!;
    const bStart = bLen === 0 ? bAt[start]! - 1 : bAt[start]!;
    out.push(`@@ -${aStart},${aLen} +${bStart},${bLen} @@`);
    for (const op of slice) out.push(`${op.kind}${op.line}`);
    i = stop;
  }
  return out.join('\n') + '\n';
}
