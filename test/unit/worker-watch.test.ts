/**
 * `forge run --wait` with the sandbox worker down used to sit silent: the wait now notices a task
 * that stopped moving while no worker serves a queue it waits on, and says so once. The rule, on a
 * clock of its own (the real thing, through Temporal: test/integration/no-worker-hint.test.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { noWorkerWatch, type WatchedQueue } from '../../app/worker-watch.ts';

const control: WatchedQueue = { name: 'forge-control', role: 'control' };
const sandbox: WatchedQueue = { name: 'forge-sandbox', role: 'sandbox' };

function rig(opts: { live: Record<string, boolean>; waitsOn?: Record<string, boolean>; failing?: boolean }) {
  let t = 0;
  const asked: string[] = [];
  const missing: string[] = [];
  const watch = noWorkerWatch({
    queues: [control, sandbox],
    now: () => t,
    livePollers: async (q) => {
      asked.push(q.name);
      if (opts.failing) throw new Error('Temporal away');
      return opts.live[q.name] ?? true;
    },
    ...(opts.waitsOn ? { waitsOn: async (q: WatchedQueue) => opts.waitsOn?.[q.name] ?? true } : {}),
    onMissing: (q) => missing.push(q.name),
  });
  return { watch, asked, missing, at: (ms: number) => (t = ms) };
}

describe('noticing that no worker serves a followed task', () => {
  it('asks nothing while the task moves, then reports the queue without a worker once', async () => {
    const r = rig({ live: { 'forge-sandbox': false } });
    for (let s = 0; s <= 12; s++) {
      r.at(s * 1000);
      r.watch.progressed(`step ${s}`);
      await r.watch.poll();
    }
    assert.deepEqual(r.asked, [], 'a task that moves is never asked about');
    r.at(17_000);
    await r.watch.poll();
    assert.deepEqual(r.missing, ['forge-sandbox']);
    r.at(30_000);
    await r.watch.poll();
    assert.deepEqual(r.missing, ['forge-sandbox'], 'said once');
  });

  it('asks at most every 5 s while stalled, and reports nothing while every queue has a worker', async () => {
    const r = rig({ live: {} });
    r.watch.progressed('a');
    for (let ms = 0; ms <= 12_000; ms += 500) {
      r.at(ms);
      await r.watch.poll();
    }
    assert.deepEqual(r.asked, ['forge-control', 'forge-sandbox', 'forge-control', 'forge-sandbox']);
    assert.deepEqual(r.missing, []);
  });

  it('a queue the task does not wait on (no sandbox job scheduled) is not reported, nor is a failed question', async () => {
    const idle = rig({ live: { 'forge-sandbox': false }, waitsOn: { 'forge-sandbox': false } });
    idle.watch.progressed('thinking');
    idle.at(6000);
    await idle.watch.poll();
    assert.deepEqual(idle.missing, []);
    const away = rig({ live: {}, failing: true });
    away.watch.progressed('x');
    away.at(6000);
    await away.watch.poll();
    assert.deepEqual(away.missing, []);
  });
});
