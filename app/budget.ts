import type { ForgeConfig } from '../domain/config.ts';
import { type BudgetState, forgeBudgetToday as budgetToday, type ForgeRunToday } from '../services/control/budget.ts';
import { llmEndpoint } from '../services/llm/endpoint.ts';
import { withSession } from './context.ts';
import { withDb } from './db.ts';
import { reconcileQuietly } from './reconcile.ts';

export type { ForgeRunToday };
export type ForgeBudgetToday = BudgetState & {
  runs: ForgeRunToday[];
  /** what the dollar figures are, when no real model is billing (the scripted model) */
  costNote?: string;
};

/**
 * Today's (UTC) forge budget as a person reads it: every forge run of the day and what is left. A
 * run still marked running is first compared with Temporal: a forge terminated or timed out no
 * longer holds a place in the budget.
 */
export async function forgeBudgetToday(cfg: ForgeConfig): Promise<ForgeBudgetToday> {
  await withSession(cfg, (session) => reconcileQuietly(session));
  const budget = await withDb(cfg, (sql) => budgetToday(sql, cfg.FORGE_DAILY_FORGE_BUDGET));
  if (!llmEndpoint(cfg).scripted) return budget;
  const costNote = `the costs are what these tokens would cost at ${cfg.FORGE_MODEL}'s prices: with no ANTHROPIC_API_KEY, Forge talks to the scripted model, which charges nothing`;
  return { ...budget, costNote };
}
