import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { ForgeFrozenError, ReplayNeedsConsentError, type ReplayResult, type ReplayTarget, replayRequestSchema } from '../domain/audit.ts';
import type { ForgeConfig } from '../domain/config.ts';
import { ForgeError, FROZEN_FAILURE } from '../domain/errors.ts';
import { replayTarget } from '../services/catalog/audit.ts';
import { createKillSwitch } from '../services/control/kill-switch.ts';
import type { Session } from './context.ts';
import { cycleHandle, type StartedCycle, startCycle } from './cycles.ts';
import { withDb } from './db.ts';

export interface ReplayAsk {
  auditId: number;
  /** a person's consent to repeat a write */
  allowWrite: boolean;
  requestedBy: string;
}

export interface ReplayHooks {
  /** once the replay workflow has started, with what it re-runs */
  onStarted?: (started: StartedCycle, target: ReplayTarget) => void;
  /** once, when the replay has waited 5 s and no worker polls a queue it needs */
  onNoWorker?: (taskQueue: string) => void;
}

/**
 * Checks what can be checked without starting anything: the kill switch, and that the entry is a
 * replayable call (and consented to, if it writes). The workflow checks again: it is the authority.
 */
async function precheck(cfg: ForgeConfig, id: number, allowWrite: boolean): Promise<ReplayTarget> {
  return withDb(cfg, async (sql) => {
    const state = await createKillSwitch(sql).state();
    if (state.frozen)
      throw new ForgeFrozenError(
        `replay of #${id} refused${state.by ? ` (frozen by ${state.by}${state.since ? ` since ${state.since}` : ''})` : ''}`,
      );
    const target = await replayTarget(sql, id);
    if (target.sideEffect === 'write' && !allowWrite) throw new ReplayNeedsConsentError(id, target.tool, target.version);
    return target;
  });
}

/** A failed replay workflow, as an error a person can act on. */
function replayFailure(err: WorkflowFailedError, id: number, uiUrl: string | null): ForgeError {
  const cause = err.cause;
  const message = cause?.message ?? err.message;
  if (cause instanceof ApplicationFailure && cause.type === FROZEN_FAILURE) return new ForgeFrozenError(message);
  const fix = cause instanceof ApplicationFailure ? (cause.details?.[0] as { fix?: string } | undefined)?.fix : undefined;
  return new ForgeError(
    `replay of #${id} failed: ${message}`,
    cause instanceof ApplicationFailure && cause.type ? cause.type : 'REPLAY_FAILED',
    fix ?? (uiUrl ? `see the workflow: ${uiUrl}` : 'see the replay workflow in the Temporal UI'),
  );
}

/**
 * Re-runs an audited tool call in the sandbox (same tool version, same input) as a replay
 * workflow, and waits for its verdict: whether the output is the same, and the diff if not.
 */
export async function replayAuditEntry(
  session: Session,
  ask: ReplayAsk,
  hooks: ReplayHooks = {},
): Promise<{ started: StartedCycle; result: ReplayResult }> {
  const { cfg } = session;
  const id = ask.auditId;
  const target = await precheck(cfg, id, ask.allowWrite);
  const request = replayRequestSchema.parse({
    auditId: id,
    sandboxQueue: cfg.FORGE_SANDBOX_QUEUE,
    requestedBy: ask.requestedBy,
    allowWrite: ask.allowWrite,
  });
  const started = await startCycle(session, 'replay', [request], { qualifier: id, toolName: target.tool });
  hooks.onStarted?.(started, target);
  const handle = await cycleHandle(session, 'replay', started);
  const client = await session.temporal();
  // Warn once when nothing will pick the replay up, instead of waiting silently.
  const warning = setTimeout(() => {
    // app/stack.ts brings dockerode and esbuild with it: loaded only when the replay has waited this long.
    void import('./stack.ts')
      .then(({ hasPollers }) =>
        Promise.all([hasPollers(client, cfg.FORGE_TASK_QUEUE, 'workflow'), hasPollers(client, cfg.FORGE_SANDBOX_QUEUE, 'activity')]),
      )
      .then(
        ([control, sandbox]) => {
          if (!control || !sandbox) hooks.onNoWorker?.(!control ? cfg.FORGE_TASK_QUEUE : cfg.FORGE_SANDBOX_QUEUE);
        },
        () => {},
      );
  }, 5000);
  try {
    return { started, result: await handle.result() };
  } catch (err) {
    throw err instanceof WorkflowFailedError ? replayFailure(err, id, started.uiUrl) : err;
  } finally {
    clearTimeout(warning);
  }
}
