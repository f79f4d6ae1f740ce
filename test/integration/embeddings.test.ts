import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { ComponentDownError } from '../../domain/errors.ts';
import { type ScriptedModel, startScriptedModel } from '../../scripted-model/server.ts';
import { createHttpEmbedder } from '../../services/catalog/embeddings.ts';
import { createRegistry } from '../../services/catalog/registry.ts';
import type { RegisterInput } from '../../services/catalog/store.ts';
import { freshDatabase } from '../helpers/env.ts';

// Discovery with a configured embedding provider (offline: the scripted model's /v1/embeddings),
// through the real HTTP client, the tool_embeddings table and the hybrid search.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let model: ScriptedModel;
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-embed-'));

const tool = (name: string, description: string): RegisterInput => ({
  name,
  source: `export const manifest = {}; export async function run() { return {}; } // ${name}`,
  tests: '',
  manifest: {
    description,
    sideEffect: 'read',
    permissions: { network: [], env: [] },
    inputSchema: { type: 'object', properties: { text: { type: 'string' } } },
    outputSchema: { type: 'object' },
  },
  idempotencyKey: `seed:${name}`,
});

before(async () => {
  db = await freshDatabase();
  model = await startScriptedModel({ scenarios: [{ name: 'none', rules: [{ responses: [{ text: 'unused' }] }] }] });
});

after(async () => {
  await model.close();
  await db.drop();
  fs.rmSync(root, { recursive: true, force: true });
});

it('indexes tools with the provider and blends dense similarity into search', async () => {
  const registry = createRegistry({
    sql: db.sql,
    root,
    embedder: createHttpEmbedder({ url: `${model.url}/v1/embeddings`, model: 'scripted-hash' }),
  });
  await registry.registerVersion(tool('count_words', 'count the words, characters and lines in a text'));
  await registry.registerVersion(tool('fetch_exchange_rate', 'latest exchange rate between two currencies'));
  const [rows] = await db.sql`select count(*)::int as n from tool_embeddings where model = 'scripted-hash'`;
  assert.equal(rows?.n, 2);
  const [top] = await registry.search('how many words does this text have');
  assert.equal(top?.name, 'count_words');
  assert.ok((top?.components.dense ?? 0) > 0, 'the dense component took part');
  assert.ok(model.requests.some((r) => r.path === '/v1/embeddings'));
});

it('a provider that is down leaves tools findable by their words, and says what to fix', async () => {
  const embedder = createHttpEmbedder({ url: 'http://127.0.0.1:9/v1/embeddings', model: 'down' });
  await assert.rejects(
    embedder.embed(['x']),
    (err: unknown) => err instanceof ComponentDownError && /FORGE_EMBEDDINGS_URL/.test(err.fix ?? ''),
  );
  const registry = createRegistry({ sql: db.sql, root, embedder });
  await registry.registerVersion(tool('slugify_title', 'turn a title into a URL slug'));
  const [top] = await registry.search('make a url slug from a title');
  assert.equal(top?.name, 'slugify_title');
  assert.equal(top?.components.dense, null);
});
