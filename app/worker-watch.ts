import { type Client, defaultPayloadConverter } from '@temporalio/client';
import { LLM_UNREACHABLE, type ModelEndpoint, modelEndpointFrom } from '../domain/llm-retry.ts';

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
