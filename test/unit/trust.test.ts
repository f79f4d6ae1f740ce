import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { approvalNeeded, statusForLevel, trustLevel } from '../../domain/trust.ts';

const level = (invocations: number, successes: number) => trustLevel({ invocations, successes });

describe('trustLevel', () => {
  it('is probationary for the first 10 invocations, however good', () => {
    assert.equal(level(0, 0), 'probationary');
    assert.equal(level(9, 9), 'probationary');
  });

  it('becomes standard at 10 successful invocations above 80%', () => {
    assert.equal(level(10, 10), 'standard');
    // 10 calls with one failure: only 9 successes, the seed asks for 10+ successful ones
    assert.equal(level(10, 9), 'probationary');
    assert.equal(level(11, 10), 'standard');
  });

  it('needs strictly more than 80% for standard', () => {
    assert.equal(level(20, 16), 'probationary'); // exactly 80%
    assert.equal(level(20, 17), 'standard'); // 85%
    assert.equal(level(40, 32), 'probationary'); // 80%
    assert.equal(level(41, 33), 'standard'); // 80.5%
  });

  it('becomes trusted at 50 invocations above 95%', () => {
    assert.equal(level(49, 49), 'standard');
    assert.equal(level(50, 50), 'trusted');
    assert.equal(level(50, 48), 'trusted'); // 96%
    assert.equal(level(50, 47), 'standard'); // 94%
    assert.equal(level(100, 95), 'standard'); // exactly 95%
    assert.equal(level(100, 96), 'trusted');
  });

  it('is degraded below 70%, once there is evidence', () => {
    assert.equal(level(10, 7), 'probationary'); // exactly 70%: not below
    assert.equal(level(10, 6), 'degraded');
    assert.equal(level(100, 69), 'degraded');
    assert.equal(level(100, 70), 'probationary'); // between 70% and 80%: earned nothing, lost nothing
    assert.equal(level(5, 3), 'degraded'); // 60% after 5 calls
    assert.equal(level(4, 0), 'probationary'); // too few calls to judge
    assert.equal(level(200, 130), 'degraded'); // a trusted tool falls off the ladder
  });

  it('rejects impossible stats', () => {
    assert.throws(() => level(3, 4), RangeError);
    assert.throws(() => level(-1, 0));
  });

  it('maps degraded to quarantined', () => {
    assert.equal(statusForLevel('degraded'), 'quarantined');
    assert.equal(statusForLevel('trusted'), 'active');
  });
});

describe('approvalNeeded', () => {
  it('runs reads immediately at every active level', () => {
    for (const l of ['probationary', 'standard', 'trusted'] as const) {
      const d = approvalNeeded({ level: l, sideEffect: 'read' });
      assert.equal(d.needed, false, l);
      assert.equal(d.blocked, false, l);
    }
  });

  it('asks a person for every write below trusted', () => {
    for (const l of ['probationary', 'standard'] as const) {
      const d = approvalNeeded({ level: l, sideEffect: 'write', successfulRunsOfOperation: 500 });
      assert.equal(d.needed, true, l);
      assert.match(d.reason, /approval/);
    }
  });

  it('lets a trusted tool write alone only after 50 successful runs of that operation', () => {
    assert.equal(approvalNeeded({ level: 'trusted', sideEffect: 'write', successfulRunsOfOperation: 49 }).needed, true);
    assert.equal(approvalNeeded({ level: 'trusted', sideEffect: 'write', successfulRunsOfOperation: 50 }).needed, false);
    assert.equal(approvalNeeded({ level: 'trusted', sideEffect: 'write' }).needed, true);
  });

  it('treats destructive calls as writes, even when declared read', () => {
    const d = approvalNeeded({ level: 'probationary', sideEffect: 'read', destructive: true });
    assert.equal(d.needed, true);
    assert.match(d.reason, /destructive/);
    assert.equal(approvalNeeded({ level: 'standard', sideEffect: 'write', destructive: true }).needed, true);
    assert.equal(approvalNeeded({ level: 'trusted', sideEffect: 'write', destructive: true, successfulRunsOfOperation: 50 }).needed, false);
  });

  it('never runs quarantined tools', () => {
    const d = approvalNeeded({ level: 'degraded', sideEffect: 'read' });
    assert.equal(d.blocked, true);
    assert.equal(d.needed, true);
    const q = approvalNeeded({ level: 'trusted', sideEffect: 'read', status: 'quarantined' });
    assert.equal(q.blocked, true);
    assert.equal(q.reason, 'tool is quarantined: quarantined tools are not run');
    const archived = approvalNeeded({ level: 'trusted', sideEffect: 'read', status: 'archived' });
    assert.equal(archived.blocked, true);
    // An archived tool is not a quarantined one: the reason says which, and where to read why.
    assert.equal(archived.reason, 'tool is archived: an archived tool is no longer run (forge tools ls --all says why)');
    assert.equal(approvalNeeded({ level: 'trusted', sideEffect: 'read', status: 'active' }).blocked, false);
  });
});
