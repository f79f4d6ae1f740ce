import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { evalFileSchema, evalToolVersion } from '../../bench/eval-file.ts';
import { createRegistry, type Registry } from '../../services/catalog/registry.ts';
import { type ScratchDb, scratchDb, scratchDir } from './registry-db.ts';

/**
 * A slip in a verb's ending ("creat") keeps the verb's stem, so the catalog's words match it and
 * the typo correction (for words the catalog does not know) never runs; the request's intent must
 * still read the verb, or a write tool that does exactly what is asked ranks as if the request's
 * action were unclear, below a read tool on the same object (services/catalog/search.ts).
 */

const evalSet = evalFileSchema.parse(JSON.parse(await fs.readFile(path.join('test', 'eval', 'discovery.json'), 'utf8')));

describe('discovery reads a verb whose ending slipped', () => {
  let db: ScratchDb;
  let dir: Awaited<ReturnType<typeof scratchDir>>;
  let registry: Registry;

  before(async () => {
    db = await scratchDb('verb_slip');
    dir = await scratchDir('verb-slip');
    registry = createRegistry({ sql: db.sql, root: path.join(dir.dir, 'tools') });
    // the read tool is the more used, so usage alone would put it first
    for (const [name, runs] of [
      ['dns_records_list', 20],
      ['dns_record_create', 2],
    ] as const) {
      await registry.registerVersion(evalToolVersion(evalSet.tools.find((t) => t.name === name)!));
      for (let i = 0; i < runs; i++)
        await registry.recordInvocation({
          idempotencyKey: `slip:${name}:${i}`,
          tool: name,
          version: 1,
          input: { i },
          latencyMs: 50,
          success: true,
        });
    }
  });

  after(async () => {
    await db?.drop();
    await dir?.remove();
  });

  it('"creat a CNAME …" asks to create: the tool that creates records comes first', async () => {
    const hits = await registry.search('creat a CNAME www -> example.com in the example.com zone');
    assert.deepEqual(hits[0]?.intent.actions, ['create']);
    assert.equal(hits[0]?.name, 'dns_record_create');
    assert.equal(hits[0]?.intentFit, 'match');
  });

  it('leaves a word one letter from a verb alone when it is not that verb cut short', async () => {
    // "lunch" is one letter from "launch", but not its stem: a word, not a slip
    const hits = await registry.search('lunch menu: list the DNS records of example.com');
    assert.deepEqual(hits[0]?.intent.actions, []);
    assert.equal(hits[0]?.intent.kind, 'read');
    assert.equal(hits[0]?.name, 'dns_records_list');
  });
});
