/**
 * Whether Forge's workers poll their queues (what forge up waits for and forge doctor reports),
 * whatever the queues are named: a FORGE_SANDBOX_QUEUE without "sandbox" in its name is still
 * the sandbox queue, polled for activities. Real Temporal, an in-process worker.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, it } from 'node:test';
import { hasPollers } from '../../app/stack.ts';
import { type Harness, startHarness } from '../helpers/harness.ts';
import { until } from '../helpers/wait.ts';

let h: Harness;
const jobs = `jobs-${randomUUID().slice(0, 8)}`;
const control = `agents-${randomUUID().slice(0, 8)}`;

before(async () => {
  h = await startHarness({ scenarioFiles: ['scenarios/demo.json'], env: { FORGE_SANDBOX_QUEUE: jobs, FORGE_TASK_QUEUE: control } });
});

after(async () => {
  await h?.close();
});

it('finds the pollers of custom-named queues by kind: the sandbox queue for activities, the control queue for workflows', async () => {
  await until('the sandbox queue is polled', () => hasPollers(h.client, jobs, 'activity'), 30_000);
  assert.equal(await hasPollers(h.client, control, 'workflow'), true);
  assert.equal(await hasPollers(h.client, jobs, 'activity', process.pid), true, "this process's own worker");
  assert.equal(await hasPollers(h.client, jobs, 'activity', process.pid + 100_000), false, 'no worker of that pid');
  assert.equal(await hasPollers(h.client, `${jobs}-nobody`, 'activity'), false);
});
