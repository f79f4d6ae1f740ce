import { type Client, defaultPayloadConverter } from '@temporalio/client';
import type { ComponentDownError } from '../domain/errors.ts';
import { LLM_UNREACHABLE, type ModelEndpoint, modelEndpointFrom } from '../domain/llm-retry.ts';
import type { Session } from './context.ts';
import { type FollowHooks, modelDownError } from './follow.ts';

/**
 * Noticing, while a person waits on a cycle, that it cannot move because no worker serves one of
 * the queues it needs — the control queue (its workflow, model calls, bookkeeping) or the sandbox
 * queue (tool calls and forge verifications, in Docker) — so the wait says what is wrong and what
 * fixes it instead of sitting silent.
 */
export interface WatchedQueue {
  name: string;
  /** control: workflow tasks are polled there; sandbox: activity tasks (Docker jobs) */
  role: 'control' | 'sandbox';
}

/**
 * Temporal lists a worker's pollers for minutes after it died; a live one polls again at least
 * every minute (the server's long poll), so one silent for longer than this is taken for gone.
 */
const POLLER_SILENT_MS = 90_000;

const timestampMs = (t: { seconds?: unknown; nanos?: number | null } | null | undefined): number | undefined =>
  t?.seconds == null ? undefined : Number(t.seconds) * 1000 + Math.floor((t.nanos ?? 0) / 1e6);

/** Whether a worker that is alive polls the queue (Temporal's DescribeTaskQueue pollers, the silent ones left out). */
export async function hasLivePollers(client: Client, queue: WatchedQueue, now = Date.now()): Promise<boolean> {
  const res = await client.workflowService.describeTaskQueue({
    namespace: client.options.namespace,
    taskQueue: { name: queue.name },
    taskQueueType: queue.role === 'control' ? 1 : 2, // 1 = workflow, 2 = activity
  });
  return (res.pollers ?? []).some((p) => {
    const at = timestampMs(p.lastAccessTime);
    return at === undefined || now - at < POLLER_SILENT_MS;
  });
}

/** PENDING_ACTIVITY_STATE_SCHEDULED: waiting for a worker to take it. */
const SCHEDULED = 1;

/**
 * Whether the workflow, or a child it waits on (a task's forge, a forge's repair, two levels
 * down), has an activity scheduled that no worker has taken: what a cycle waiting on the sandbox
 * queue looks like from outside (Temporal's describe names no queue; the control queue's own
 * activities are taken at once while its worker runs).
 */
export async function awaitsUntakenActivity(client: Client, workflowId: string, runId?: string, depth = 2): Promise<boolean> {
  const described = await client.workflow.getHandle(workflowId, runId).describe();
  if ((described.raw.pendingActivities ?? []).some((a) => a.state === SCHEDULED)) return true;
  if (depth === 0) return false;
  for (const child of described.raw.pendingChildren ?? []) {
    if (child.workflowId && (await awaitsUntakenActivity(client, child.workflowId, child.runId ?? undefined, depth - 1))) return true;
  }
  return false;
}

/**
 * The model endpoint the workflow's model call keeps failing to reach, while Temporal retries it
 * (the pending activity's last failure, LlmUnreachable): a wait can say the model is down at the
 * first failed attempt rather than when the retries run out.
 */
export async function unreachableModelRetrying(
  client: Client,
  workflowId: string,
): Promise<{ endpoint: ModelEndpoint; attempt: number } | undefined> {
  const described = await client.workflow.getHandle(workflowId).describe();
  for (const a of described.raw.pendingActivities ?? []) {
    const info = a.lastFailure?.applicationFailureInfo;
    if (info?.type !== LLM_UNREACHABLE) continue;
    const payload = info.details?.payloads?.[0];
    return { endpoint: modelEndpointFrom(payload ? defaultPayloadConverter.fromPayload(payload) : undefined), attempt: a.attempt ?? 1 };
  }
  return undefined;
}

export interface NoWorkerWatch {
  /** every answer of the cycle's progress query: `key` changes exactly when the cycle moved */
  progressed(key: string): void;
  /** once per follow poll: when the cycle has not moved for a while, asks who polls its queues */
  poll(): Promise<void>;
}

/**
 * Watches a followed cycle: once it has not moved for `stallMs`, it asks (at most every `stallMs`)
 * whether each queue it waits on has a live worker, and reports each queue that has none, once. A cycle that
 * moves is never asked about, so a long but healthy wait costs nothing; a failed question (Temporal
 * briefly away) reports nothing.
 */
