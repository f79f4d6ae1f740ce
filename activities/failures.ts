import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { z } from 'zod';
import { FrozenRefusal, InvalidInputError, LlmCallError, LlmOutputError, PermanentError } from '../domain/errors.ts';
import { SandboxCancelledError } from '../services/sandbox/types.ts';

/**
 * Services throw typed errors and know nothing of Temporal; this is the one place that tells
 * Temporal what each means: retry it (and when), never retry it, or treat it as a cancellation.
 * Anything else passes through unchanged, so Temporal's retry policy applies (a database or the
 * Docker engine that is briefly down).
 */
export function toActivityFailure(err: unknown): unknown {
  if (err instanceof ApplicationFailure || err instanceof CancelledFailure) return err;
  if (err instanceof SandboxCancelledError) return new CancelledFailure(err.message);
  if (err instanceof LlmCallError) {
    return ApplicationFailure.create({
      type: err.failureType,
      message: err.message,
      nonRetryable: !err.retryable,
      nextRetryDelay: err.retryDelayMs,
      details: err.details ? [err.details] : [],
      cause: err.cause instanceof Error ? err.cause : err,
    });
  }
  if (err instanceof LlmOutputError) return permanent('LlmOutputInvalid', err);
  if (err instanceof InvalidInputError) return permanent(INVALID_INPUT, err);
  if (err instanceof FrozenRefusal) return ApplicationFailure.create({ type: err.code, message: err.message, nonRetryable: true });
  if (err instanceof PermanentError)
    return ApplicationFailure.create({ type: err.code, message: err.message, nonRetryable: true, details: [{ fix: err.fix ?? null }] });
  return err;
}

function permanent(type: string, err: LlmOutputError | InvalidInputError): ApplicationFailure {
  return ApplicationFailure.create({ type, message: err.message, nonRetryable: true, details: [err.toJSON()], cause: err });
}

/** The one failure type of an activity called with input that does not fit its schema. */
export const INVALID_INPUT = 'InvalidInput';

/** Parses an activity's input once, at the boundary; bad input fails at once, never retried. */
export function parseActivityInput<S extends z.ZodType>(schema: S, raw: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  throw toActivityFailure(new InvalidInputError(what, z.prettifyError(parsed.error)));
}

type AsyncFns = Record<string, (...args: never[]) => Promise<unknown>>;

/** Every function of a set, with its errors translated for Temporal. */
export function adapted<T extends AsyncFns>(fns: T): T {
  return Object.fromEntries(
    Object.entries(fns).map(([name, fn]) => [
      name,
      async (...args: never[]) => {
        try {
          return await fn(...args);
        } catch (err) {
          throw toActivityFailure(err);
        }
      },
    ]),
  ) as T;
}
