import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { createTaskToolActivities } from '../../activities/task-tools.ts';
import { createRegistry, type Registry } from '../../services/catalog/registry.ts';
import { freshDatabase } from '../helpers/env.ts';

// The trust ladder as calls are metered: probationary → standard → degraded → quarantined,
// with the gate asking a person for writes until the tool has earned autonomy.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let registry: Registry;
let tools: ReturnType<typeof createTaskToolActivities>;
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-trust-'));

before(async () => {
  db = await freshDatabase();
  registry = createRegistry({ sql: db.sql, root });
  tools = createTaskToolActivities({ registry });
  for (const [name, sideEffect] of [
    ['lookup_thing', 'read'],
    ['post_thing', 'write'],
  ] as const) {
    await registry.registerVersion({
      name,
      source: `export const manifest = {}; export async function run() { return {}; } // ${name}`,
      tests: '',
      manifest: {
        description: `${name} for the trust ladder test`,
        sideEffect,
        permissions: { network: [], env: [] },
        inputSchema: { type: 'object', properties: {} },
        outputSchema: { type: 'object' },
      },
      idempotencyKey: `seed:${name}`,
    });
  }
});

after(async () => {
  await db.drop();
  fs.rmSync(root, { recursive: true, force: true });
});

let call = 0;
const record = (tool: string, success: boolean) =>
  tools.recordToolCall({
    workflowId: `wf-${++call}`,
    tool,
    version: 1,
    input: { n: call },
    output: { ok: success },
    success,
    error: success ? undefined : 'boom',
    latencyMs: 5,
    reasoning: 'test',
    task: 'test',
  });

it('a read runs at once; a write waits for a person while the tool is probationary', async () => {
  assert.deepEqual(
    [(await tools.toolGate({ name: 'lookup_thing' })).approval.needed, (await tools.toolGate({ name: 'post_thing' })).approval.needed],
    [false, true],
  );
  assert.equal((await tools.toolGate({ name: 'post_thing' })).level, 'probationary');
});

it('climbs to standard after 10 successful calls, and writes still need approval', async () => {
  for (let i = 0; i < 10; i++) await record('post_thing', true);
  const gate = await tools.toolGate({ name: 'post_thing' });
  assert.equal(gate.level, 'standard');
  assert.equal(gate.approval.needed, true);
  assert.match(gate.approval.reason, /write needs a person's approval/);
});

it('falls to degraded below 70% and is quarantined: the gate blocks it', async () => {
  let last = { level: 'probationary', quarantined: false } as Awaited<ReturnType<typeof record>>;
  for (let i = 0; i < 6; i++) last = await record('lookup_thing', i < 2);
  assert.equal(last.level, 'degraded');
  assert.equal(last.quarantined, true);
  assert.equal((await registry.getCurrent('lookup_thing'))?.status, 'quarantined');
  const gate = await tools.toolGate({ name: 'lookup_thing' });
  assert.equal(gate.approval.blocked, true);
  assert.match(gate.approval.reason, /quarantined tools are not run/);
});

it('meters every call once, even when the same step is recorded twice (activity retry)', async () => {
  const input = {
    workflowId: 'wf-retry',
    tool: 'post_thing',
    version: 1,
    input: {},
    output: {},
    success: true,
    latencyMs: 3,
    reasoning: 'r',
    task: 't',
  };
  await tools.recordToolCall(input);
  await tools.recordToolCall(input);
  const [row] = await db.sql`select count(*)::int as n from invocations where workflow_id = 'wf-retry'`;
  const [audit] = await db.sql`select count(*)::int as n from audit_log where workflow_id = 'wf-retry'`;
  assert.deepEqual([row?.n, audit?.n], [1, 1]);
});
