import type { ForgeConfig } from '../domain/config.ts';
import { type BudgetState, forgeBudgetToday as budgetToday, type ForgeRunToday } from '../services/control/budget.ts';
import { withDb } from './db.ts';

export type { ForgeRunToday };
export type ForgeBudgetToday = BudgetState & { runs: ForgeRunToday[] };

/** Today's (UTC) forge budget as a person reads it: every forge run of the day and what is left. */
export function forgeBudgetToday(cfg: ForgeConfig): Promise<ForgeBudgetToday> {
  return withDb(cfg, (sql) => budgetToday(sql, cfg.FORGE_DAILY_FORGE_BUDGET));
}
