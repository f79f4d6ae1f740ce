import type { Sql } from '../db.ts';

/**
 * The daily forge budget: new tools forged today (UTC) against FORGE_DAILY_FORGE_BUDGET. A run
 * counts while it runs (what it will come to is not known yet) and once it registered a new tool;
 * past the limit, forging waits for a person. A run that ended on a name the catalog held counts
 * no more: `unchanged` (the same code, nothing registered) or `new-version` (other code, made
 * current by that tool's regression gate, a rewrite as `forge improve` makes, which the budget
 * never metered). Nor does a failed one. The forge workflow meters it and `forge budget` shows
 * it, from the same rows and the same rule.
 */
const COUNTED = ['running', 'registered'];

export interface ForgeRunToday {
  workflow_id: string;
  name: string | null;
  status: string;
  created_at: Date;
  /** the model tokens the run used, as metered (llm_calls), and their estimated cost */
  input_tokens: number;
  cache_read_tokens: number;
  cache_write_tokens: number;
  output_tokens: number;
  cost_usd: number;
  /** whether it counts against the budget (COUNTED): running, or registered a new tool */
  counted: boolean;
}

export interface BudgetState {
  limit: number;
  usedToday: number;
  remaining: number;
}

const today = (sql: Sql) => sql`created_at >= date_trunc('day', now() at time zone 'utc') at time zone 'utc'`;

/** Every forge run of the day and the budget they leave, as a person reads it. */
export async function forgeBudgetToday(sql: Sql, limit: number): Promise<BudgetState & { runs: ForgeRunToday[] }> {
  const rows = await sql<Omit<ForgeRunToday, 'counted'>[]>`
    select r.workflow_id, r.name, r.status, r.created_at,
           coalesce(u.input, 0)::int as input_tokens, coalesce(u.cache_read, 0)::int as cache_read_tokens,
           coalesce(u.cache_write, 0)::int as cache_write_tokens, coalesce(u.output, 0)::int as output_tokens,
           coalesce(u.cost, 0)::float8 as cost_usd
    from forge_runs r
    left join lateral (
      select sum(input_tokens) as input, sum(cache_read_tokens) as cache_read, sum(cache_creation_tokens) as cache_write,
             sum(output_tokens) as output, sum(cost_usd) as cost
      from llm_calls where workflow_id = r.workflow_id) u on true
    where ${today(sql)} order by r.created_at`;
  const runs = rows.map((r) => ({ ...r, counted: COUNTED.includes(r.status) }));
  const usedToday = runs.filter((r) => r.counted).length;
  return { limit, usedToday, remaining: Math.max(0, limit - usedToday), runs };
}

/**
 * The budget as one forge run sees it: today's other runs, whether this one already counted, and
 * whether the name it was asked for is a tool the catalog holds (not archived). A forge under such
 * a name can only come to that tool's very code or a new version through its gate, never a new
 * tool, so it never waits for a person's word on the budget.
 */
export async function forgeBudgetFor(
  sql: Sql,
  workflowId: string,
  limit: number,
  name?: string,
): Promise<BudgetState & { alreadyCounted: boolean; nameHeld: boolean }> {
  const [row] = await sql<{ used: number }[]>`
    select count(*)::int as used from forge_runs
    where ${today(sql)} and status in ${sql(COUNTED)} and workflow_id <> ${workflowId}`;
  const [self] = await sql<{ status: string }[]>`select status from forge_runs where workflow_id = ${workflowId}`;
  // As the forge's name check reads it (forge-runs.ts compareWithCurrent): a tool with a current version.
  const held = name
    ? await sql`select 1 from tools t join tool_versions v on v.name = t.name and v.version = t.current_version
                where t.name = ${name} and t.status <> 'archived'`
    : [];
  const usedToday = row?.used ?? 0;
  return { limit, usedToday, remaining: limit - usedToday, alreadyCounted: self?.status === 'registered', nameHeld: held.length > 0 };
}
