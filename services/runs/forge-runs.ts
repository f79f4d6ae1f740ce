import type { ForgeAttempt, ToolSpec } from '../../domain/forge.ts';
import type { ApiSpec } from '../../domain/tool.ts';
import { inputJsonSchema, outputJsonSchema } from '../../domain/tool-schemas.ts';
import { sha256 } from '../catalog/hash.ts';
import type { Registry } from '../catalog/registry.ts';
import { forgeBudgetFor } from '../control/budget.ts';
import type { Sql } from '../db.ts';

/**
 * The forge cycle's bookkeeping: its run ledger (which also meters the daily budget) and the one
 * catalog write at the end, keyed by the workflow id so a crash-and-retry registers exactly once.
 */
export function createForgeRuns(deps: { sql: Sql; registry: Registry; dailyBudget: number }) {
  const { sql, registry } = deps;
  return {
    async recordForgeRun(input: {
      workflowId: string;
      need: string;
      name?: string;
      status: string;
      version?: number;
      reason?: string;
      attempts: ForgeAttempt[];
    }): Promise<void> {
      await sql`insert into forge_runs (workflow_id, need, name, status, version, reason, attempts)
                values (${input.workflowId}, ${input.need}, ${input.name ?? null}, ${input.status}, ${input.version ?? null},
                        ${input.reason ?? null}, ${sql.json(input.attempts as never)})
                on conflict (workflow_id) do update set name = coalesce(excluded.name, forge_runs.name), status = excluded.status,
                  version = excluded.version, reason = excluded.reason, attempts = excluded.attempts, updated_at = now()`;
    },

    /** Tools forged (or being forged) today, UTC, not counting this run; and whether the name asked for is held. */
    forgeBudget: (input: { workflowId: string; name?: string }) => forgeBudgetFor(sql, input.workflowId, deps.dailyBudget, input.name),

    /**
     * Whether a forged tool's name is taken, and if so whether its code is the current version's,
     * byte for byte, and whether that tool is archived (no longer offered or run).
     */
    async compareWithCurrent(input: {
      name: string;
      source: string;
    }): Promise<
      | { exists: false }
      | { exists: true; version: number; identical: boolean; archived?: { reason: string | null; replacedBy: string | null } }
    > {
      const [row] = await sql<
        { version: number; source_sha256: string; status: string; archive_reason: string | null; replaced_by: string | null }[]
      >`
        select v.version, v.source_sha256, t.status, t.archive_reason, t.replaced_by
        from tools t join tool_versions v on v.name = t.name and v.version = t.current_version
        where t.name = ${input.name}`;
      if (!row) return { exists: false };
      return {
        exists: true,
        version: row.version,
        identical: row.source_sha256 === sha256(input.source),
        ...(row.status === 'archived' ? { archived: { reason: row.archive_reason, replacedBy: row.replaced_by } } : {}),
      };
    },

    /** Whether this forge run's catalog write happened (its version, under the run's key). */
    async registeredByRun(workflowId: string): Promise<boolean> {
      const [row] = await sql`select 1 from tool_versions where idempotency_key = ${forgeKey(workflowId)}`;
      return row !== undefined;
    },

    async registerForgedTool(input: {
      workflowId: string;
      spec: ToolSpec;
      source: string;
      tests: string;
      apiSpec?: ApiSpec;
    }): Promise<{ version: number; created: boolean }> {
      const { spec } = input;
      const result = await registry.registerVersion({
        name: spec.name,
        source: input.source,
        tests: input.tests,
        apiSpec: input.apiSpec,
        manifest: {
          description: spec.description,
          sideEffect: spec.sideEffect,
          destructive: spec.destructive,
          permissions: spec.permissions,
          inputSchema: inputJsonSchema(spec),
          outputSchema: outputJsonSchema(spec),
          apiSpec: input.apiSpec,
        },
        createdBy: 'forge',
        status: 'verified',
        idempotencyKey: forgeKey(input.workflowId),
      });
      return { version: result.version, created: result.created };
    },
  };
}

const forgeKey = (workflowId: string) => `forge:${workflowId}`;

/** A forge run's row as a person reads it: what was asked, how it stands, what it came to. */
export interface ForgeLedgerRow {
  workflow_id: string;
  need: string;
  name: string | null;
  status: string;
  version: number | null;
  reason: string | null;
  attempts: ForgeAttempt[];
  created_at: Date;
  updated_at: Date;
}

/** One forge run's row, or undefined when no forge by that workflow id has begun its bookkeeping. */
export async function findForgeRow(sql: Sql, workflowId: string): Promise<ForgeLedgerRow | undefined> {
  const [row] = await sql<ForgeLedgerRow[]>`
    select workflow_id, need, name, status, version, reason, attempts, created_at, updated_at
    from forge_runs where workflow_id = ${workflowId}`;
  return row;
}

/** The newest forge runs first, at most `limit`; `total` counts them all. */
export async function recentForgeRows(sql: Sql, limit: number): Promise<{ rows: ForgeLedgerRow[]; total: number }> {
  const rows = await sql<(ForgeLedgerRow & { total: number })[]>`
    select workflow_id, need, name, status, version, reason, attempts, created_at, updated_at, (count(*) over ())::int as total
    from forge_runs
    order by created_at desc, workflow_id
    limit ${limit}`;
  return { rows: rows.map(({ total: _total, ...r }) => r), total: rows[0]?.total ?? 0 };
}
