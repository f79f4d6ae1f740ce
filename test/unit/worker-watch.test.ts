/**
 * `forge run --wait` with the sandbox worker down used to sit silent: the wait now notices a task
 * that stopped moving while no worker serves a queue it waits on, and says so once. The rule, on a
 * clock of its own (the real thing, through Temporal: test/integration/no-worker-hint.test.ts). Every
 * --wait follower (forge run, forge forge, forge improve, and their show --wait) uses this one watch.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cycleMoved, noWorkerWatch, type WatchedQueue } from '../../app/worker-watch.ts';
import { noWorkerWarning } from '../../cli/commands/follow-warnings.ts';

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

describe('the same watch on every --wait follower (a forge, an improve cycle)', () => {
  it('a cycle that never answered (no worker began it) is asked about once it waited 5 s, and reported once', async () => {
    const r = rig({ live: { 'forge-control': false } });
    for (let ms = 0; ms < 5000; ms += 500) {
      r.at(ms);
      await r.watch.poll();
    }
    assert.deepEqual(r.asked, [], 'not before 5 s');
    r.at(5000);
    await r.watch.poll();
    r.at(12_000);
    await r.watch.poll();
    assert.deepEqual(r.missing, ['forge-control']);
  });

  it("a forge's or improve's progress moved when its phase, transitions, attempts or wait for a person changed, not otherwise", () => {
    const at = '2026-01-01T00:00:00Z';
    const verifying = { phase: 'verifying', history: [{ phase: 'verifying', at }], attempts: [] as unknown[] };
    assert.equal(cycleMoved(verifying), cycleMoved({ ...verifying, history: [...verifying.history] }), 'the same answer again');
    const moved = [
      { ...verifying, attempts: [{ passed: false }] },
      { ...verifying, history: [...verifying.history, { phase: 'repairing', at }] },
      { ...verifying, pendingApproval: 'appr-1' },
      { ...verifying, phase: 'gating' },
    ];
    for (const p of moved) assert.notEqual(cycleMoved(p), cycleMoved(verifying), JSON.stringify(p));
  });

  it('the warning names the queue, what runs there, where the cycle waits, and the fix', () => {
    assert.equal(
      noWorkerWarning('/home/me/.forge', 'forge', { ...sandbox, phase: 'verifying' }),
      'warning: no worker polls forge-sandbox (the sandbox queue, where tool calls and forge verifications run in Docker): the forge waits at verifying until one does\n' +
        '  fix: forge up starts the missing worker (or run one in the foreground: forge worker); forge doctor says what is down (worker log: /home/me/.forge/logs/worker.log)\n',
    );
    assert.match(
      noWorkerWarning('/h', 'improve cycle', control),
      /^warning: no worker polls forge-control \(the control queue, where the improve cycle's workflow and model calls run\): no worker has begun the improve cycle until one does\n/,
    );
  });
});
