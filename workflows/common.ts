import { ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { z } from 'zod';
import type { SandboxActivities } from '../activities/types.ts';

/**
 * A workflow's input is validated again inside it (clients other than the CLI may start it): a bad
 * one fails at once, non-retryably, naming every problem.
 */
export function parseWorkflowInput<S extends z.ZodType>(schema: S, raw: unknown, what: string, failureType: string): z.output<S> {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
  throw ApplicationFailure.nonRetryable(`invalid ${what}: ${issues}`, failureType);
}

/** Sandbox activities run on their own task queue (Docker hosts); they heartbeat, so a dead worker is noticed fast. */
export function sandboxActivities(taskQueue: string, maximumAttempts = 5) {
  return proxyActivities<SandboxActivities>({
    taskQueue,
    startToCloseTimeout: '5 minutes',
    heartbeatTimeout: '20 seconds',
    retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts },
  });
}
