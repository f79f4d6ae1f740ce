import {
  type Client,
  ScheduleAlreadyRunning,
  type ScheduleDescription,
  ScheduleNotFoundError,
  type ScheduleOptionsStartWorkflowAction,
  ScheduleOverlapPolicy,
  type ScheduleUpdateOptions,
} from '@temporalio/client';
import type { ForgeConfig } from '../domain/config.ts';
import { ForgeError } from '../domain/errors.ts';
import type { CurateInput } from '../domain/evidence.ts';
import { CYCLE_KIND } from '../domain/search-attributes.ts';
import { sleep } from '../infra/processes.ts';
import { temporalClient, temporalEndpoint } from '../infra/temporal.ts';
import { curateWorkflow } from '../workflows/index.ts';
import type { Session } from './context.ts';
import { workflowUiUrl } from './cycles.ts';

/**
 * Forge's Temporal Schedules (issue 11): the nightly curation of failure evidence, which hands each
 * batch to an evolve cycle. `forge up` creates or updates it from the configuration; `forge schedule`
 * lists, pauses, unpauses and triggers it. It shows on the Temporal UI's Schedules page.
 */
export const CURATION_SCHEDULE_ID = 'forge-nightly-curation';
export const FORGE_SCHEDULES = [CURATION_SCHEDULE_ID] as const;

/** A missed night is run late only within this window (a server down at 03:00 and back by 03:59); older ones are skipped. */
const CATCHUP_WINDOW_MS = 3_600_000;
/** A curation takes seconds; a run stuck longer must not hold the schedule (overlap SKIP) for ever. */
const RUN_TIMEOUT = '1 hour';

type CurationAction = ScheduleOptionsStartWorkflowAction<typeof curateWorkflow>;

/** What the schedule should be, from the configuration; the cron line and time zone also ride in the action's memo, so a change is seen. */
function desired(cfg: ForgeConfig): Omit<ScheduleUpdateOptions<CurationAction>, 'state'> {
  const args: [CurateInput] = [
    { sandboxQueue: cfg.FORGE_SANDBOX_QUEUE, windowHours: cfg.FORGE_CURATION_WINDOW_HOURS, maxBatches: cfg.FORGE_EVOLVE_MAX_BATCHES },
  ];
  return {
    spec: { cronExpressions: [cfg.FORGE_CURATION_CRON], timezone: cfg.FORGE_CURATION_TZ },
    action: {
      type: 'startWorkflow',
      workflowType: curateWorkflow,
      // The schedule appends the scheduled time: forge-nightly-curation-2026-11-30T03:00:00Z.
      workflowId: CURATION_SCHEDULE_ID,
      taskQueue: cfg.FORGE_TASK_QUEUE,
      args,
      workflowRunTimeout: RUN_TIMEOUT,
      memo: { forgeSchedule: { cron: cfg.FORGE_CURATION_CRON, timeZone: cfg.FORGE_CURATION_TZ } },
      typedSearchAttributes: [{ key: CYCLE_KIND, value: 'curate' }],
    },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: CATCHUP_WINDOW_MS, pauseOnFailure: false },
  };
}

/** The parts `forge up` owns, as comparable JSON: the spec (through the memo), the action and the policies. */
function fingerprint(d: {
  action: { workflowType: unknown; taskQueue?: string; args?: unknown; memo?: unknown };
  policies?: { overlap?: string; catchupWindow?: unknown };
}): string {
  const type = typeof d.action.workflowType === 'function' ? d.action.workflowType.name : d.action.workflowType;
  return JSON.stringify([type, d.action.taskQueue, d.action.args, d.action.memo, d.policies?.overlap, d.policies?.catchupWindow]);
}

/**
 * Creates the curation schedule, or brings an existing one in line with the configuration. A
 * schedule a person paused stays paused (its state is theirs, not the configuration's).
 */
export async function ensureCurationSchedule(
  cfg: ForgeConfig,
  client?: Client,
): Promise<{ scheduleId: string; status: 'created' | 'updated' | 'unchanged' }> {
  const own = client ? undefined : await temporalClient(cfg);
  const c = client ?? own!;
  try {
    const want = desired(cfg);
    const handle = c.schedule.getHandle(CURATION_SCHEDULE_ID);
    let current: ScheduleDescription | undefined;
    try {
      current = await handle.describe();
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    }
    if (!current) {
      try {
        await c.schedule.create({ scheduleId: CURATION_SCHEDULE_ID, ...want });
        return { scheduleId: CURATION_SCHEDULE_ID, status: 'created' };
      } catch (err) {
        // Another `forge up` created it a moment ago: bring it in line below.
        if (!(err instanceof ScheduleAlreadyRunning)) throw err;
        current = await handle.describe();
      }
    }
    if (fingerprint(current) === fingerprint(want)) return { scheduleId: CURATION_SCHEDULE_ID, status: 'unchanged' };
    await handle.update<typeof curateWorkflow>((prev) => ({ ...want, state: { paused: prev.state.paused, note: prev.state.note } }));
    return { scheduleId: CURATION_SCHEDULE_ID, status: 'updated' };
  } finally {
    await own?.connection.close();
  }
}

/**
 * A schedule that is not there: one of Forge's not created yet (forge up creates it), or a name that
 * is none of Forge's (a typo), which forge up would never create: that one names the command that lists them.
 */
export class ScheduleMissingError extends ForgeError {
  constructor(id: string) {
    const ours = (FORGE_SCHEDULES as readonly string[]).includes(id);
    super(
      ours ? `schedule ${id} is not created yet on this Temporal namespace` : `there is no Forge schedule ${JSON.stringify(id)}`,
      'SCHEDULE_NOT_FOUND',
      ours
        ? 'forge up creates it'
        : `forge schedule ls lists Forge's schedules (${FORGE_SCHEDULES.join(', ')}); pause, unpause and trigger without an id act on ${CURATION_SCHEDULE_ID}`,
      { scheduleId: id },
    );
  }
}

