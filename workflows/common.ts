import { ApplicationFailure } from '@temporalio/workflow';
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
