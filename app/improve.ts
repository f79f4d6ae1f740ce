import type { QueryDefinition } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { ForgeError, InvalidInputError } from '../domain/errors.ts';
import { type ImproveOutcome, improveRequestSchema } from '../domain/improve.ts';
import { ToolNotFoundError } from '../services/catalog/store.ts';
import { improveProgressQuery } from '../workflows/definitions.ts';
import { improveWorkflowId } from '../workflows/improve.ts';
import type { Session } from './context.ts';
import { cycleHandle, type StartedCycle, startCycle, workflowUiUrl } from './cycles.ts';
import { withDb } from './db.ts';
import { type CycleEnd, followCycle } from './follow.ts';
import { endedFromOutside } from './reconcile.ts';
import { cycleMoved, type StallHooks, stallWatch } from './worker-watch.ts';

export type ImproveProgressAnswer = typeof improveProgressQuery extends QueryDefinition<infer P> ? P : never;

export class ImproveAlreadyRunningError extends ForgeError {
  constructor(tool: string, workflowId: string, uiUrl: string | null) {
    super(
      `an improve cycle for ${tool} is already running (${workflowId})`,
      'IMPROVE_RUNNING',
      `wait for it to finish, or watch it${uiUrl ? ` at ${uiUrl}` : ` in the Temporal UI (workflow ${workflowId})`}`,
      { tool, workflowId },
    );
  }
}

/** `forge improve` on an archived tool: no longer offered or run, so there is nothing to improve. */
export class ImproveArchivedError extends ForgeError {
  constructor(tool: string, reason: string | null, replacedBy: string | null) {
    super(
      `${tool} is archived${reason ? ` (${reason})` : ''}: it is no longer offered or run, so there is nothing to improve`,
      'TOOL_ARCHIVED',
      replacedBy
        ? `improve its replacement: forge improve ${replacedBy}`
        : 'forge a replacement with: forge forge "<what the tool must do>"',
      { tool },
    );
  }
}

/** Starts a tool's improve cycle by hand (pinned tools included: a person asked). One per tool at a time. */
export async function startImprove(session: Session, ask: { tool: string; reason?: string; by?: string }): Promise<StartedCycle> {
  const parsed = improveRequestSchema.safeParse({
    tool: ask.tool,
    trigger: 'manual',
    reason: ask.reason,
    requestedBy: ask.by,
    sandboxQueue: session.cfg.FORGE_SANDBOX_QUEUE,
  });
  if (!parsed.success) {
    throw new InvalidInputError(
      'improve request',
      parsed.error.issues.map((i) => `${i.path.join('.') || 'tool'}: ${i.message}`).join('; '),
    );
  }
  // A name the catalog does not hold fails here, in words, not as a failed workflow.
  const known = await withDb(
    session.cfg,
    (sql) =>
      sql<{ status: string; archive_reason: string | null; replaced_by: string | null }[]>`
        select status, archive_reason, replaced_by from tools where name = ${ask.tool}`,
  );
  if (!known[0]) throw new ToolNotFoundError(ask.tool);
  // Refused before a workflow starts, as forge tools rollback refuses it: the cycle would only skip.
  if (known[0].status === 'archived') throw new ImproveArchivedError(ask.tool, known[0].archive_reason, known[0].replaced_by);
  try {
    return await startCycle(session, 'improve', [parsed.data], { toolName: ask.tool });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      const id = improveWorkflowId(ask.tool);
      throw new ImproveAlreadyRunningError(ask.tool, id, workflowUiUrl(session.cfg, id));
    }
    throw err;
  }
}

/** What a surface following an improve cycle is told: each progress answer, and (stalled) a queue nobody serves or a model nobody answers at. */
export interface ImproveFollowHooks extends StallHooks {
  onProgress?: (progress: ImproveProgressAnswer) => void;
}

/**
 * Follows an improve cycle to its end, reporting its progress and what holds it on the way; one
 * ended from outside (terminated, cancelled, timed out) says how, and its row records it.
 */
export async function followImprove(
  session: Session,
  started: StartedCycle,
  hooks: ImproveFollowHooks = {},
): Promise<CycleEnd<ImproveOutcome>> {
  const handle = await cycleHandle(session, 'improve', started);
  const watch = stallWatch<ImproveProgressAnswer>(session, started, hooks, cycleMoved);
  const end = await followCycle<ImproveOutcome, ImproveProgressAnswer>(handle, improveProgressQuery, {
    onProgress: hooks.onProgress,
    ...watch,
  });
  // The tool's next cycle reuses the workflow id: this one is its started run.
  return end.ok ? end : endedFromOutside(session, started, end);
}

/** The regression gate's stored report, as surfaces read it (forge tools history). */
export { type GateReport, gateReportSchema } from '../domain/improve.ts';
