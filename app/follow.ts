import { ApplicationFailure, type QueryDefinition, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { ForgeConfig } from '../domain/config.ts';
import { ComponentDownError } from '../domain/errors.ts';
import { LLM_UNREACHABLE, type ModelEndpoint, modelEndpointFrom } from '../domain/llm-retry.ts';
import type { OutsideEndStatus } from '../domain/outside-end.ts';
import { sleep } from '../infra/processes.ts';
import { progressWithin } from './cycle-view.ts';

/**
 * How a cycle ended: its result, or why its workflow failed, in words — and, when it was ended from
 * outside (terminated, cancelled, timed out), how, so a surface names it instead of a failure.
 */
export type CycleEnd<R> =
  | { ok: true; result: R }
  | {
      ok: false;
      error: string;
      ended?: OutsideEndStatus;
      /** the model endpoint the cycle's worker could not reach: a component down, not the cycle's own failure */
      modelUnreachable?: ModelEndpoint;
    };

/**
 * The model endpoint a workflow failure could not reach, when its cause chain holds a model call
 * that failed to connect (after Temporal's retries): the worker's own endpoint, carried in the
 * failure's details, since the CLI's settings need not be the worker's.
 */
export function unreachableModel(err: unknown): ModelEndpoint | undefined {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e instanceof ApplicationFailure && e.type === LLM_UNREACHABLE) return modelEndpointFrom(e.details?.[0]);
  }
  return undefined;
}

/** The component a failed cycle's end says is down (the model), as its error; undefined for a failure of the cycle's own. */
export function componentDownIn(cfg: ForgeConfig, workflowId: string, end: CycleEnd<unknown>): ComponentDownError | undefined {
  return !end.ok && end.modelUnreachable ? modelDownError(cfg, workflowId, end.modelUnreachable) : undefined;
}

/**
 * A cycle that failed because the model does not answer, as the component-down error it is: what
 * does not answer, and the fix — `forge up` for the scripted model it starts, else the setting that
 * names the endpoint.
 */
export function modelDownError(
  cfg: ForgeConfig,
  workflowId: string,
  model: ModelEndpoint,
  /** what it did to the cycle, when not that it failed (a wait that sees Temporal retrying the call) */
  outcome = `${workflowId} failed at a model call after its retries`,
): ComponentDownError {
  // The scripted model forge up runs (services/llm/endpoint.ts), not one ANTHROPIC_BASE_URL names.
  const own = model.scripted && model.url === `http://127.0.0.1:${cfg.FORGE_SCRIPTED_MODEL_PORT}`;
  if (own)
    return new ComponentDownError(
      'the model',
      `nothing answers at ${model.url}, where Forge's scripted model runs (no ANTHROPIC_API_KEY); ${outcome}`,
      'forge up (starts the scripted model); forge doctor says which component is down',
    );
  if (!model.scripted && model.url === 'https://api.anthropic.com')
    return new ComponentDownError(
      'the model',
      `the worker cannot reach the Anthropic API at ${model.url}; ${outcome}`,
      "check this machine's network (or ANTHROPIC_BASE_URL for another endpoint), then run the task again",
    );
  return new ComponentDownError(
    'the model',
    `nothing answers at ${model.url} (the worker's ANTHROPIC_BASE_URL); ${outcome}`,
    `start the model server at ${model.url}, or set ANTHROPIC_BASE_URL to one that answers (unset, without ANTHROPIC_API_KEY: forge up's scripted model) and restart the worker: forge down && forge up`,
  );
}

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
 * happen after the last poll, and a closed workflow still answers queries. Each query is bounded
 * (progressWithin): one no worker answers would otherwise hold the loop, and with it `onPoll`,
 * which is what notices that no worker serves the cycle.
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
    const progress = await progressWithin(handle, query);
    if (progress) hooks.onAnswer?.(progress);
    if (progress && hooks.onProgress) hooks.onProgress(hooks.enrich ? await hooks.enrich(progress) : progress);
    await hooks.onPoll?.();
    await Promise.race([result.catch(() => {}), sleep(500)]);
  }
  // A closed workflow is replayed from its whole history to answer: given longer than a poll.
  const last = await progressWithin(handle, query, 10_000);
  if (last) hooks.onProgress?.(last);
  return settled(result);
}

export async function settled<R>(result: Promise<R>): Promise<CycleEnd<R>> {
  try {
    return { ok: true, result: await result };
  } catch (err) {
    const error = err instanceof WorkflowFailedError ? (err.cause?.message ?? err.message) : (err as Error).message;
    const model = unreachableModel(err);
    return { ok: false, error, ...(model ? { modelUnreachable: model } : {}) };
  }
}
