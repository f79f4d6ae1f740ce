import {
  canonical,
  type GateReport,
  type ImproveAttempt,
  type ImproveTrigger,
  type ObservedFailure,
  type RecordedCall,
  type RegressionCase,
} from '../../domain/improve.ts';
import type { QualityEvaluation } from '../../domain/quality.ts';
import { type ApiSpec, type ToolManifest, toolManifestSchema } from '../../domain/tool.ts';
import type { Registry } from '../catalog/registry.ts';
import { ToolNotFoundError } from '../catalog/store.ts';
import type { Sql } from '../db.ts';

/**
 * The improve cycle's bookkeeping: its ledger (improve_runs, which also counts the daily rewrite
 * cap), the evidence a rewrite starts from, and the one catalog write at the end, keyed by the
 * workflow id so a cycle killed and resumed promotes exactly one version or none.
 */
export interface ImproveDeps {
  sql: Sql;
  registry: Registry;
  evaluate?: (tool: string) => Promise<QualityEvaluation>;
}

export interface ImproveStart {
  fromVersion: number;
  status: string;
  pinned: boolean;
  /** automatic rewrites of this tool started today (UTC), not counting this cycle */
  rewritesToday: number;
  /** the evaluator's reading, when it has one */
  evaluation?: Pick<QualityEvaluation, 'score' | 'verdict' | 'reason'>;
}

export interface Evidence {
  manifest: ToolManifest;
  source: string;
  tests: string;
  apiSpec: ApiSpec | null;
  /** production failures of the current version (the trigger's first), one per distinct input */
  failures: ObservedFailure[];
  /** the version's regression cases, kept from every earlier cycle */
  cases: RegressionCase[];
  /** the latest successful read calls, to replay (none for a write tool: writes are never replayed) */
  recorded: RecordedCall[];
}

interface VersionSource {
  manifest: unknown;
  source: string;
  tests: string;
  api_spec: ApiSpec | null;
}

