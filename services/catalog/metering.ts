import { z } from 'zod';
import { toolNameSchema } from '../../domain/tool.ts';
import { type TrustLevel, trustLevel } from '../../domain/trust.ts';
import type { Sql } from '../db.ts';
import { sha256, stableStringify } from './hash.ts';
import { parseInput } from './input.ts';

/**
 * Metering: every run of a registered tool as an invocation row (hashes of its input and output,
 * never the values), and the figures they add up to — success rate, latency, successful runs per
 * operation and the trust level (domain/trust.ts) that the gate and the ranking read.
 */

export const invocationInputSchema = z.object({
  idempotencyKey: z.string().min(1).max(512),
  tool: toolNameSchema,
  version: z.number().int().min(1),
  operation: z.string().min(1).max(200).default('run'),
  input: z.unknown(),
  output: z.unknown().optional(),
  latencyMs: z.number().int().min(0),
  success: z.boolean(),
  error: z.string().optional(),
  workflowId: z.string().optional(),
});
export type InvocationInput = z.input<typeof invocationInputSchema>;

export interface ToolStats {
  tool: string;
  invocations: number;
  successes: number;
  successRate: number;
  avgLatencyMs: number | null;
  successfulRunsByOperation: Record<string, number>;
  lastFailureAt: string | null;
  lastError: string | null;
  level: TrustLevel;
}

export type Metering = ReturnType<typeof createMetering>;

export function createMetering(deps: { sql: Sql }) {
  const { sql } = deps;

  /** Once per idempotency key: a retried activity meters its call once. */
  async function recordInvocation(input: InvocationInput): Promise<{ id: number; created: boolean }> {
    const r = parseInput(invocationInputSchema, input, 'invocation record');
    const inputHash = sha256(stableStringify(r.input));
    const outputHash = r.output === undefined ? null : sha256(stableStringify(r.output));
    const inserted = await sql<{ id: string }[]>`
      insert into invocations (idempotency_key, tool, version, operation, input_hash, output_hash, latency_ms, success, error, workflow_id)
      values (${r.idempotencyKey}, ${r.tool}, ${r.version}, ${r.operation}, ${inputHash}, ${outputHash}, ${r.latencyMs}, ${r.success}, ${r.error ?? null}, ${r.workflowId ?? null})
      on conflict (idempotency_key) do nothing returning id`;
    if (inserted[0]) return { id: Number(inserted[0].id), created: true };
    const [existing] = await sql<{ id: string }[]>`select id from invocations where idempotency_key = ${r.idempotencyKey}`;
    return { id: Number(existing!.id), created: false };
  }

  /**
   * The trust ladder reads the current version's calls only: a rewrite (or a rollback) starts from
   * its own record, so a repaired tool is not held to its broken predecessor's failures, and a new
   * version earns the trust (and the unattended writes) its predecessor had, call by call.
   */
  async function stats(name: string): Promise<ToolStats> {
    const current = sql`(select coalesce(current_version, 0) from tools where name = ${name})`;
    const ofCurrent = sql`tool = ${name} and (version = ${current} or ${current} = 0 or ${current} is null)`;
    const [agg] = await sql<{ invocations: number; successes: number; avg_latency: number | null; last_failure_at: Date | null }[]>`
      select count(*)::int as invocations, count(*) filter (where success)::int as successes,
             avg(latency_ms)::float8 as avg_latency, max(created_at) filter (where not success) as last_failure_at
      from invocations where ${ofCurrent}`;
    const ops = await sql<{ operation: string; n: number }[]>`
      select operation, count(*)::int as n from invocations where ${ofCurrent} and success group by operation order by operation`;
    const [lastErr] = await sql<{ error: string | null }[]>`
      select error from invocations where ${ofCurrent} and not success order by created_at desc, id desc limit 1`;
    const invocations = agg?.invocations ?? 0;
    const successes = agg?.successes ?? 0;
    return {
      tool: name,
      invocations,
      successes,
      successRate: invocations ? successes / invocations : 0,
      avgLatencyMs: agg?.avg_latency ?? null,
      successfulRunsByOperation: Object.fromEntries(ops.map((o) => [o.operation, o.n])),
      lastFailureAt: agg?.last_failure_at?.toISOString() ?? null,
      lastError: lastErr?.error ?? null,
      level: trustLevel({ invocations, successes }),
    };
  }

  return { recordInvocation, stats };
}
