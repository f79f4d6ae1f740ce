import { type Client, defaultPayloadConverter, type QueryDefinition, type WorkflowHandle } from '@temporalio/client';
import { ForgeError } from '../domain/errors.ts';
import type { OutsideEnd } from '../domain/outside-end.ts';
import { withArticle, workflowTypeInWords } from '../domain/words.ts';
import type { Session } from './context.ts';
import type { StartedCycle } from './cycles.ts';
import { outsideEndOf } from './reconcile.ts';

/**
 * What showing a cycle by its id needs, whatever the cycle (a task, a forge): its live progress
 * within a bound, what Temporal knows of one no worker has begun, and a handle to follow it by.
 * `forge tasks show` and `forge forges show` read the same way because they read through this.
 */

/** How long showing a running cycle waits for its progress query (no worker: no answer). */
const QUERY_WAIT_MS = 3000;

/**
 * The cycle's progress query answer, or undefined when no worker answers within QUERY_WAIT_MS: a
 * query to a workflow no worker serves waits as long as the call's deadline, so it is given one
 * (the call itself is cancelled then, rather than left pending).
 */
export async function progressWithin<P>(handle: WorkflowHandle, query: QueryDefinition<P>, ms = QUERY_WAIT_MS): Promise<P | undefined> {
  return handle.client.withDeadline(Date.now() + ms, () => handle.query(query)).catch(() => undefined);
}

/** A cycle Temporal has but whose ledger row no worker has written yet: its input, and how it ended if it did. */
export interface UnbegunCycle {
  /** the workflow's first argument, from its start event (undefined when it cannot be read) */
  input: unknown;
  /** how it ended from outside, when it ended before any worker began it */
  outside?: OutsideEnd;
}

/**
 * The cycle by its id when its ledger has no row: Temporal's word on it, if it is a workflow of
 * `workflowType`. No workflow at all is `notFound`; another kind of workflow is refused, naming
 * what it is and where any workflow is shown.
 */
export async function unbegunCycle(
  session: Session,
  workflowId: string,
  expect: { workflowType: string; what: string; listedBy: string; notFound: () => ForgeError },
): Promise<UnbegunCycle> {
  const client = await session.temporal();
  const described = await client.workflow
    .getHandle(workflowId)
    .describe()
    .catch(() => undefined);
  if (!described) throw expect.notFound();
  if (described.type !== expect.workflowType) throw notACycleOf(workflowId, described.type, expect);
  const outside = await outsideEndOf(session, workflowId).catch(() => undefined);
  const input = await startedInput(client, workflowId).catch(() => undefined);
  return { input, ...(outside ? { outside } : {}) };
}

/**
 * The command that shows a cycle of this workflow type by its id, where a surface has one: what a
 * refusal of an id of another kind of cycle names.
 */
export function commandShowing(workflowType: string, workflowId: string): string | undefined {
  switch (workflowType) {
    case 'taskWorkflow':
      return `forge tasks show ${workflowId}`;
    case 'forgeWorkflow':
      return `forge forges show ${workflowId}`;
    case 'improveWorkflow':
      return `forge improve show ${workflowId}`;
    case 'evolveWorkflow':
      // shown by its candidate's id, which the listing gives
      return 'forge evolve ls';
    default:
      return undefined;
  }
}

/** An id that names another kind of workflow than the one asked for: what it is, and the command that shows it. */
export function notACycleOf(workflowId: string, workflowType: string, expect: { what: string; listedBy: string }): ForgeError {
  const shows = commandShowing(workflowType, workflowId);
  return new ForgeError(
    `${workflowId} is ${workflowTypeInWords(workflowType)}, not ${withArticle(expect.what)}`,
    `NOT_${withArticle(expect.what).toUpperCase().replace(/\W+/g, '_')}`,
    shows
      ? `${shows} shows it; ${expect.listedBy} lists ${expect.what}s`
      : `${expect.listedBy} lists ${expect.what}s; the Temporal UI shows any workflow`,
    { workflowId, workflowType },
  );
}

/** A workflow's first argument, from the first event of its history. */
async function startedInput(client: Client, workflowId: string): Promise<unknown> {
  const res = await client.workflowService.getWorkflowExecutionHistory({
    namespace: client.options.namespace,
    execution: { workflowId },
    maximumPageSize: 1,
  });
  const payload = res.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  return payload ? defaultPayloadConverter.fromPayload<unknown>(payload) : undefined;
}

/** A string field of a cycle's input (a task's words, a forge's need), when the input has one. */
export function inputText(input: unknown, field: string): string | undefined {
  const value = input && typeof input === 'object' ? (input as Record<string, unknown>)[field] : undefined;
  return typeof value === 'string' ? value : undefined;
}

/** A cycle to follow by its id (show <id> --wait): from its first run on, as following one just started does. */
export async function cycleToFollow(session: Session, workflowId: string, uiUrl: string | null): Promise<StartedCycle> {
  const described = await (await session.temporal()).workflow.getHandle(workflowId).describe();
  return { workflowId, runId: described.raw.workflowExecutionInfo?.firstRunId || described.runId, uiUrl };
}
