import type { WorkflowExecutionInfo } from '@temporalio/client';
import type { ForgeConfig } from '../domain/config.ts';
import { ForgeError } from '../domain/errors.ts';
import { CYCLE_KIND, TOOL_NAME } from '../domain/search-attributes.ts';
import {
  curateWorkflow,
  deployWorkflow,
  evolveWorkflow,
  forgeWorkflow,
  improveWorkflow,
  replayWorkflow,
  taskWorkflow,
  toolCallWorkflow,
} from '../workflows/index.ts';
import type { Session } from './context.ts';
import { workflowUiUrl } from './cycles.ts';

/**
 * Forge's recent cycles, read from Temporal's visibility store: what the dashboard's Cycles panel
 * lists. A cycle is found by its ForgeCycleKind search attribute, or by its workflow type when it
 * has none (an evolve cycle a curation started, a deploy an evolve cycle started, a workflow
 * started by hand or by a test), and only on Forge's own task queue, so a candidate's replays on
 * its throwaway queues and another Forge sharing the namespace stay out.
 */

/** Each kind of cycle and its workflow type (by the function's name, so a rename cannot drift). */
const WORKFLOW_TYPE = {
  task: taskWorkflow.name,
  forge: forgeWorkflow.name,
  improve: improveWorkflow.name,
  evolve: evolveWorkflow.name,
  curate: curateWorkflow.name,
  deploy: deployWorkflow.name,
  call: toolCallWorkflow.name,
  replay: replayWorkflow.name,
} as const;

export type ListedCycleKind = keyof typeof WORKFLOW_TYPE;
export const CYCLE_KINDS = Object.keys(WORKFLOW_TYPE) as ListedCycleKind[];
export const isCycleKind = (k: string): k is ListedCycleKind => Object.hasOwn(WORKFLOW_TYPE, k);

const KIND_OF_TYPE: Record<string, ListedCycleKind> = Object.fromEntries(
  Object.entries(WORKFLOW_TYPE).map(([kind, type]) => [type, kind as ListedCycleKind]),
);

export interface CycleSummary {
  kind: ListedCycleKind | string;
  workflowId: string;
  runId: string;
  workflowType: string;
  /** Temporal's execution status, lower case: running, completed, failed, cancelled, terminated, timed_out, continued_as_new */
  status: string;
  startedAt: string;
  closedAt: string | null;
  /** close − start; for a running cycle, how long it has run so far (at the time of the read) */
  durationMs: number;
  /** ForgeToolName, when the cycle is about one tool */
  tool: string | null;
  /** the cycle that started this one (a task's forge, an evolve's deploy) */
  parentWorkflowId: string | null;
  uiUrl: string | null;
}

export const MAX_CYCLES = 200;

const quote = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
const list = (xs: readonly string[]) => `(${xs.map(quote).join(', ')})`;

/**
 * The visibility query for Forge's cycles, of one kind or all. `byAttribute: false` leaves the
 * search attribute out, for a cluster where nobody registered it (the query would be refused).
 */
export function cyclesQuery(cfg: Pick<ForgeConfig, 'FORGE_TASK_QUEUE'>, kind?: ListedCycleKind, byAttribute = true): string {
  const kinds = kind ? [kind] : CYCLE_KINDS;
  const types = kinds.map((k) => WORKFLOW_TYPE[k]);
  const byType = types.length === 1 ? `WorkflowType = ${quote(types[0]!)}` : `WorkflowType IN ${list(types)}`;
  const byKind = kinds.length === 1 ? `${CYCLE_KIND.name} = ${quote(kinds[0]!)}` : `${CYCLE_KIND.name} IN ${list(kinds)}`;
  return `TaskQueue = ${quote(cfg.FORGE_TASK_QUEUE)} AND ${byAttribute ? `(${byKind} OR ${byType})` : byType}`;
}

const unknownAttribute = (err: unknown) => new RegExp(CYCLE_KIND.name).test(String((err as Error)?.message ?? err));

function summarize(cfg: ForgeConfig, info: WorkflowExecutionInfo, now: number): CycleSummary {
  const tagged = info.typedSearchAttributes.get(CYCLE_KIND);
  const started = info.startTime.getTime();
  const closed = info.closeTime?.getTime();
  return {
    kind: tagged ?? KIND_OF_TYPE[info.type] ?? info.type,
    workflowId: info.workflowId,
    runId: info.runId,
    workflowType: info.type,
    status: info.status.name.toLowerCase(),
    startedAt: info.startTime.toISOString(),
    closedAt: info.closeTime?.toISOString() ?? null,
    durationMs: Math.max(0, (closed ?? now) - started),
    tool: info.typedSearchAttributes.get(TOOL_NAME) ?? null,
    parentWorkflowId: info.parentExecution?.workflowId ?? null,
    uiUrl: workflowUiUrl(cfg, info.workflowId, info.runId),
  };
}

/** Runs `read` with the full query, and again by workflow type alone if the cluster does not know ForgeCycleKind. */
async function withQuery<T>(cfg: ForgeConfig, kind: ListedCycleKind | undefined, read: (query: string) => Promise<T>): Promise<T> {
  try {
    return await read(cyclesQuery(cfg, kind));
  } catch (err) {
    if (!unknownAttribute(err)) throw err;
    return read(cyclesQuery(cfg, kind, false));
  }
}

/** Forge's most recent cycles, newest first (by start), of one kind or all; at most `limit`. */
export async function listCycles(
  session: Session,
  opts: { kind?: ListedCycleKind | undefined; limit?: number } = {},
): Promise<CycleSummary[]> {
  const limit = opts.limit ?? 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_CYCLES)
    throw new ForgeError(`limit ${limit} is out of range`, 'BAD_LIMIT', `ask for 1 to ${MAX_CYCLES} cycles`);
  const client = await session.temporal();
  const now = Date.now();
  return withQuery(session.cfg, opts.kind, async (query) => {
    // The SQL visibility store lists running executions first, then closed ones by close time,
    // newest first; it cannot sort by start time, so the page of the newest is sorted here.
    const found: CycleSummary[] = [];
    for await (const info of client.workflow.list({ query, pageSize: limit })) {
      found.push(summarize(session.cfg, info, now));
      if (found.length >= limit) break;
    }
    return found.sort((a, b) => b.startedAt.localeCompare(a.startedAt) || a.workflowId.localeCompare(b.workflowId));
  });
}

/**
 * A mark that changes when the list does: how many cycles there are, and how many in each status
 * (a start adds one; an end moves one out of running). One count a poll, not a listing.
 */
export async function cyclesMark(session: Session): Promise<string> {
  const client = await session.temporal();
  return withQuery(session.cfg, undefined, async (query) => {
    const counted = await client.workflow.count(`${query} GROUP BY ExecutionStatus`);
    const groups = counted.groups.map((g) => `${g.groupValues.map(String).join('/')}=${g.count}`).sort();
    return `${counted.count}|${groups.join(',')}`;
  });
}