export function createImproveRuns(deps: ImproveDeps) {
  const { sql, registry } = deps;

  async function versionSource(tool: string, version: number): Promise<VersionSource> {
    const [row] = await sql<VersionSource[]>`
      select manifest, source, tests, api_spec from tool_versions where name = ${tool} and version = ${version}`;
    if (!row) throw new ToolNotFoundError(tool, version);
    return row;
  }

  return {
    async beginImprove(input: { workflowId: string; tool: string; trigger: ImproveTrigger; reason?: string }): Promise<ImproveStart> {
      const [tool] = await sql<{ current_version: number | null; status: string; pinned: boolean }[]>`
        select current_version, status, pinned from tools where name = ${input.tool}`;
      if (!tool?.current_version) throw new ToolNotFoundError(input.tool);
      await sql`insert into improve_runs (workflow_id, tool, trigger, reason, from_version)
                values (${input.workflowId}, ${input.tool}, ${input.trigger}, ${input.reason ?? null}, ${tool.current_version})
                on conflict (workflow_id) do nothing`;
      const [today] = await sql<{ n: number }[]>`
        select count(*)::int as n from improve_runs
        where tool = ${input.tool} and trigger <> 'manual' and status <> 'skipped' and workflow_id <> ${input.workflowId}
          and created_at >= date_trunc('day', now() at time zone 'utc') at time zone 'utc'`;
      const evaluation = deps.evaluate ? await deps.evaluate(input.tool) : undefined;
      return {
        fromVersion: tool.current_version,
        status: tool.status,
        pinned: tool.pinned,
        rewritesToday: today?.n ?? 0,
        ...(evaluation ? { evaluation: { score: evaluation.score, verdict: evaluation.verdict, reason: evaluation.reason } } : {}),
      };
    },

    async finishImprove(input: {
      workflowId: string;
      status: string;
      reason: string;
      toVersion?: number;
      report?: unknown;
      attempts?: ImproveAttempt[];
    }): Promise<void> {
      // reason keeps what started the cycle; the outcome, the gate's report and the attempts go in report.
      const report = {
        outcome: input.reason,
        ...(input.report === undefined ? {} : { gate: input.report }),
        ...(input.attempts === undefined ? {} : { attempts: input.attempts }),
      };
      await sql`update improve_runs set status = ${input.status}, to_version = ${input.toVersion ?? null},
                  report = ${sql.json(report as never)}, updated_at = now()
                where workflow_id = ${input.workflowId}`;
    },

    async gatherEvidence(input: { tool: string; version: number; failures: ObservedFailure[]; replays: number }): Promise<Evidence> {
      const row = await versionSource(input.tool, input.version);
      const manifest = toolManifestSchema.parse(row.manifest);
      // A failure the task's diagnosis put on the caller or the environment is no case the tool must pass.
      const audited = await sql<{ input: unknown; output: { error?: string } | null }[]>`
        select a.input, a.output from audit_log a join invocations i on i.idempotency_key = a.idempotency_key
        where a.kind = 'tool_call' and a.tool = ${input.tool} and a.version = ${input.version} and not i.success
          and not exists (
            select 1 from task_steps s
            where s.workflow_id = a.workflow_id
              and s.step = 'diagnosis-' || regexp_replace(split_part(a.idempotency_key, ':call:', 2), '[.](retry[0-9]+|escalated|v[0-9]+)$', '')
              and s.output->>'atFault' in ('input', 'environment'))
        order by a.id desc limit 20`;
      const failures: ObservedFailure[] = [];
      const seen = new Set<string>();
      for (const f of [...input.failures, ...audited.map((a) => ({ input: a.input, error: String(a.output?.error ?? 'failed') }))]) {
        const key = canonical(f.input);
        if (seen.has(key)) continue;
        seen.add(key);
        failures.push({ input: f.input, error: f.error.slice(0, 4000) });
      }
      const cases = await sql<{ test_name: string; input: unknown; expected: unknown }[]>`
        select test_name, input, expected from tool_test_cases where name = ${input.tool} and version = ${input.version} order by test_name`;
      const recorded =
        manifest.sideEffect === 'read' && input.replays > 0
          ? await sql<{ id: string; input: unknown; output: unknown; latency_ms: number | null }[]>`
              select a.id, a.input, a.output, a.latency_ms from audit_log a join invocations i on i.idempotency_key = a.idempotency_key
              where a.kind = 'tool_call' and a.tool = ${input.tool} and a.version = ${input.version} and i.success
              order by a.id desc limit ${input.replays}`
          : [];
      return {
        manifest,
        source: row.source,
        tests: row.tests,
        apiSpec: row.api_spec,
        failures: failures.slice(0, 10),
        cases: cases.map((c) => ({ name: c.test_name, input: c.input, ...(c.expected === null ? {} : { expected: c.expected }) })),
        recorded: recorded.map((r) => ({ auditId: Number(r.id), input: r.input, output: r.output, latencyMs: r.latency_ms ?? 0 })),
      };
    },

    /**
     * The rewrite that passed the gate becomes the current version, with the gate's report and the
     * production failures as permanent regression cases; a quarantined tool is active again. Keyed
     * by the workflow id: a retried activity returns what the first attempt registered.
     */
    async promoteRewrite(input: {
      workflowId: string;
      tool: string;
      fromVersion: number;
      source: string;
      tests: string;
      /** this cycle's new regression cases (named as in the suite) */
      cases: RegressionCase[];
      gate: GateReport;
      reason: string;
    }): Promise<{ version: number; created: boolean }> {
      const from = await versionSource(input.tool, input.fromVersion);
      const manifest = toolManifestSchema.parse(from.manifest);
      const kept = await sql<{ test_name: string; input: unknown; expected: unknown }[]>`
        select test_name, input, expected from tool_test_cases where name = ${input.tool} and version = ${input.fromVersion}`;
      const known = new Set(kept.map((c) => canonical(c.input)));
      const added = input.cases.filter((c) => !known.has(canonical(c.input)));
      const registered = await registry.registerVersion({
        name: input.tool,
        source: input.source,
        tests: input.tests,
        apiSpec: from.api_spec ?? undefined,
        manifest: {
          description: manifest.description,
          sideEffect: manifest.sideEffect,
          destructive: manifest.destructive,
          permissions: manifest.permissions,
          inputSchema: manifest.inputSchema,
          outputSchema: manifest.outputSchema,
          ...(manifest.apiSpec ? { apiSpec: manifest.apiSpec } : {}),
        },
        createdBy: 'rewrite',
        status: 'verified',
        makeCurrent: true,
        testCases: [
          ...kept.map((c) => ({ name: c.test_name, input: c.input, ...(c.expected === null ? {} : { expected: c.expected }) })),
          ...added,
        ],
        idempotencyKey: `${input.workflowId}:rewrite`,
        gateReport: input.gate,
      });
      // A repaired tool earns its trust again from its new version's calls (services/catalog/metering.ts).
      await registry.setStatus(input.tool, 'active');
      await registry.recordPromotion({
        tool: input.tool,
        fromVersion: input.fromVersion,
        toVersion: registered.version,
        reason: input.reason,
        workflowId: input.workflowId,
        details: { gate: input.gate.summary },
        idempotencyKey: `${input.workflowId}:promotion`,
      });
      return { version: registered.version, created: registered.created };
    },

    async archiveDegraded(input: { workflowId: string; tool: string; reason: string }) {
      const result = await registry.archiveTool(input.tool, input.reason, { workflowId: input.workflowId, by: input.workflowId });
      return { version: result.version, changed: result.changed };
    },

    async inheritCases(input: { workflowId: string; from: string; to: string }) {
      const result = await registry.copyTestCases(input.from, input.to, { workflowId: input.workflowId, by: input.workflowId });
      return { copied: result.copied };
    },
  };
}

