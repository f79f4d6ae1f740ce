/**
 * Applying a unified diff strictly: every hunk's context and removed lines must be exactly where the
 * hunk says (a small drift of position is tolerated, never of content). A diff written against other
 * content does not apply, and says which hunk and why. Pure.
 */
import { splitLines } from './diff.ts';

export class PatchApplyError extends Error {}

interface Hunk {
  oldStart: number;
  lines: { kind: ' ' | '-' | '+'; text: string }[];
}

function parseHunks(diff: string): Hunk[] {
  const hunks: Hunk[] = [];
  let current: Hunk | undefined;
  for (const line of diff.replace(/\n$/, '').split('\n')) {
    const header = /^@@ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@/.exec(line);
    if (header) {
      current = { oldStart: Number(header[1]), lines: [] };
      hunks.push(current);
      continue;
    }
    if (!current || line.startsWith('---') || line.startsWith('+++') || line.startsWith('\\')) continue;
    const kind = line[0];
    if (kind === ' ' || kind === '-' || kind === '+') current.lines.push({ kind, text: line.slice(1) });
    else if (line === '') current.lines.push({ kind: ' ', text: '' });
    else throw new PatchApplyError(`unexpected line in hunk ${hunks.length}: ${JSON.stringify(line.slice(0, 80))}`);
  }
  if (!hunks.length) throw new PatchApplyError('the diff has no hunks (@@ -a,b +c,d @@)');
  return hunks;
}

const MAX_DRIFT = 20;

/** The file after the diff; throws PatchApplyError naming the first hunk that does not fit. */
export function applyUnifiedDiff(before: string, diff: string): string {
  const lines = splitLines(before);
  const out: string[] = [];
  let cursor = 0;
  parseHunks(diff).forEach((hunk, i) => {
    const expected = hunk.lines.filter((l) => l.kind !== '+').map((l) => l.text);
    const want = Math.max(0, hunk.oldStart - 1);
    const fits = (at: number) => at >= cursor && expected.every((t, k) => lines[at + k] === t) && at + expected.length <= lines.length;
    let at = -1;
    for (let d = 0; d <= MAX_DRIFT && at < 0; d++) {
      if (fits(want - d)) at = want - d;
      else if (fits(want + d)) at = want + d;
    }
    if (at < 0) {
      const first = expected[0] ?? '';
      throw new PatchApplyError(
        `hunk ${i + 1} (at line ${hunk.oldStart}) does not match the file: expected ${JSON.stringify(first.slice(0, 80))} there`,
      );
    }
    out.push(...lines.slice(cursor, at));
    for (const l of hunk.lines) if (l.kind !== '-') out.push(l.text);
    cursor = at + expected.length;
  });
  out.push(...lines.slice(cursor));
  return out.length ? `${out.join('\n')}\n` : '';
}
