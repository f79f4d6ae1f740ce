/**
 * The audit log, written and read here: the record of each decision and call (recordAudit, once
 * per idempotency key), as a person reads it (forge audit, forge audit show) and replays it: what
 * a replay re-runs, and its verdict (activities/audit.ts runs these for the replay workflow).
 */
import { z } from 'zod';
import {
  AuditEntryNotFoundError,
  auditedOutput,
  auditKindSchema,
  NotReplayableError,
  REPLAYABLE_KINDS,
  type ReplayContext,
  type ReplayTarget,
  replayContextSchema,
} from '../../domain/audit.ts';
import { unifiedDiff } from '../../domain/diff.ts';
import { sideEffectSchema } from '../../domain/tool.ts';
import type { Sql } from '../db.ts';
import { sha256, stableStringify } from './hash.ts';
import { parseInput } from './input.ts';

export const auditInputSchema = z.object({
  idempotencyKey: z.string().min(1).max(512),
  kind: auditKindSchema,
  tool: z.string().optional(),
  version: z.number().int().min(1).optional(),
  input: z.unknown().optional(),
  output: z.unknown().optional(),
  latencyMs: z.number().int().min(0).optional(),
  reasoning: z.string().optional(),
  taskContext: z.unknown().optional(),
  workflowId: z.string().optional(),
});
export type AuditInput = z.input<typeof auditInputSchema>;

/** Appends an entry; the same idempotency key again returns the first entry's id. */
export async function recordAudit(sql: Sql, input: AuditInput): Promise<{ id: number; created: boolean }> {
  const r = parseInput(auditInputSchema, input, 'audit record');
  const json = (v: unknown) => (v === undefined ? null : sql.json(v as never));
  const inserted = await sql<{ id: string }[]>`
    insert into audit_log (idempotency_key, kind, tool, version, input, output, latency_ms, reasoning, task_context, workflow_id)
    values (${r.idempotencyKey}, ${r.kind}, ${r.tool ?? null}, ${r.version ?? null}, ${json(r.input)}, ${json(r.output)}, ${r.latencyMs ?? null},
            ${r.reasoning ?? null}, ${json(r.taskContext)}, ${r.workflowId ?? null})
    on conflict (idempotency_key) do nothing returning id`;
  if (inserted[0]) return { id: Number(inserted[0].id), created: true };
  const [existing] = await sql<{ id: string }[]>`select id from audit_log where idempotency_key = ${r.idempotencyKey}`;
  return { id: Number(existing!.id), created: false };
}

export interface AuditEntry {
  id: number;
  at: string;
  kind: string;
  tool: string | null;
  version: number | null;
  latencyMs: number | null;
  /** tool calls: the metered invocation's verdict; replays: whether the re-run succeeded; else null */
  success: boolean | null;
  reasoning: string | null;
  taskContext: unknown;
  input: unknown;
  output: unknown;
  workflowId: string | null;
  /** replays: the id of the entry they re-ran */
  replayOf: number | null;
}

export const auditFilterSchema = z.object({
  tool: z.string().min(1).max(63).optional(),
  workflowId: z.string().min(1).max(1000).optional(),
  kind: z.string().min(1).max(100).optional(),
  /** words that must all appear (case-insensitive) in the entry's tool, kind, reasoning, workflow, task, input or output */
  text: z.string().trim().max(200).optional(),
  limit: z.number().int().min(1).max(1000).default(20),
});
export type AuditFilter = z.input<typeof auditFilterSchema>;

interface AuditRow {
  id: string;
  created_at: Date;
  kind: string;
  tool: string | null;
  version: number | null;
  input: unknown;
  output: unknown;
  latency_ms: number | null;
  reasoning: string | null;
  task_context: unknown;
  workflow_id: string | null;
  invocation_success: boolean | null;
}

function toEntry(row: AuditRow): AuditEntry {
  const replay = row.kind === 'replay' ? replayContextSchema.safeParse(row.task_context) : undefined;
  return {
    id: Number(row.id),
    at: row.created_at.toISOString(),
    kind: row.kind,
    tool: row.tool,
    version: row.version,
    latencyMs: row.latency_ms,
    success: row.invocation_success ?? (replay?.success ? replay.data.ok : null),
    reasoning: row.reasoning,
    taskContext: row.task_context,
    input: row.input,
    output: row.output,
    workflowId: row.workflow_id,
    replayOf: replay?.success ? replay.data.replayOf : null,
  };
}

/**
 * The select every reader shares. A tool call's success lives on its invocation row, which
 * recordToolCall writes under the same idempotency key as the audit row.
 */
function selectEntries(sql: Sql) {
  return sql`
    select a.id, a.created_at, a.kind, a.tool, a.version, a.input, a.output, a.latency_ms, a.reasoning, a.task_context, a.workflow_id,
           i.success as invocation_success
    from audit_log a
    left join invocations i on a.kind = 'tool_call' and i.idempotency_key = a.idempotency_key and i.tool = a.tool`;
}

