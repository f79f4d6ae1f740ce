import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import type { ForgeOutcome } from '../../domain/forge.ts';
import { type Harness, startHarness } from '../helpers/harness.ts';

// The model answers the spec step with something that is not a spec, twice (the first reply and
// the retry that carried the validation error): the forge ends failed with a reason a person can
// act on, and nothing reaches the catalog.
let h: Harness;

before(async () => {
  h = await startHarness({
    scenarios: [
      {
        name: 'bad-spec',
        rules: [
          {
            match: { purpose: 'forge.spec' },
            responses: [{ tool_use: { name: 'submit_spec', input: { name: 'Not A Snake Name!', description: 'x' } } }],
          },
        ],
      },
    ],
  });
});

after(() => h.close());

it('a model reply that never fits the spec schema fails the forge cleanly', async () => {
  const handle = await h.client.workflow.start('forgeWorkflow', {
    taskQueue: h.cfg.FORGE_TASK_QUEUE,
    workflowId: `forge-bad-${Date.now()}`,
    args: [{ need: 'summarise a web page in three sentences', sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE }],
  });
  const outcome = (await handle.result()) as ForgeOutcome;
  assert.equal(outcome.status, 'failed');
  assert.match(outcome.status === 'failed' ? outcome.reason : '', /the spec step failed: .*did not match the expected shape/);
  assert.equal(
    h.model.requests.filter((r) => r.headers['x-forge-purpose'] === 'forge.spec').length,
    2,
    'one reply, one retry with the error',
  );
  const [run] = await h.db.sql`select status, reason from forge_runs where workflow_id = ${handle.workflowId}`;
  assert.equal(run?.status, 'failed');
  assert.equal((await h.db.sql`select 1 from tool_versions`).length, 0);
});