export function noWorkerWatch(opts: {
  queues: WatchedQueue[];
  livePollers: (queue: WatchedQueue) => Promise<boolean>;
  /** whether the cycle needs the queue now (a sandbox queue: only while a job waits for it); default: always */
  waitsOn?: (queue: WatchedQueue) => Promise<boolean>;
  onMissing: (queue: WatchedQueue) => void;
  /** also asked while stalled, at the same pace (what else may hold the cycle: the model not answering) */
  whileStalled?: () => Promise<void>;
  stallMs?: number;
  now?: () => number;
}): NoWorkerWatch {
  const now = opts.now ?? Date.now;
  const stallMs = opts.stallMs ?? 5000;
  let lastKey: string | undefined;
  let movedAt = now();
  let askedAt = Number.NEGATIVE_INFINITY;
  const reported = new Set<string>();
  return {
    progressed(key) {
      if (key === lastKey) return;
      lastKey = key;
      movedAt = now();
    },
    async poll() {
      const t = now();
      if (t - movedAt < stallMs || t - askedAt < stallMs) return;
      askedAt = t;
      for (const queue of opts.queues) {
        if (reported.has(queue.name)) continue;
        if (opts.waitsOn && !(await opts.waitsOn(queue).catch(() => false))) continue;
        if (await opts.livePollers(queue).catch(() => true)) continue;
        reported.add(queue.name);
        opts.onMissing(queue);
      }
      await opts.whileStalled?.().catch(() => undefined);
    },
  };
}

/**
 * When a forge or improve cycle moved: a transition, a verification or rewrite finished, or a new
 * wait for a person (a task also counts its calls: its own key).
 */
export const cycleMoved = (p: { phase: string; history: unknown[]; attempts?: unknown[]; pendingApproval?: string }): string =>
  `${p.phase}:${p.history.length}:${p.attempts?.length ?? 0}:${p.pendingApproval ?? ''}`;

/** What a surface is told while it follows a cycle that cannot move (each at most once). */
export interface StallHooks {
  /**
   * once per queue, when the cycle has not moved for 5 s and no live worker polls that queue (the
   * control queue, or the sandbox queue where its tool calls and verifications run); `phase` is
   * where it waits (undefined: no worker has begun it)
   */
  onNoWorker?: (missing: WatchedQueue & { phase?: string }) => void;
  /** once, when the cycle has not moved for 5 s and its model call keeps failing to connect (Temporal retrying it) */
  onModelUnreachable?: (down: ComponentDownError) => void;
}

/**
 * The watch a follower of any cycle (a task, a forge, an improve cycle) plugs into followCycle:
 * every progress answer (as `keyOf` reads it: a key that changes exactly when the cycle moved)
 * resets its clock, and every poll of a cycle that stopped moving asks who serves its queues and
 * whether its model call keeps failing, telling `hooks` once. The sandbox queue counts only while
 * a job of the cycle waits there: a cycle that thinks for a while without it is not stuck.
 */
export function stallWatch<P extends { phase: string }>(
  session: Session,
  /** its latest run is the one watched (an improve id's next cycle cannot start while this one runs) */
  cycle: { workflowId: string },
  hooks: StallHooks,
  keyOf: (progress: P) => string,
): Required<Pick<FollowHooks<P>, 'onAnswer' | 'onPoll'>> {
  const { cfg } = session;
  let phase: string | undefined;
  let modelWarned = false;
  const client = () => session.temporal();
  const watch = noWorkerWatch({
    queues: [
      { name: cfg.FORGE_TASK_QUEUE, role: 'control' },
      { name: cfg.FORGE_SANDBOX_QUEUE, role: 'sandbox' },
    ],
    livePollers: async (queue) => hasLivePollers(await client(), queue),
    waitsOn: async (queue) => queue.role === 'control' || awaitsUntakenActivity(await client(), cycle.workflowId),
    onMissing: (queue) => hooks.onNoWorker?.({ ...queue, phase }),
    async whileStalled() {
      if (modelWarned || !hooks.onModelUnreachable) return;
      const retrying = await unreachableModelRetrying(await client(), cycle.workflowId);
      if (!retrying) return;
      modelWarned = true;
      const waits = `${cycle.workflowId} waits while Temporal retries its model call (attempt ${retrying.attempt})`;
      hooks.onModelUnreachable(modelDownError(cfg, cycle.workflowId, retrying.endpoint, waits));
    },
  });
  return {
    onAnswer(progress) {
      phase = progress.phase;
      watch.progressed(keyOf(progress));
    },
    onPoll: () => watch.poll(),
  };
}
