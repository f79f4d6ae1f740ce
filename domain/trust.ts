import { z } from 'zod';
import { sideEffectSchema } from './tool.ts';

/**
 * The trust ladder (seed 000). A tool climbs it by succeeding and falls off it by failing:
 *   probationary  its first 10 invocations, and whenever it has not (or no longer) earned more
 *   standard      10+ successful invocations and > 80% success
 *   trusted       50+ invocations and > 95% success
 *   degraded      < 70% success: quarantined, not run until repaired
 * And the approval rule that hangs off it (seed 000, principle 2): reads run immediately; every
 * write, and every destructive call, waits for a person — unless the tool is trusted and has
 * completed that very operation successfully 50+ times. Pure: workflows import it.
 */

export const trustLevelSchema = z.enum(['probationary', 'standard', 'trusted', 'degraded']);
export type TrustLevel = z.infer<typeof trustLevelSchema>;

export const trustStatsSchema = z.object({
  invocations: z.number().int().min(0),
  successes: z.number().int().min(0),
});
export type TrustStats = z.infer<typeof trustStatsSchema>;

/** The ladder's numbers, in one place so a policy change is one edit (and one test run). */
export const trustPolicy = {
  probationInvocations: 10,
  standardSuccesses: 10,
  standardRate: 0.8,
  trustedInvocations: 50,
  trustedRate: 0.95,
  degradedRate: 0.7,
  /**
   * Below this many invocations a low rate is not evidence yet: one failure among a new tool's
   * first three calls is 67%, and quarantining it for that would starve it of the runs it needs.
   * At 5, "< 70%" means at least two failures.
   */
  degradedMinInvocations: 5,
  autonomousRunsOfOperation: 50,
} as const;

export function successRate(stats: TrustStats): number {
  return stats.invocations === 0 ? 0 : stats.successes / stats.invocations;
}

export function trustLevel(stats: TrustStats): TrustLevel {
  const { invocations, successes } = trustStatsSchema.parse(stats);
  if (successes > invocations) throw new RangeError(`successes (${successes}) exceed invocations (${invocations})`);
  const rate = successRate(stats);
  const p = trustPolicy;
  if (invocations >= p.degradedMinInvocations && rate < p.degradedRate) return 'degraded';
  if (invocations >= p.trustedInvocations && rate > p.trustedRate) return 'trusted';
  // The seed counts *successful* invocations for standard, so 10 calls with one failure are not enough.
  if (invocations >= p.probationInvocations && successes >= p.standardSuccesses && rate > p.standardRate) return 'standard';
  return 'probationary';
}

export const toolStatusSchema = z.enum(['active', 'quarantined', 'archived']);
export type ToolStatus = z.infer<typeof toolStatusSchema>;

/** The registry status a level implies: degraded tools are quarantined (not run, queued for repair). */
export function statusForLevel(level: TrustLevel): ToolStatus {
  return level === 'degraded' ? 'quarantined' : 'active';
}

export const approvalInputSchema = z.object({
  level: trustLevelSchema,
  sideEffect: sideEffectSchema,
  destructive: z.boolean().default(false),
  /** successful past runs of this tool doing this same operation */
  successfulRunsOfOperation: z.number().int().min(0).default(0),
  /** the registry status, when the caller has it; anything but active blocks the call */
  status: toolStatusSchema.optional(),
});
export type ApprovalInput = z.input<typeof approvalInputSchema>;

export interface ApprovalDecision {
  /** a person must approve before the call runs */
  needed: boolean;
  /** the call must not run at all (quarantined / archived). `needed` is also true so a caller that
   *  only looks at `needed` still does not run it unattended. */
  blocked: boolean;
  reason: string;
}

export function approvalNeeded(input: ApprovalInput): ApprovalDecision {
  const a = approvalInputSchema.parse(input);
  if (a.level === 'degraded' || (a.status !== undefined && a.status !== 'active')) {
    if (a.status === 'archived')
      return { needed: true, blocked: true, reason: 'tool is archived: an archived tool is no longer run (forge tools ls --all says why)' };
    const why = a.level === 'degraded' ? 'degraded (success rate below 70%)' : a.status;
    return { needed: true, blocked: true, reason: `tool is ${why}: quarantined tools are not run` };
  }
  // A destructive call is a write whatever the manifest's sideEffect says.
  const writes = a.sideEffect === 'write' || a.destructive;
  if (!writes) return { needed: false, blocked: false, reason: 'read: runs immediately' };

  const what = a.destructive ? 'destructive call' : 'write';
  const runs = a.successfulRunsOfOperation;
  if (a.level === 'trusted' && runs >= trustPolicy.autonomousRunsOfOperation) {
    return {
      needed: false,
      blocked: false,
      reason: `${what} by a trusted tool that completed this operation ${runs} times: runs without approval`,
    };
  }
  const lacking =
    a.level === 'trusted'
      ? `trusted, but only ${runs} successful runs of this operation (needs ${trustPolicy.autonomousRunsOfOperation})`
      : `${a.level} tool`;
  return { needed: true, blocked: false, reason: `${what} needs a person's approval: ${lacking}` };
}
