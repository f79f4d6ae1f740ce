import { defineSearchAttributeKey, WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import {
  ActivityFailure,
  ApplicationFailure,
  ParentClosePolicy,
  startChild,
  WorkflowIdReusePolicy,
  workflowInfo,
} from '@temporalio/workflow';
import { FROZEN_FAILURE } from '../domain/errors.ts';
import {
  type CurateInput,
  type CurateOutcome,
  curateInputSchema,
  curationRunKey,
  evolveWorkflowIdOf,
  scheduledTimeOfWorkflowId,
} from '../domain/evidence.ts';
import { CYCLE_KIND } from '../domain/search-attributes.ts';
import { databaseWork } from './activities.ts';
import { parseWorkflowInput } from './common.ts';
import { evolveWorkflow } from './evolve.ts';

const { curateEvidence } = databaseWork;

/** Set by a Temporal Schedule on every workflow it starts: the time the action was scheduled for. */
const SCHEDULED_START = defineSearchAttributeKey('TemporalScheduledStartTime', 'DATETIME');

/**
 * The nightly curation (issue 11; started by the `forge-nightly-curation` schedule): the window's
 * uncurated failure evidence at or above the minimum severity, de-duplicated and batched by
 * failure type (domain/evidence.ts curateEvidence), each batch handed to its own evolve cycle,
 * at most `maxBatches` a night. Everything is keyed by the run's scheduled time — the batch keys,
 * the evolve children's workflow ids — so a retried activity, a worker killed mid-run or the same
 * run replayed marks nothing twice and starts no second child. The children outlive it (ABANDON):
 * an evolve cycle takes long and answers to nobody but the gate.
 */
export async function curateWorkflow(raw: CurateInput): Promise<CurateOutcome> {
  const input = parseWorkflowInput(curateInputSchema, raw, 'curate input', 'InvalidCurateInput');
  const at = runTime(input.asOf);
  const runKey = curationRunKey(at);
  const until = at.toISOString();
  const since = new Date(at.getTime() - input.windowHours * 3_600_000).toISOString();
  const base = { runKey, since, until, batches: [], duplicates: 0, deferred: 0, considered: 0 };

  let curated: Awaited<ReturnType<typeof curateEvidence>>;
  try {
    curated = await curateEvidence({
      runKey,
      since,
      until,
      minSeverity: input.minSeverity,
      maxBatches: input.maxBatches,
      ...(input.evidenceIds ? { evidenceIds: input.evidenceIds } : {}),
    });
  } catch (err) {
    // Frozen: no self-modification starts; the rows stay uncurated for a later night (waiting would hold up the schedule).
    if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === FROZEN_FAILURE)
      return { ...base, status: 'frozen', reason: 'Forge is frozen (forge freeze): nothing curated, no evolve cycle started' };
    throw err;
  }

  const batches: CurateOutcome['batches'] = [];
  for (const b of curated.batches) {
    const workflowId = evolveWorkflowIdOf(b.batchKey);
    let started = true;
    try {
      await startChild(evolveWorkflow, {
        workflowId,
        args: [
          {
            batchKey: b.batchKey,
            failureType: b.failureType,
            evidenceIds: b.evidenceIds,
            sandboxQueue: input.sandboxQueue,
            ...input.evolve,
          },
        ],
        parentClosePolicy: ParentClosePolicy.ABANDON,
        // A batch gets one cycle, ever: not a second one after the first finished (a run reset, or two runs of one second).
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        typedSearchAttributes: [{ key: CYCLE_KIND, value: 'evolve' }],
      });
    } catch (err) {
      // The batch's cycle was started before (this run replayed from a reset): one cycle per batch.
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      started = false;
    }
    batches.push({ ...b, workflowId, started });
  }
  const { duplicates, deferred, considered } = curated;
  const reason = batches.length
    ? `${batches.length} batch${batches.length === 1 ? '' : 'es'} (${batches.map((b) => `${b.failureType} ×${b.evidenceIds.length}`).join(', ')}) handed to evolve; ${duplicates} duplicate(s) folded, ${deferred} row(s) left for a later night`
    : `no uncurated evidence at or above severity ${input.minSeverity} between ${since} and ${until}`;
  return { ...base, status: batches.length ? 'curated' : 'nothing', batches, duplicates, deferred, considered, reason };
}

/**
 * When this run is for: the schedule's scheduled time (its search attribute, else the time it
 * appends to the workflow id), else the time the caller gave, else the run chain's start — all
 * fixed for the life of the workflow, so the run's keys are the same on every replay.
 */
function runTime(asOf: string | undefined): Date {
  const info = workflowInfo();
  let scheduled: Date | undefined;
  try {
    const value: unknown = info.typedSearchAttributes.get(SCHEDULED_START);
    if (value instanceof Date && !Number.isNaN(value.getTime())) scheduled = value;
  } catch {
    // not started by a schedule, or an attribute this server encodes otherwise: the id or the caller says
  }
  return scheduled ?? scheduledTimeOfWorkflowId(info.workflowId) ?? (asOf ? new Date(asOf) : info.startTime);
}
