import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { workflowBundle } from '../../workers/bundle.ts';

const { temporal } = proto;
const dir = path.join(import.meta.dirname, '..', 'fixtures', 'histories');
const scratchDirs: string[] = [];
/** A directory for a workflow bundle's build, removed after the file's tests. */
const scratch = () => {
  const made = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-replay-'));
  scratchDirs.push(made);
  return made;
};
after(() => {
  for (const d of scratchDirs) fs.rmSync(d, { recursive: true, force: true });
});

/**
 * Histories recorded by Forge before its bookkeeping became local activities (a forge cycle, a task
 * with one call, and a task whose call failed and was repaired by the tool's improve cycle, with that
 * cycle: run to completion on the earlier code). A worker upgraded while such cycles
 * run must carry them on exactly as they started — on activities — or Temporal fails them as
 * non-deterministic; the `local-bookkeeping` patch is what keeps them.
 */
describe('cycles started on an earlier Forge', () => {
  it('replay on the current workflow code, their bookkeeping still on activities', async () => {
    const files = fs.readdirSync(dir).filter((f) => f.startsWith('before-local-bookkeeping-'));
    assert.equal(files.length, 4, 'the forge, the task, the repairing task and its improve cycle are there');
    const histories = files.map((f) => {
      // Protobuf, as fetchHistory returned it when it was recorded.
      const history = temporal.api.history.v1.History.decode(fs.readFileSync(path.join(dir, f)));
      const scheduled = history.events.flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []);
      assert.ok(
        ['recordToolCall', 'registerForgedTool', 'promoteRewrite'].some((step) => scheduled.includes(step)),
        `${f} holds its bookkeeping as activities (${scheduled.join(', ')})`,
      );
      return { workflowId: f.replace(/\.bin$/, ''), history };
    });
    const bundle = await workflowBundle(scratch());
    let replayed = 0;
    for await (const result of Worker.runReplayHistories({ workflowBundle: bundle, replayName: 'before-local-bookkeeping' }, histories)) {
      assert.equal(result.error, undefined, `${result.workflowId} does not replay: ${String(result.error)}`);
      replayed++;
    }
    assert.equal(replayed, 4);
  });
});

/**
 * Histories recorded on local bookkeeping before consecutive steps were folded into one local
 * activity (a forge cycle, a forge of code the catalog already holds, a task with one call, one
 * without, one in a session, one a bound stopped): their markers name the separate steps
 * (startTask, offerTools, recordStep, recordForgeRun, forgeBudget, compareWithCurrent, …). A
 * worker upgraded while such cycles run carries them on as they started; the `folded-bookkeeping`
 * patch is what keeps them.
 */
describe('cycles started before bookkeeping was folded', () => {
  it('replay on the current workflow code, their steps still separate', async () => {
    const files = fs.readdirSync(dir).filter((f) => f.startsWith('before-folded-bookkeeping-'));
    assert.equal(files.length, 6, 'two forges and four tasks are there');
    const histories = files.map((f) => {
      const history = temporal.api.history.v1.History.decode(fs.readFileSync(path.join(dir, f)));
      const markers = history.events.flatMap((e) => {
        const data = e.markerRecordedEventAttributes?.details?.data?.payloads?.[0]?.data;
        return e.markerRecordedEventAttributes?.markerName === 'core_local_activity' && data
          ? [(JSON.parse(Buffer.from(data).toString('utf8')) as { activity_type: string }).activity_type]
          : [];
      });
      assert.ok(
        ['startTask', 'recordForgeRun'].some((step) => markers.includes(step)),
        `${f} holds its steps as separate local activities (${markers.join(', ')})`,
      );
      return { workflowId: f.replace(/\.bin$/, ''), history };
    });
    const bundle = await workflowBundle(scratch());
    let replayed = 0;
    for await (const result of Worker.runReplayHistories({ workflowBundle: bundle, replayName: 'before-folded-bookkeeping' }, histories)) {
      assert.equal(result.error, undefined, `${result.workflowId} does not replay: ${String(result.error)}`);
      replayed++;
    }
    assert.equal(replayed, 6);
  });
});
