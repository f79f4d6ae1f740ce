import type { ForgeConfig } from '../domain/config.ts';
import { type BudgetState, forgeBudgetToday as budgetToday, type ForgeRunToday } from '../services/control/budget.ts';
import { withSession } from './context.ts';
import { withDb } from './db.ts';
import { reconcileQuietly } from './reconcile.ts';

export type { ForgeRunToday };
export type ForgeBudgetToday = BudgetState & { runs: ForgeRunToday[] };

/**
 * Today's (UTC) forge budget as a person reads it: every forge run of the day and what is left. A
 * run still marked running is first compared with Temporal: a forge terminated or timed out no
 * longer holds a place in the budget.
 */
export async function forgeBudgetToday(cfg: ForgeConfig): Promise<ForgeBudgetToday> {
  await withSession(cfg, (session) => reconcileQuietly(session));
  return withDb(cfg, (sql) => budgetToday(sql, cfg.FORGE_DAILY_FORGE_BUDGET));
}
