import { ActivityFailure, ApplicationFailure, sleep } from '@temporalio/workflow';
import { FROZEN_FAILURE } from '../domain/errors.ts';

function isFrozen(err: unknown): boolean {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof ApplicationFailure && cause.type === FROZEN_FAILURE;
}

/**
 * Runs a side-effecting step; while Forge is frozen the step is refused, so the workflow waits on a
 * durable timer and tries again after `forge thaw`. Nothing is lost and nothing runs twice.
 */
export async function unlessFrozen<T>(step: () => Promise<T>, onFrozen: (frozen: boolean) => void): Promise<T> {
  for (;;) {
    try {
      const result = await step();
      onFrozen(false);
      return result;
    } catch (err) {
      if (!isFrozen(err)) throw err;
      onFrozen(true);
      await sleep('3 seconds');
    }
  }
}
