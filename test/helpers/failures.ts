import assert from 'node:assert/strict';
import { ApplicationFailure } from '@temporalio/common';
import { toActivityFailure } from '../../activities/failures.ts';

/**
 * The ApplicationFailure a call ends in once it crosses the activity boundary (activities tell
 * Temporal how to retry through it; services throw typed errors that activities/failures.ts maps).
 */
export async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await p;
  } catch (thrown) {
    const err = toActivityFailure(thrown);
    assert.ok(err instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the call to fail');
}
