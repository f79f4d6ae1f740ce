/**
 * A cycle ended from outside its own code: its workflow was terminated (`temporal workflow terminate`,
 * a rollback retiring the worker version it was pinned to), cancelled or timed out, or failed before
 * it could write its ending. The workflow writes its ledger row (tasks, forge_runs, improve_runs,
 * evolve_candidates) only from its own code, so such an end leaves the row open ("running", an evolve
 * candidate "verified" while it waits for consent) until someone compares it with Temporal. This is
 * the pure half of that comparison: which closes count, and what the ledger says about them.
 */

/** The statuses a ledger row takes when Temporal, not the workflow, says how the cycle ended. */
export const OUTSIDE_END_STATUSES = ['terminated', 'cancelled', 'timed-out', 'failed'] as const;
export type OutsideEndStatus = (typeof OUTSIDE_END_STATUSES)[number];

/** What Temporal says of a workflow that is no longer running: its status and whatever explains it. */
export interface ClosedWorkflow {
  /** Temporal's execution status name: TERMINATED, CANCELLED (the SDK's spelling), TIMED_OUT, FAILED, COMPLETED, … */
  status: string;
  /** when it closed */
  closedAt?: Date;
  /** terminate: the reason given; cancel: the cause of the request */
  reason?: string;
  /** who terminated or cancelled it (the client's identity, e.g. `temporal-cli:root@host`) */
  identity?: string;
  /** a failed workflow's failure message */
  failure?: string;
  /** the timeout that ran out, in words (`workflow execution timeout of 1h`) */
  timeout?: string;
}

/** A ledger row's end as the ledger records it: its status and the cause a person reads. */
export interface OutsideEnd {
  status: OutsideEndStatus;
  reason: string;
  closedAt?: Date;
}

const by = (identity: string | undefined) => (identity ? ` by ${identity}` : '');

/**
 * How a closed workflow's ledger row should end, or undefined when there is nothing to record:
 * still running (or continued as new: its next run carries on), or completed (a workflow writes
 * its row before it returns, so a completed one has; it is never overwritten from outside).
 */
export function outsideEnd(w: ClosedWorkflow): OutsideEnd | undefined {
  const at = w.closedAt ? { closedAt: w.closedAt } : {};
  switch (w.status) {
    case 'TERMINATED':
      return { status: 'terminated', reason: `terminated${by(w.identity)}: ${w.reason?.trim() || 'no reason given'}`, ...at };
    case 'CANCELLED':
    case 'CANCELED':
      return { status: 'cancelled', reason: `cancelled${by(w.identity)}${w.reason?.trim() ? `: ${w.reason.trim()}` : ''}`, ...at };
    case 'TIMED_OUT':
      return { status: 'timed-out', reason: `timed out: its ${w.timeout ?? "workflow's timeout"} ran out`, ...at };
    case 'FAILED':
      return { status: 'failed', reason: `its workflow failed: ${w.failure?.trim() || 'no failure message'}`, ...at };
    default:
      return undefined;
  }
}
