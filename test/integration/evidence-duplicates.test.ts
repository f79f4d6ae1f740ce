import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { createRegistry, type Registry } from '../../services/catalog/registry.ts';
import { createEvidenceStore } from '../../services/runs/evidence.ts';
import { type ScratchDb, scratchDb, scratchDir } from './registry-db.ts';

// A task that forged a tool the catalog already had is a routing failure (issue 11, item 1); a task
// that forged a tool which merely shares words with one (a slug maker next to a word counter, as in
// the demo) is not. Real Postgres; tools registered directly.

let db: ScratchDb;
let dir: Awaited<ReturnType<typeof scratchDir>>;
let registry: Registry;

const register = (name: string, description: string, outputs: string[]) =>
  registry.registerVersion({
    name,
    source: `export const manifest = { name: '${name}' };\nexport async function run() { return {}; }\n`,
    tests: "import { test } from 'node:test';\n",
    manifest: {
      description,
      sideEffect: 'read',
      permissions: { network: [], env: [] },
      inputSchema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
      outputSchema: { type: 'object', properties: Object.fromEntries(outputs.map((o) => [o, { type: 'integer' }])) },
    },
    idempotencyKey: `dup-test:${name}`,
  });

before(async () => {
  db = await scratchDb('evidence_dups');
  dir = await scratchDir('evidence-dups');
  registry = createRegistry({ sql: db.sql, root: dir.dir });
  await register('count_words', 'Counts the words, characters and lines in a text.', ['words', 'characters', 'lines']);
  await register('word_tally', 'Counts the words, characters and lines of a text.', ['words', 'characters', 'lines']);
  await register('slugify', 'Turns the words of a title into a URL slug joined by hyphens.', ['slug']);
});

after(async () => {
  await db?.drop();
  await dir?.remove();
});

const finished = (forged: string[]) => ({
  task: 'count the words of this',
  status: 'completed' as const,
  answer: 'done',
  calls: [],
  forged,
});

it('records a forged tool that returns what a catalog tool already returns as a routing failure', async () => {
  const store = createEvidenceStore({ sql: db.sql, registry });
  const { ids } = await store.recordTaskEvidence({ workflowId: 'task-dup-1', result: finished(['word_tally']) });
  const [evidence] = await store.loadEvidence(ids);
  assert.equal(evidence?.failureType, 'routing');
  assert.equal(evidence?.source, 'duplicate_forged');
  assert.match(evidence?.expected ?? '', /count_words/);
});

it('does not call a tool with other outputs a duplicate, however many words the descriptions share', async () => {
  const store = createEvidenceStore({ sql: db.sql, registry });
  const { ids } = await store.recordTaskEvidence({ workflowId: 'task-dup-2', result: finished(['slugify']) });
  assert.deepEqual(ids, []);
});