/** A search's words as ilike patterns, LIKE's wildcards escaped (a person searching "50%" means the characters). */
function searchWords(text: string | undefined): string[] {
  return (text ?? '')
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 8)
    .map((w) => `%${w.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
}

/** Entries newest first, optionally only one tool's, one workflow's or one kind's, or those matching a search. */
export async function listAudit(sql: Sql, filter: AuditFilter = {}): Promise<AuditEntry[]> {
  const f = auditFilterSchema.parse(filter);
  const rows = await sql<AuditRow[]>`
    ${selectEntries(sql)}
    where true
      ${f.tool ? sql`and a.tool = ${f.tool}` : sql``}
      ${f.workflowId ? sql`and a.workflow_id = ${f.workflowId}` : sql``}
      ${f.kind ? sql`and a.kind = ${f.kind}` : sql``}
      ${searchWords(f.text).reduce(
        (acc, w) =>
          sql`${acc} and concat_ws(' ', a.tool, a.kind, a.reasoning, a.workflow_id, a.task_context::text, a.input::text, a.output::text) ilike ${w}`,
        sql``,
      )}
    order by a.created_at desc, a.id desc
    limit ${f.limit}`;
  return rows.map(toEntry);
}

export async function getAuditEntry(sql: Sql, id: number): Promise<AuditEntry | undefined> {
  const [row] = await sql<AuditRow[]>`${selectEntries(sql)} where a.id = ${id}`;
  return row ? toEntry(row) : undefined;
}

const manifestEffectSchema = z.object({ sideEffect: sideEffectSchema, destructive: z.boolean().default(false) });

/**
 * What replaying entry `id` re-runs: the same tool, version and input. Throws a typed error a
 * person can act on when the entry is missing, is not a tool call, or its version is gone.
 */
export async function replayTarget(sql: Sql, id: number): Promise<ReplayTarget> {
  const entry = await getAuditEntry(sql, id);
  if (!entry) throw new AuditEntryNotFoundError(id);
  if (!REPLAYABLE_KINDS.includes(entry.kind)) throw new NotReplayableError(id, `it is an entry of kind ${entry.kind}, not a tool call`);
  if (!entry.tool || !entry.version) throw new NotReplayableError(id, 'it names no tool version');
  const [version] = await sql<
    { manifest: unknown }[]
  >`select manifest from tool_versions where name = ${entry.tool} and version = ${entry.version}`;
  if (!version) throw new NotReplayableError(id, `${entry.tool}@${entry.version} is no longer in the registry`);
  const effect = manifestEffectSchema.parse(version.manifest);
  return {
    auditId: entry.id,
    kind: entry.kind,
    tool: entry.tool,
    version: entry.version,
    input: entry.input,
    output: entry.output,
    workflowId: entry.workflowId,
    taskContext: entry.taskContext,
    sideEffect: effect.sideEffect,
    destructive: effect.destructive,
  };
}

/** The hash the registry meters outputs with: sha256 over JSON with sorted keys. */
export function outputHash(value: unknown): string {
  return sha256(stableStringify(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => [k, sortKeys(v)]),
  );
}

const maxDiffLines = 40;

/** A short unified diff of two outputs as pretty JSON with sorted keys; empty when equal. */
export function outputDiff(before: unknown, after: unknown, labels: { from: string; to: string }): string {
  const pretty = (v: unknown) => (v === undefined ? 'null' : JSON.stringify(sortKeys(v), null, 2)) + '\n';
  const lines = unifiedDiff(pretty(before), pretty(after), { fromLabel: labels.from, toLabel: labels.to }).split('\n').filter(Boolean);
  if (lines.length <= maxDiffLines) return lines.length ? lines.join('\n') + '\n' : '';
  return (
    [
      ...lines.slice(0, maxDiffLines),
      `… ${lines.length - maxDiffLines} more diff lines (forge audit show <id> prints both outputs whole)`,
    ].join('\n') + '\n'
  );
}

export interface ReplayRecord {
  replayAuditId: number;
  same: boolean;
  originalOutputHash: string;
  replayOutputHash: string;
  diff: string;
}

/** A replay's verdict, recorded once. */
export function createReplayLedger(deps: { sql: Sql }) {
  return {
    /**
     * Audits the replay (kind 'replay', referencing the original) and compares the outputs. Never
     * an invocation: a replay must not move the tool's trust level. Not refused while frozen: the
     * run already happened, and an unrecorded run is what an audit log must never have.
     */
    async recordReplay(input: {
      workflowId: string;
      requestedBy: string;
      target: ReplayTarget;
      run: { ok: boolean; output?: unknown; error?: string; latencyMs: number };
    }): Promise<ReplayRecord> {
      const { target, run } = input;
      const output = auditedOutput(run);
      const originalOutputHash = outputHash(target.output);
      const replayOutputHash = outputHash(output);
      const same = originalOutputHash === replayOutputHash;
      const context: ReplayContext = {
        replayOf: target.auditId,
        requestedBy: input.requestedBy,
        ok: run.ok,
        same,
        originalOutputHash,
        replayOutputHash,
        original: { workflowId: target.workflowId, taskContext: target.taskContext ?? null },
      };
      const { id } = await recordAudit(deps.sql, {
        idempotencyKey: `${input.workflowId}:replay`,
        kind: 'replay',
        tool: target.tool,
        version: target.version,
        input: target.input,
        output,
        latencyMs: Math.max(0, Math.round(run.latencyMs)),
        reasoning: `replay of #${target.auditId} requested by ${input.requestedBy}: ${same ? 'same output' : 'output differs'}`,
        taskContext: context,
        workflowId: input.workflowId,
      });
      const diff = same ? '' : outputDiff(target.output, output, { from: `original #${target.auditId}`, to: `replay #${id}` });
      return { replayAuditId: id, same, originalOutputHash, replayOutputHash, diff };
    },
  };
}
