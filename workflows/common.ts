import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure } from '@temporalio/workflow';
import type { z } from 'zod';

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

/**
 * What actually went wrong, in a person's words: the innermost cause of a failure, prefixed by the
 * step it came from ("Activity task failed" names no cause, so it is never the message shown).
 */
export function failureCause(err: unknown): string {
  let step: string | undefined;
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error) {
    if (!step && e instanceof ActivityFailure) step = e.activityType ?? undefined;
    if (!step && e instanceof ChildWorkflowFailure) step = e.execution.workflowId ?? undefined;
    e = e.cause;
  }
  const root = e instanceof Error ? e.message : String(e);
  return step ? `the ${step} step failed: ${root}` : root;
}

/** Ends a cycle with its underlying cause as the failure the Temporal UI and every client show. */
export function failedWith(err: unknown, type: string): ApplicationFailure {
  return ApplicationFailure.create({
    message: failureCause(err),
    type,
    nonRetryable: true,
    ...(err instanceof Error ? { cause: err } : {}),
  });
}
