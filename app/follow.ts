import { type QueryDefinition, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { OutsideEndStatus } from '../domain/outside-end.ts';
import { sleep } from '../infra/processes.ts';

/**
 * How a cycle ended: its result, or why its workflow failed, in words — and, when it was ended from
 * outside (terminated, cancelled, timed out), how, so a surface names it instead of a failure.
 */
export type CycleEnd<R> = { ok: true; result: R } | { ok: false; error: string; ended?: OutsideEndStatus };

export interface FollowHooks<P> {
  /** every answer of the progress query (a surface prints the transitions it has not shown yet) */
  onProgress?: (progress: P) => void;
  /** every answer of the progress query as the cycle gave it, before any enrich (to notice that it stopped moving) */
  onAnswer?: (progress: P) => void;
  /** adds to an answer what the cycle's own query cannot tell (a child workflow waiting for a person) */
  enrich?: (progress: P) => Promise<P>;
  /** called once per poll, e.g. to notice that no worker serves the cycle */
  onPoll?: () => Promise<void>;
}

/**
 * Waits for a cycle to close, asking its progress query twice a second meanwhile (unanswered
 * until a worker has picked the workflow up), and once more after it closed: the last transitions
 * happen after the last poll, and a closed workflow still answers queries.
 */
export async function followCycle<R, P>(
  handle: WorkflowHandle,
  query: QueryDefinition<P>,
  hooks: FollowHooks<P> = {},
): Promise<CycleEnd<R>> {
  const result = handle.result() as Promise<R>;
  let done = false;
  result.then(
    () => (done = true),
    () => (done = true),
  );
  while (!done) {
    const progress = await handle.query(query).catch(() => undefined);
    if (progress) hooks.onAnswer?.(progress);
    if (progress && hooks.onProgress) hooks.onProgress(hooks.enrich ? await hooks.enrich(progress) : progress);
    await hooks.onPoll?.();
    await Promise.race([result.catch(() => {}), sleep(500)]);
  }
  const last = await handle.query(query).catch(() => undefined);
  if (last) hooks.onProgress?.(last);
  return settled(result);
}

export async function settled<R>(result: Promise<R>): Promise<CycleEnd<R>> {
  try {
    return { ok: true, result: await result };
  } catch (err) {
    return { ok: false, error: err instanceof WorkflowFailedError ? (err.cause?.message ?? err.message) : (err as Error).message };
  }
}
