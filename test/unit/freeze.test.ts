/**
 * `forge freeze` says what it did to the sandboxes honestly (a tester's report: a repeated freeze,
 * with nothing running, said "2 sandbox container(s) killed" — the warm pool the worker had
 * refilled since the first freeze). The reap tells containers started for a job from the warm
 * pool's and from stopped ones, and the CLI words each, with its number.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type Docker from 'dockerode';
import { sandboxesLine } from '../../cli/commands/control.ts';
import { reapSandboxes } from '../../services/sandbox/docker.ts';

/** A Docker engine holding these forge.sandbox containers; records what was removed. */
function engine(containers: { id: string; state: string; job: string }[]) {
  const removed: string[] = [];
  const docker = {
    listContainers: async () =>
      containers.map((c) => ({
        Id: c.id,
        State: c.state,
        Created: Math.floor(Date.now() / 1000),
        Labels: { 'forge.sandbox': '1', 'forge.job': c.job, 'forge.owner': 'elsewhere:1:x', 'forge.deployment': 'd' },
      })),
    getContainer: (id: string) => ({ remove: async () => void removed.push(id) }),
  } as unknown as Docker;
  return { docker, removed };
}

describe('forge freeze: what it did to the sandboxes', () => {
  it('counts containers started for a job, the warm pools, and stopped ones apart, and removes them all', async () => {
    const { docker, removed } = engine([
      { id: 'a', state: 'running', job: 'pool-1a2b3c4d' },
      { id: 'b', state: 'running', job: 'job-5e6f7a8b' },
      { id: 'c', state: 'exited', job: 'job-9c0d1e2f' },
      { id: 'd', state: 'running', job: 'egress-spare-3a4b5c6d' },
      { id: 'e', state: 'running', job: 'verify-task-x.1' },
    ]);
    const counts = await reapSandboxes(docker, { all: true, deployment: 'd' });
    assert.deepEqual(counts, { total: 5, jobs: 2, warmPool: 2, stopped: 1 });
    assert.deepEqual(removed.sort(), ['a', 'b', 'c', 'd', 'e']);
  });

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
