import type { ForgeConfig } from '../domain/config.ts';
import { InvalidInputError } from '../domain/errors.ts';
import { type FailureEvidence, feedbackInputSchema, sinceMs } from '../domain/evidence.ts';
import { ToolNotFoundError } from '../services/catalog/store.ts';
import { createEvidenceStore } from '../services/runs/evidence.ts';
import { withDb } from './db.ts';

export type { Expectation, FailureEvidence } from '../domain/evidence.ts';

/**
 * Failure evidence as a person sees and adds to it (issue 11): explicit feedback on a task, and the
 * rows the nightly curation hands to the evolve cycle. Works while frozen (nothing here runs anything).
 */

/**
 * `forge feedback <task-id> --bad "…"`: the task's result, read from the tasks table, becomes one
 * evidence row whose expectations a replay is judged by — routing when the person names the tool it
 * should have used (which must be in the catalog), output otherwise. The same feedback twice is one row.
 */
export async function giveFeedback(
  cfg: ForgeConfig,
  ask: { taskId: string; bad: string; expectTool?: string; expectAnswer?: string; severity?: number },
): Promise<{ evidence: FailureEvidence; created: boolean }> {
  const parsed = feedbackInputSchema.safeParse({
    workflowId: ask.taskId,
    bad: ask.bad,
    expectTool: ask.expectTool,
    expectAnswer: ask.expectAnswer,
    severity: ask.severity,
  });
  if (!parsed.success) {
    const flag: Record<string, string> = {
      workflowId: 'task id',
      bad: '--bad',
      expectTool: '--expect-tool',
      expectAnswer: '--expect-answer',
    };
    throw new InvalidInputError(
      'feedback',
      parsed.error.issues.map((i) => `${flag[String(i.path[0])] ?? String(i.path[0] ?? 'feedback')}: ${i.message}`).join('; '),
    );
  }
  const input = parsed.data;
  return withDb(cfg, async (sql) => {
    if (input.expectTool) {
      // A tool the catalog does not hold would be an expectation no replay could ever meet.
      const [tool] = await sql<{ name: string }[]>`select name from tools where name = ${input.expectTool}`;
      if (!tool) throw new ToolNotFoundError(input.expectTool);
    }
    return createEvidenceStore({ sql }).recordFeedback(input);
  });
}

/** Evidence rows newest first; `since` like 30m, 24h, 7d, 2w. */
export async function listFailures(
  cfg: ForgeConfig,
  opts: { since?: string; limit?: number } = {},
): Promise<{ evidence: FailureEvidence[]; total: number; since?: string }> {
  const limit = opts.limit ?? 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
    throw new InvalidInputError('--limit', `expected a whole number from 1 to 1000, got ${limit}`);
  let since: Date | undefined;
  if (opts.since !== undefined) {
    const ms = sinceMs(opts.since);
    if (ms === undefined) throw new InvalidInputError('--since', `${JSON.stringify(opts.since)} is not a duration like 30m, 24h, 7d or 2w`);
    since = new Date(Date.now() - ms);
  }
  const listed = await withDb(cfg, (sql) => createEvidenceStore({ sql }).listEvidence({ since, limit }));
  return { ...listed, ...(since ? { since: since.toISOString() } : {}) };
}

/** One evidence row, whole: expectations, trace, curation. */
export async function showFailure(cfg: ForgeConfig, id: string | number): Promise<FailureEvidence> {
  const n = typeof id === 'number' ? id : Number(String(id).replace(/^#/, ''));
  if (!Number.isSafeInteger(n) || n < 1)
    throw new InvalidInputError('evidence id', `${JSON.stringify(id)} is not an evidence id (a positive whole number)`);
  // An id that is not there fails with EvidenceNotFoundError, which names it and says how to list them.
  const [row] = await withDb(cfg, (sql) => createEvidenceStore({ sql }).loadEvidence([n]));
  return row!;
}
