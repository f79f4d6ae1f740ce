import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../domain/config.ts';
import { ComponentDownError } from '../../domain/errors.ts';
import { cosine } from '../../domain/ranking.ts';
import { ensureEmbeddingModel } from '../../infra/embedding-model.ts';
import { embedderFor } from '../../services/catalog/embeddings.ts';
import { createLocalEmbedder, LOCAL_EMBEDDINGS_MODEL } from '../../services/catalog/local-embedder.ts';
import { createRegistry, type Registry } from '../../services/catalog/registry.ts';
import type { RegisterInput } from '../../services/catalog/store.ts';
import { localModelDir } from '../../services/config.ts';
import { freshDatabase } from '../helpers/env.ts';

// Meaning offline (FORGE_EMBEDDINGS_URL=local, the default): all-MiniLM-L6-v2 as test/run.ts
// provisioned it (infra/embedding-model.ts), run by ONNX Runtime in process, through the
// registry's real store and search on a real Postgres.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let registry: Registry;
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-local-embed-'));
const embedder = createLocalEmbedder(localModelDir({}));

const tool = (name: string, description: string): RegisterInput => ({
  name,
  source: `export const manifest = {}; export async function run() { return {}; } // ${name}`,
  tests: '',
  manifest: {
    description,
    sideEffect: 'read',
    permissions: { network: [], env: [] },
    inputSchema: { type: 'object', properties: { id: { type: 'string' } } },
    outputSchema: { type: 'object' },
  },
  idempotencyKey: `seed:${name}`,
});

before(async () => {
  db = await freshDatabase();
  registry = createRegistry({ sql: db.sql, root, embedder });
  await registry.registerVersion(tool('weather_forecast', 'Get the forecast for a city: temperature, rain and wind for the coming days.'));
  // Neighbours that hold the request's only catalog word ("get") where the forecast holds it: the words tie.
  for (const [name, description] of [
    ['stripe_invoice_lookup', 'Get an invoice from Stripe by its id.'],
    ['shopify_stock_level', 'Get the stock level of a product in Shopify.'],
    ['jira_issue_lookup', 'Get an issue from Jira by its key.'],
    ['datadog_metric_value', 'Get the latest value of a metric in Datadog.'],
  ])
    await registry.registerVersion(tool(name!, description!));
});

after(async () => {
  await db.drop();
  fs.rmSync(root, { recursive: true, force: true });
});

describe('meaning offline: FORGE_EMBEDDINGS_URL=local', () => {
  it('is the default and what FORGE_EMBEDDINGS_URL=local names; off searches by words; anything else is refused, saying what fits', () => {
    assert.equal(embedderFor(loadConfig({ FORGE_EMBEDDINGS_URL: 'local' }, root))?.model, LOCAL_EMBEDDINGS_MODEL);
    assert.equal(embedderFor(loadConfig({}, root))?.model, LOCAL_EMBEDDINGS_MODEL);
    assert.equal(embedderFor(loadConfig({ FORGE_EMBEDDINGS_URL: 'off' }, root)), undefined);
    assert.throws(() => loadConfig({ FORGE_EMBEDDINGS_URL: 'nearby' }, root), /FORGE_EMBEDDINGS_URL.*local.*off/s);
  });

  it('fetched the model pinned by sha256 once: provisioning again finds it in place', async () => {
    const again = await ensureEmbeddingModel({});
    assert.deepEqual(again, { dir: localModelDir({}), fetched: false });
  });

  it('says what to do when the model is not there, and the search goes on by its words', async () => {
    const missing = createLocalEmbedder(path.join(root, 'no-model-here'));
    await assert.rejects(
      missing.embed(['anything']),
      (err: unknown) =>
        err instanceof ComponentDownError && /forge up/.test(err.fix ?? '') && /FORGE_EMBEDDINGS_URL=off/.test(err.fix ?? ''),
    );
    const wordsOnly = createRegistry({ sql: db.sql, root, embedder: missing });
    const hits = await wordsOnly.search('weather forecast for Madrid', { limit: 3 });
    assert.equal(hits[0]?.name, 'weather_forecast');
    assert.equal(hits[0]?.components.dense, null);
  });

  it('puts a request nearer the tool that does it than tools sharing its words; the same text gives the same vector', async () => {
    const [request, weather, stock, again] = await embedder.embed([
      'how hot will it get in Madrid this week',
      'weather forecast: temperature, rain and wind for the coming days',
      'shopify stock level get: Get the stock level of a product in Shopify.',
      'how hot will it get in Madrid this week',
    ]);
    assert.equal(request!.length, 384);
    assert.ok(cosine(request!, weather!) > cosine(request!, stock!) + 0.1, 'weather is nearer by a clear margin');
    assert.deepEqual(again, request);
    assert.deepEqual(await embedder.embed(['   ']), [[]], 'an empty text means nothing');
  });

  it('stores a vector per registered tool, under the model it was made by', async () => {
    const rows = await db.sql<{ name: string; n: number }[]>`
      select name, array_length(embedding, 1) as n from tool_embeddings where model = ${LOCAL_EMBEDDINGS_MODEL} order by name`;
    assert.equal(rows.length, 5);
    assert.ok(rows.every((r) => r.n === 384));
  });

  it('orders by meaning where the words tie, and the decision still reads the words alone', async () => {
    const hits = await registry.search('how hot will it get in Madrid this week', { limit: 5 });
    const first = hits[0]!;
    assert.equal(first.name, 'weather_forecast', hits.map((h) => `${h.name} ${h.similarity}/${h.components.dense}`).join(', '));
    assert.ok((first.components.dense ?? 0) > 0 && first.meaning !== undefined);
    assert.equal(first.similarity, first.components.lexical, 'similarity, which the bands read, is the words’');
    const others = hits.slice(1);
    assert.ok(others.length >= 4 && others.every((h) => h.similarity === first.similarity), 'the words tie');
    assert.ok(others.every((h) => (h.components.dense ?? 0) < first.components.dense!));
  });

  it('finds a tool no word of the request names', async () => {
    const hits = await registry.search('will I need an umbrella in Oslo tomorrow', { limit: 5 });
    const weather = hits.find((h) => h.name === 'weather_forecast');
    assert.ok(weather, `weather_forecast among ${hits.map((h) => h.name).join(', ')}`);
    assert.ok((weather.components.dense ?? 0) > 0);
  });
});
