/**
 * `forge freeze` says what it did to the sandboxes honestly (a tester's report: a repeated freeze,
 * with nothing running, said "2 sandbox container(s) killed" — the warm pool the worker had
 * refilled since the first freeze). The reap tells containers started for a job from the warm
 * pool's and from stopped ones (test/integration/shared-engine.test.ts, on the real engine), and the
 * CLI words each, with its number.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sandboxesLine } from '../../cli/commands/control.ts';

describe('forge freeze: what it did to the sandboxes', () => {
  it('a repeated freeze with only the refilled warm pool says 0 were killed, and what it removed', () => {
    assert.equal(
      sandboxesLine({ total: 2, jobs: 0, warmPool: 2, stopped: 0 }, true),
      'killed 0 sandboxes started for a job; removed 2 idle warm-pool containers the pool started since (no job runs while frozen)',
    );
    assert.equal(sandboxesLine({ total: 0, jobs: 0, warmPool: 0, stopped: 0 }, true), 'killed 0 sandboxes started for a job');
  });

  it('a first freeze names the job it killed and the warm pool apart (a warm container may have been mid-job)', () => {
    assert.equal(
      sandboxesLine({ total: 4, jobs: 1, warmPool: 2, stopped: 1 }, false),
      'killed 1 sandbox started for a job and 2 warm-pool containers (idle, or running a job handed to it); removed 1 stopped sandbox container',
    );
  });
});
