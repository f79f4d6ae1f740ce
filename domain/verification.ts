import { z } from 'zod';

/**
 * What the sandbox verification pipeline (static → mock → forge-checks → live) reports about a tool.
 * Pure schemas and formatting: workflows import these to decide whether to repair,
 * and the repair prompt is built from `formatForRepair`.
 */

/** forge-checks: Forge's own calls (generated inputs, injected API faults), not the tool's tests (domain/forge-checks.ts). */
export const stageNameSchema = z.enum(['static', 'mock', 'forge-checks', 'live']);
export type StageName = z.infer<typeof stageNameSchema>;

export const stageStatusSchema = z.enum(['passed', 'failed', 'skipped']);
export type StageStatus = z.infer<typeof stageStatusSchema>;

/** Which file a finding points into. */
export const sourceFileSchema = z.enum(['tool.ts', 'tool.test.ts', 'api-spec.json']);
export type SourceFile = z.infer<typeof sourceFileSchema>;

/** One problem the static stage found, located precisely enough to patch. */
export const findingSchema = z.object({
  rule: z.string().min(1),
  message: z.string().min(1),
  file: sourceFileSchema.default('tool.ts'),
  /** 1-based; 0 when the problem has no single location (e.g. a missing export) */
  line: z.number().int().min(0),
  /** 1-based; 0 when unknown */
  column: z.number().int().min(0),
  /** the offending source line, trimmed */
  snippet: z.string(),
});
export type Finding = z.infer<typeof findingSchema>;

/** One test case's outcome (node:test name, or the live probe). */
export const testOutcomeSchema = z.object({
  name: z.string(),
  passed: z.boolean(),
  durationMs: z.number().min(0),
  /** assertion message / stack head / captured output when the test failed */
  error: z.string().optional(),
});
export type TestOutcome = z.infer<typeof testOutcomeSchema>;

export const stageResultSchema = z.object({
  stage: stageNameSchema,
  status: stageStatusSchema,
  /** why the stage failed or was skipped, in one sentence a person can act on */
  reason: z.string().optional(),
  findings: z.array(findingSchema).optional(),
  tests: z.array(testOutcomeSchema).optional(),
  /** passed / total tests, 0..1 */
  coverage: z.number().min(0).max(1).optional(),
  durationMs: z.number().min(0),
});
export type StageResult = z.infer<typeof stageResultSchema>;

export const verifyReportSchema = z.object({
  passed: z.boolean(),
  stages: z.array(stageResultSchema),
});
export type VerifyReport = z.infer<typeof verifyReportSchema>;

/** passed/total, or undefined when there were no tests (so "no tests" is never read as 100%). */
export function coverageOf(tests: readonly TestOutcome[]): number | undefined {
  if (tests.length === 0) return undefined;
  return tests.filter((t) => t.passed).length / tests.length;
}

/** A report is a pass when nothing failed and the mock stage actually ran its tests. */
export function reportPassed(stages: readonly StageResult[]): boolean {
  if (stages.some((s) => s.status === 'failed')) return false;
  return stages.some((s) => s.stage === 'mock' && s.status === 'passed');
}

const MAX_ERROR_CHARS = 600;
const MAX_ITEMS = 20;

function clip(text: string, max: number): string {
  const oneBlock = text.trim();
  return oneBlock.length > max ? `${oneBlock.slice(0, max)}… (${oneBlock.length - max} more chars)` : oneBlock;
}

function formatFinding(f: Finding): string {
  const where = f.line > 0 ? `${f.file}:${f.line}:${f.column}` : f.file;
  const snippet = f.snippet ? `\n      > ${clip(f.snippet, 160)}` : '';
  return `  - [${f.rule}] ${where} ${f.message}${snippet}`;
}

function formatTest(t: TestOutcome): string {
  const head = `  - ${t.passed ? 'PASS' : 'FAIL'} ${t.name} (${Math.round(t.durationMs)} ms)`;
  if (t.passed || !t.error) return head;
  const body = clip(t.error, MAX_ERROR_CHARS)
    .split('\n')
    .map((l) => `      ${l}`)
    .join('\n');
  return `${head}\n${body}`;
}

function formatStage(s: StageResult): string {
  const lines: string[] = [];
  const cov = s.coverage === undefined ? '' : `, ${Math.round(s.coverage * 100)}% of tests passed`;
  lines.push(`## ${s.stage}: ${s.status.toUpperCase()}${cov}`);
  if (s.reason) lines.push(`reason: ${s.reason}`);
  const findings = s.findings ?? [];
  for (const f of findings.slice(0, MAX_ITEMS)) lines.push(formatFinding(f));
  if (findings.length > MAX_ITEMS) lines.push(`  … ${findings.length - MAX_ITEMS} more findings`);
  // Failing tests first: they are what the repair must address; passing ones only by name.
  const tests = [...(s.tests ?? [])].sort((a, b) => Number(a.passed) - Number(b.passed));
  for (const t of tests.slice(0, MAX_ITEMS)) lines.push(formatTest(t));
  if (tests.length > MAX_ITEMS) lines.push(`  … ${tests.length - MAX_ITEMS} more tests`);
  return lines.join('\n');
}

/**
 * Compact text for a repair prompt: verdict first, then per stage the reason, the
 * findings with file:line and the offending line, and failing tests with their error.
 */
export function formatForRepair(report: VerifyReport): string {
  const failed = report.stages.find((s) => s.status === 'failed');
  const verdict = report.passed
    ? 'VERIFICATION PASSED'
    : `VERIFICATION FAILED at stage "${failed?.stage ?? 'unknown'}"${failed?.reason ? `: ${failed.reason}` : ''}`;
  return [verdict, ...report.stages.map(formatStage)].join('\n');
}

/** A stage a report passed without running, and why (the live stage offline or without credentials). */
export interface SkippedStage {
  stage: StageName;
  reason: string;
}

/** The stages a report skipped, in order, each with its reason. */
export function skippedStages(report: VerifyReport): SkippedStage[] {
  return report.stages.filter((s) => s.status === 'skipped').map((s) => ({ stage: s.stage, reason: s.reason ?? '(no reason given)' }));
}

/**
 * The skipped stages formatForRepair wrote into a summary: a forge's ledger row keeps each
 * verification's summary, not its report, and is all there is once Temporal no longer keeps the forge.
 */
export function skippedStagesInSummary(summary: string): SkippedStage[] {
  const found: SkippedStage[] = [];
  for (const m of summary.matchAll(/^## ([\w-]+): SKIPPED[^\n]*(?:\nreason: ([^\n]*))?/gm)) {
    const stage = stageNameSchema.safeParse(m[1]);
    if (stage.success) found.push({ stage: stage.data, reason: m[2] ?? '(no reason given)' });
  }
  return found;
}