export interface ScheduleView {
  scheduleId: string;
  /** false: not created yet (forge up creates it) */
  exists: boolean;
  workflowType?: string;
  cron?: string;
  timeZone?: string;
  paused?: boolean;
  note?: string;
  overlap?: string;
  catchupWindowMs?: number;
  /** when it runs next; none while paused (Temporal still computes the times a paused schedule would take) */
  nextRuns?: string[];
  recent?: { scheduledAt: string; takenAt: string; workflowId: string }[];
  running?: string[];
  actionsTaken?: number;
  skippedOverlap?: number;
  missedCatchup?: number;
  uiUrl: string | null;
}

function scheduleUiUrl(cfg: ForgeConfig, id: string): string | null {
  const ui = temporalEndpoint(cfg).uiUrl;
  return ui ? `${ui}/namespaces/${encodeURIComponent(cfg.TEMPORAL_NAMESPACE)}/schedules/${encodeURIComponent(id)}` : null;
}

function view(cfg: ForgeConfig, d: ScheduleDescription): ScheduleView {
  const memo = (d.action.memo as { forgeSchedule?: { cron?: string; timeZone?: string } } | undefined)?.forgeSchedule;
  return {
    scheduleId: d.scheduleId,
    exists: true,
    workflowType: d.action.workflowType,
    cron: memo?.cron,
    timeZone: memo?.timeZone ?? d.spec.timezone,
    paused: d.state.paused,
    ...(d.state.note ? { note: d.state.note } : {}),
    overlap: d.policies.overlap,
    catchupWindowMs: d.policies.catchupWindow,
    nextRuns: d.state.paused ? [] : d.info.nextActionTimes.slice(0, 3).map((t) => t.toISOString()),
    recent: d.info.recentActions.map((a) => ({
      scheduledAt: a.scheduledAt.toISOString(),
      takenAt: a.takenAt.toISOString(),
      workflowId: a.action.workflow.workflowId,
    })),
    running: d.info.runningActions.map((a) => a.workflow.workflowId),
    actionsTaken: d.info.numActionsTaken,
    skippedOverlap: d.info.numActionsSkippedOverlap,
    missedCatchup: d.info.numActionsMissedCatchupWindow,
    uiUrl: scheduleUiUrl(cfg, d.scheduleId),
  };
}

async function described(session: Session, id: string): Promise<ScheduleDescription> {
  const client = await session.temporal();
  try {
    return await client.schedule.getHandle(id).describe();
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) throw new ScheduleMissingError(id);
    throw err;
  }
}

function known(id: string): string {
  if (!(FORGE_SCHEDULES as readonly string[]).includes(id)) throw new ScheduleMissingError(id);
  return id;
}

/** Forge's schedules, each as Temporal describes it (or as missing, before the first forge up). */
export async function listSchedules(session: Session): Promise<ScheduleView[]> {
  const out: ScheduleView[] = [];
  for (const id of FORGE_SCHEDULES) {
    try {
      out.push(view(session.cfg, await described(session, id)));
    } catch (err) {
      if (!(err instanceof ScheduleMissingError)) throw err;
      out.push({ scheduleId: id, exists: false, uiUrl: null });
    }
  }
  return out;
}

/**
 * Pauses a schedule (no run starts until unpaused); the note says who and why, in the UI too. One
 * that is paused already is left as it is, with the first pause's note: `changed` says which.
 */
export function pauseSchedule(session: Session, id: string, note: string): Promise<ScheduleView & { changed: boolean }> {
  return setPaused(session, id, true, note);
}

/** Unpauses a schedule; one that runs already is left as it is (`changed` false). */
export function unpauseSchedule(session: Session, id: string, note: string): Promise<ScheduleView & { changed: boolean }> {
  return setPaused(session, id, false, note);
}

async function setPaused(session: Session, id: string, paused: boolean, note: string): Promise<ScheduleView & { changed: boolean }> {
  const before = await described(session, known(id));
  // Pausing a paused schedule would overwrite who paused it and why with a pause that changed nothing.
  if (before.state.paused === paused) return { ...view(session.cfg, before), changed: false };
  const handle = (await session.temporal()).schedule.getHandle(id);
  await (paused ? handle.pause(note) : handle.unpause(note));
  return { ...view(session.cfg, await described(session, id)), changed: true };
}

/**
 * Runs the schedule's action now (a paused schedule too: a person asked), even while a run is
 * going (the runs share a lock, and a row is curated once); waits a few seconds for Temporal to
 * report the run it started, so the caller can follow it.
 */
export async function triggerSchedule(
  session: Session,
  id: string,
): Promise<{ scheduleId: string; workflowId?: string; uiUrl: string | null; note?: string }> {
  const before = await described(session, known(id));
  const seen = new Set(before.info.recentActions.map((a) => a.action.workflow.workflowId));
  const client = await session.temporal();
  await client.schedule.getHandle(id).trigger(ScheduleOverlapPolicy.ALLOW_ALL);
  for (let i = 0; i < 40; i++) {
    const now = await described(session, id);
    const started = [...now.info.recentActions, ...now.info.runningActions.map((action) => ({ action }))]
      .map((a) => a.action.workflow.workflowId)
      .find((w) => !seen.has(w));
    if (started) return { scheduleId: id, workflowId: started, uiUrl: workflowUiUrl(session.cfg, started) };
    await sleep(250);
  }
  return { scheduleId: id, uiUrl: null, note: 'triggered; Temporal has not reported the run yet (see forge schedule ls)' };
}
