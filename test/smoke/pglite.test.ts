import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { createStoreActivities } from '../../activities/bookkeeping.ts';
import { migrate } from '../../infra/migrate.ts';
import { connect, type Sql } from '../../services/db.ts';

// The same `postgres` client code path against embedded PGlite (served by the test runner).
let sql: Sql;

before(async () => {
  const url = process.env.FORGE_TEST_PGLITE_URL;
  if (!url) throw new Error('FORGE_TEST_PGLITE_URL is not set: run the suite with `npm test`');
  sql = connect(url, { max: 2 });
  await migrate(sql);
});

after(async () => {
  await sql.end();
});

it('applies migrations idempotently on PGlite', async () => {
  assert.deepEqual(await migrate(sql), [], 'a second run applies nothing');
  const rows = await sql<{ name: string }[]>`select name from schema_migrations order by name`;
  assert.ok(rows.some((r) => r.name === '001_core.sql'));
});

it('records task steps exactly once per key on PGlite', async () => {
  const store = createStoreActivities(sql);
  const workflowId = `smoke-${Date.now()}`;
  await store.startTask({ workflowId, task: 'smoke' });
  await store.startTask({ workflowId, task: 'smoke' });
  assert.deepEqual(await store.recordStep({ workflowId, step: 'plan', output: { a: 1 } }), { created: true });
  assert.deepEqual(await store.recordStep({ workflowId, step: 'plan', output: { a: 1 } }), { created: false });
  const [row] = await sql`select count(*)::int as n from task_steps where workflow_id = ${workflowId}`;
  assert.equal(row?.n, 1);
});

it('serves full-text search and trigram similarity, which discovery relies on', async () => {
  const [row] = await sql`select similarity('exchange rate', 'exchange rates') > 0.5 as close,
                                 to_tsvector('english', 'fetch currency exchange rates') @@ websearch_to_tsquery('english', 'exchange rate') as hit`;
  assert.equal(row?.close, true);
  assert.equal(row?.hit, true);
});