export type ImproveRuns = ReturnType<typeof createImproveRuns>;

/**
 * An improve cycle's row as a person reads it. `workflow_id` is the cycle's key,
 * `improve-<tool>@<run id>` (a tool's cycles share the workflow id); `report` holds what it came to
 * (`outcome`), the last gate's report (`gate`) and its rewrites (`attempts`), once it ended.
 */
export interface ImproveLedgerRow {
  workflow_id: string;
  tool: string;
  trigger: string;
  status: string;
  reason: string | null;
  from_version: number | null;
  to_version: number | null;
  report: { outcome?: string; gate?: unknown; attempts?: unknown } | null;
  created_at: Date;
  updated_at: Date;
}

/** One improve cycle's row by its key, or undefined when no cycle by that key has begun its bookkeeping. */
export async function findImproveRow(sql: Sql, key: string): Promise<ImproveLedgerRow | undefined> {
  const [row] = await sql<ImproveLedgerRow[]>`
    select workflow_id, tool, trigger, status, reason, from_version, to_version, report, created_at, updated_at
    from improve_runs where workflow_id = ${key}`;
  return row;
}

/** A tool's latest improve cycle's row, or undefined when it has had none. */
export async function latestImproveRow(sql: Sql, tool: string): Promise<ImproveLedgerRow | undefined> {
  const [row] = await sql<ImproveLedgerRow[]>`
    select workflow_id, tool, trigger, status, reason, from_version, to_version, report, created_at, updated_at
    from improve_runs where tool = ${tool} order by created_at desc, workflow_id desc limit 1`;
  return row;
}

/** The newest improve cycles first, at most `limit`; `total` counts them all. */
export async function recentImproveRows(sql: Sql, limit: number): Promise<{ rows: ImproveLedgerRow[]; total: number }> {
  const rows = await sql<(ImproveLedgerRow & { total: number })[]>`
    select workflow_id, tool, trigger, status, reason, from_version, to_version, report, created_at, updated_at,
      (count(*) over ())::int as total
    from improve_runs
    order by created_at desc, workflow_id
    limit ${limit}`;
  return { rows: rows.map(({ total: _total, ...r }) => r), total: rows[0]?.total ?? 0 };
}
