import type { Sql } from '../db.ts';

/**
 * The daily forge budget: new tools forged today (UTC) against FORGE_DAILY_FORGE_BUDGET. A run
 * counts while it runs and once it registered a tool; past the limit, forging waits for a person.
 * The forge workflow meters it and `forge budget` shows it, from the same rows and the same rule.
 */
const COUNTED = ['running', 'registered'];

export interface ForgeRunToday {
  workflow_id: string;
  name: string | null;
  status: string;
  created_at: Date;
}

export interface BudgetState {
  limit: number;
  usedToday: number;
  remaining: number;
}

const today = (sql: Sql) => sql`created_at >= date_trunc('day', now() at time zone 'utc') at time zone 'utc'`;

/** Every forge run of the day and the budget they leave, as a person reads it. */
export async function forgeBudgetToday(sql: Sql, limit: number): Promise<BudgetState & { runs: ForgeRunToday[] }> {
  const runs = await sql<ForgeRunToday[]>`
    select workflow_id, name, status, created_at from forge_runs where ${today(sql)} order by created_at`;
  const usedToday = runs.filter((r) => COUNTED.includes(r.status)).length;
  return { limit, usedToday, remaining: Math.max(0, limit - usedToday), runs };
}

/** The budget as one forge run sees it: today's other runs, and whether this one already counted. */
export async function forgeBudgetFor(sql: Sql, workflowId: string, limit: number): Promise<BudgetState & { alreadyCounted: boolean }> {
  const [row] = await sql<{ used: number }[]>`
    select count(*)::int as used from forge_runs
    where ${today(sql)} and status in ${sql(COUNTED)} and workflow_id <> ${workflowId}`;
  const [self] = await sql<{ status: string }[]>`select status from forge_runs where workflow_id = ${workflowId}`;
  const usedToday = row?.used ?? 0;
  return { limit, usedToday, remaining: limit - usedToday, alreadyCounted: self?.status === 'registered' };
}
