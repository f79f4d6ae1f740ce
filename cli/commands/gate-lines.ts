import { gateReportSchema } from '../../app/catalog.ts';

// Apart from improve-output.ts, which follows cycles: `forge tools history` prints these lines and
// must not load the Temporal client for them (test/unit/cli-start.test.ts).

/** The regression gate's report, one line per check: pass/fail, old vs new output hash, latency. */
export function gateLines(report: unknown): string[] {
  const parsed = gateReportSchema.safeParse(report);
  if (!parsed.success) return [];
  const r = parsed.data;
  const lines = [`gate: ${r.passed ? 'passed' : 'failed'}: ${r.summary}`];
  if (r.declaredDifferences) lines.push(`  declared differences: ${r.declaredDifferences}`);
  for (const c of r.cases) {
    const hashes = c.oldHash || c.newHash ? ` output ${c.oldHash ?? '-'} → ${c.newHash ?? '-'}` : '';
    const ms = c.latencyMs !== undefined ? ` ${c.oldLatencyMs !== undefined ? `${c.oldLatencyMs} → ` : ''}${c.latencyMs} ms` : '';
    lines.push(
      `  ${c.pass ? 'pass' : 'FAIL'} ${c.kind} ${c.name}${hashes}${ms}${c.detail && !c.pass ? ` — ${c.detail.split('\n')[0]}` : ''}`,
    );
  }
  return lines;
}
