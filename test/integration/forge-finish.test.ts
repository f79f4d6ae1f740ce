import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createForgeStoreActivities } from '../../activities/bookkeeping.ts';
import type { ToolSpec } from '../../domain/forge.ts';
import { createRegistry } from '../../services/catalog/registry.ts';
import { createKillSwitch } from '../../services/control/kill-switch.ts';
import { createForgeRuns } from '../../services/runs/forge-runs.ts';
import { type ScratchDb, scratchDb, scratchDir } from './registry-db.ts';

/**
 * The forge cycle's last step, the name check, catalog write and run record folded into one
 * activity, retried whole after a crash between its writes: the retry records the run's own
 * registration, exactly once, and never mistakes the version it wrote for someone else's same code.
 */
describe('finishForge retried after its catalog write', () => {
  let db: ScratchDb;
  let dir: Awaited<ReturnType<typeof scratchDir>>;
  let forge: ReturnType<typeof createForgeStoreActivities>;
  let runs: ReturnType<typeof createForgeRuns>;

  before(async () => {
    db = await scratchDb('finish');
    dir = await scratchDir('finish');
  });
  beforeEach(async () => {
    await db.sql`truncate tools, tool_versions, forge_runs, system_state cascade`;
    const registry = createRegistry({ sql: db.sql, root: `${dir.dir}/tools-${Math.random().toString(36).slice(2, 8)}` });
    const deps = { sql: db.sql, registry, dailyBudget: 10, killSwitch: createKillSwitch(db.sql, 0) };
    forge = createForgeStoreActivities(deps);
    runs = createForgeRuns(deps);
  });
  after(async () => {
    await db?.drop();
    await dir?.remove();
  });

  const finish = (workflowId: string, need: string) => ({ workflowId, need, spec, source, tests, attempts: [] });

  it('a crash between the catalog write and the run record: the retry records this run as registered', async () => {
    await runs.registerForgedTool({ workflowId: 'forge-a', spec, source, tests });

    const retried = await forge.finishForge(finish('forge-a', 'count the words'));

    assert.deepEqual(retried, { registered: { version: 1, created: false } });
    const [run] = await db.sql`select status, version from forge_runs where workflow_id = 'forge-a'`;
    assert.deepEqual({ ...run }, { status: 'registered', version: 1 });
    const versions = await db.sql`select version from tool_versions where name = ${spec.name}`;
    assert.equal(versions.length, 1);
  });

  it('the retry records its run even after a freeze: the catalog write it guards already happened', async () => {
    await runs.registerForgedTool({ workflowId: 'forge-b', spec, source, tests });
    await createKillSwitch(db.sql, 0).freeze('ops', 'incident');

    const retried = await forge.finishForge(finish('forge-b', 'count the words'));

    assert.deepEqual(retried, { registered: { version: 1, created: false } });
    const [run] = await db.sql`select status from forge_runs where workflow_id = 'forge-b'`;
    assert.equal(run?.status, 'registered');
  });

  it('the separate name check (workflows from before the fold) re-run after its run registered lets the write replay', async () => {
    await runs.registerForgedTool({ workflowId: 'forge-e', spec, source, tests });

    assert.deepEqual(await forge.compareWithCurrent({ workflowId: 'forge-e', name: spec.name, source }), { exists: false });
    assert.deepEqual(await forge.compareWithCurrent({ workflowId: 'forge-f', name: spec.name, source }), {
      exists: true,
      version: 1,
      identical: true,
    });
  });

  it("another run forging the very same code finds the name taken: nothing registered, and it is not this run's", async () => {
    await forge.finishForge(finish('forge-c', 'count the words'));

    const second = await forge.finishForge(finish('forge-d', 'how many words'));

    assert.ok('taken' in second, 'the second run is told the name is taken');
    assert.deepEqual(second.taken, { exists: true, version: 1, identical: true });
    const rows = await db.sql`select workflow_id, status from forge_runs order by workflow_id`;
    assert.deepEqual(
      rows.map((r) => `${r.workflow_id} ${r.status}`),
      ['forge-c registered'],
    );
  });
});

const spec: ToolSpec = {
  name: 'count_words',
  description: 'Counts the words in a text, split on whitespace.',
  docstring: 'text: the text. Returns { count }: the number of words.',
  parameters: [{ name: 'text', type: 'string', description: 'the text', required: true }],
  returns: { type: 'object', description: '{ count: number }' },
  sideEffect: 'read',
  destructive: false,
  permissions: { network: [], env: [] },
};

const source = `import { z } from 'zod';
export const manifest = {
  name: 'count_words',
  description: 'Counts the words in a text, split on whitespace.',
  sideEffect: 'read',
  destructive: false,
  permissions: { network: [], env: [] },
  input: z.object({ text: z.string() }),
  output: z.object({ count: z.number().int() }),
};
export async function run(input: { text: string }) {
  return { count: input.text.split(/\\s+/).filter(Boolean).length };
}
`;

const tests = `import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from './tool.ts';
test('counts words', async () => assert.deepEqual(await run({ text: 'a b c' }), { count: 3 }));
`;
