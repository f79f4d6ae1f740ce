import { ActivityFailure, isCancellation, log } from '@temporalio/workflow';
import { mayHoldEvidence } from '../domain/evidence.ts';
import type { TaskResult } from '../domain/task.ts';
import { type DatabaseWork, databaseWork } from './activities.ts';

/**
 * Failure evidence for self-evolution (issue 11), as a task ends: one activity, keyed per cause, so
 * a retried write records once. Evidence is for learning later, never part of the task's outcome:
 * when the write fails after its retries the task still ends as it would have, and says so in the
 * log. Tasks that completed cleanly (nothing forged, nothing escalated or refused) skip the activity.
 */
export async function recordTaskEvidence(
  input: {
    workflowId: string;
    result: Pick<TaskResult, 'task' | 'status' | 'answer' | 'calls' | 'forged' | 'limits'> & { turns?: number };
    sessionId?: string;
    error?: string;
  },
  /** the workflow's local bookkeeping, when it folds (foldedBookkeeping): the write in the task's last workflow task, no round trip of its own */
  local?: Pick<DatabaseWork, 'recordFailureEvidence'>,
): Promise<void> {
  if (!input.error && !mayHoldEvidence(input.result)) return;
  try {
    await (local ?? databaseWork).recordFailureEvidence(input);
  } catch (err) {
    if (isCancellation(err) || !(err instanceof ActivityFailure)) throw err;
    log.warn('failure evidence was not recorded', { workflowId: input.workflowId, cause: err.cause?.message ?? err.message });
  }
}
