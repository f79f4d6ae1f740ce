/**
 * The audit log as a person reads and replays it (seed 000, principle 3: "I can replay any
 * decision chain"). Shapes shared by the replay workflow, its activities and the CLI. Pure:
 * workflows import it.
 */
import { z } from 'zod';
import { ForgeError } from './errors.ts';
import type { SideEffect } from './tool.ts';

/**
 * Every kind of entry the audit log holds, with what it records: the writer's schema takes only
 * these (a new kind fails to compile until it is listed here), and `forge audit --kind` refuses
 * anything else, listing them.
 */
export const AUDIT_KINDS = {
  tool_call: "one call of a tool version: input, output, latency, the model's reasoning, the task",
  refused_call: "input the tool's own schema refused: the model's mistake, fed back to it, never metered",
  replay: 'a re-run of an audited call (forge audit replay), with whether the output was the same',
  promotion: 'a version made current: a forge, or a rewrite that passed the regression gate',
  rollback: 'an earlier version made current again (forge tools rollback)',
  archive: 'a tool no longer offered (forge tools archive, or a degraded tool the improve cycle gave up on)',
  pin: 'a tool pinned: never rewritten automatically',
  unpin: 'a pin lifted',
  inherit_cases: "a replacement tool taking over an archived tool's regression cases",
  human_edit: "a person's edit of a version's folder, verified in the sandbox and registered as the next version",
  human_edit_rejected: "a person's edit that failed verification: the last good version stays current",
} as const;
export type AuditKind = keyof typeof AUDIT_KINDS;
export const auditKindSchema = z.enum(Object.keys(AUDIT_KINDS) as [AuditKind, ...AuditKind[]]);

/** Audit kinds that record one call of one tool version with its input, so can be re-run. */
export const REPLAYABLE_KINDS: readonly string[] = ['tool_call', 'replay'] satisfies AuditKind[];

/** Audit ids as people type them: `12` or `#12`. */
export const auditIdSchema = z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER);

export function parseAuditId(text: string | undefined): number | null {
  const m = /^#?(\d{1,15})$/.exec((text ?? '').trim());
  const parsed = auditIdSchema.safeParse(m?.[1]);
  return parsed.success ? parsed.data : null;
}

export const replayRequestSchema = z.object({
  auditId: auditIdSchema,
  sandboxQueue: z.string().min(1),
  requestedBy: z.string().min(1).max(200).default('unknown'),
  /** Replaying a write repeats it: only with a person's explicit consent. */
  allowWrite: z.boolean().default(false),
});
export type ReplayRequest = z.input<typeof replayRequestSchema>;

/** What a replay re-runs, loaded from the audit row and the version's manifest. */
export interface ReplayTarget {
  auditId: number;
  kind: string;
  tool: string;
  version: number;
  input: unknown;
  /** the output as audited (the tool's output, or `{ error }` when the call failed) */
  output: unknown;
  workflowId: string | null;
  taskContext: unknown;
  sideEffect: SideEffect;
  destructive: boolean;
}

/**
 * The task_context of a 'replay' row: the reference to the original entry and the verdict.
 * (audit_log has no column for the reference; the registry's recordAudit writes task_context.)
 */
export const replayContextSchema = z.object({
  replayOf: z.number().int().positive(),
  requestedBy: z.string(),
  ok: z.boolean(),
  same: z.boolean(),
  originalOutputHash: z.string(),
  replayOutputHash: z.string(),
  original: z.object({ workflowId: z.string().nullable(), taskContext: z.unknown() }),
});
export type ReplayContext = z.infer<typeof replayContextSchema>;

export interface ReplayResult {
  workflowId: string;
  auditId: number;
  replayAuditId: number;
  tool: string;
  version: number;
  /** whether the tool ran successfully this time */
  succeeded: boolean;
  reason?: string;
  same: boolean;
  originalOutputHash: string;
  replayOutputHash: string;
  /** a short unified diff of the two outputs (pretty JSON); empty when the same */
  diff: string;
  output: unknown;
  latencyMs: number;
}

/**
 * The output as the audit log stores it. Mirrors recordToolCall (services/catalog/tool-calls.ts), so a
 * replay of a call that failed the same way hashes the same as the original.
 */
export function auditedOutput(run: { ok: boolean; output?: unknown; error?: string }): unknown {
  return run.ok ? run.output : { error: run.error };
}

export class AuditEntryNotFoundError extends ForgeError {
  constructor(id: number) {
    super(`no audit entry #${id}`, 'AUDIT_NOT_FOUND', 'list entries with: forge audit', { id });
  }
}

export class NotReplayableError extends ForgeError {
  constructor(id: number, why: string) {
    super(
      `audit entry #${id} cannot be replayed: ${why}`,
      'AUDIT_NOT_REPLAYABLE',
      `replay an entry of kind ${REPLAYABLE_KINDS.join(' or ')} (forge audit --kind tool_call)`,
      { id },
    );
  }
}

export class ReplayNeedsConsentError extends ForgeError {
  constructor(id: number, tool: string, version: number) {
    super(
      `audit entry #${id} is a call of ${tool}@${version}, which writes: replaying it repeats the write`,
      'REPLAY_NEEDS_CONSENT',
      `if repeating the write is what you want: forge audit replay ${id} --allow-write`,
      { id, tool, version },
    );
  }
}

export class ForgeFrozenError extends ForgeError {
  constructor(detail: string) {
    super(`Forge is frozen: ${detail}`, 'FORGE_FROZEN', 'run forge thaw, then try again');
  }
}
