import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type BenchDb, pgliteDb } from '../../bench/lib.ts';
import { termWeight } from '../../domain/ranking.ts';
import { harness } from '../../harness/index.ts';
import { paramsSearchText } from '../../services/catalog/search.ts';
import { type ShortlistWord, shortlist } from '../../services/catalog/shortlist.ts';
import type { Sql } from '../../services/db.ts';
import { type ScratchDb, scratchDb } from './registry-db.ts';

/**
 * The shortlist's two ways (services/catalog/shortlist.ts): every posting of the request's words
 * summed at once when they are few (the words' document frequencies known), MaxScore rounds
 * otherwise. Both must find the same evidence rank by rank, with the same fields and trigram
 * similarities per tool: discovery-shortlist.test.ts holds the rounds to a brute force, this file
 * holds the one pass to the rounds — on a catalog whose common words are held by far more tools
 * than the shortlist takes, on a real Postgres and on PGlite.
 */

const policy = harness.policy.lexical;
const k = 40;

const verbs = ['list', 'create', 'update', 'delete', 'archive', 'validate', 'sync', 'export'];
const objects = ['record', 'invoice', 'ticket', 'order', 'customer', 'shipment', 'release', 'message', 'status page', 'backup'];
const systems = ['Jira', 'Stripe', 'Notion', 'Airtable', 'Redis', 'Kafka', 'Zendesk'];
const qualifiers = ['for a date range', 'by owner', 'with filters', 'in bulk'];

/** Every verb × object × system (560 tools), some quarantined, with usage. */
async function seed(sql: Sql): Promise<void> {
  const rows = verbs.flatMap((verb, v) =>
    objects.flatMap((object, o) =>
      systems.map((system, s) => ({
        name: `${system}_${object}_${verb}`.toLowerCase().replace(/[^a-z0-9]+/g, '_'),
        description: `${verb[0]!.toUpperCase()}${verb.slice(1)} the ${object} in ${system} ${qualifiers[(v + o + s) % qualifiers.length]}.`,
        params: paramsSearchText({
          type: 'object',
          properties: { [`${object.split(' ')[0]}Id`]: { type: 'string' }, owner: { type: 'string' } },
        }),
        status: (v + o + s) % 9 === 0 ? 'quarantined' : 'active',
      })),
    ),
  );
  await sql`insert into tools (name, current_version, description, side_effect, search_params, status)
            select n, 1, d, 'read', p, s from unnest(${rows.map((r) => r.name)}::text[], ${rows.map((r) => r.description)}::text[],
                                                    ${rows.map((r) => r.params)}::text[], ${rows.map((r) => r.status)}::text[]) as u(n, d, p, s)`;
  await sql`insert into tool_versions (name, version, manifest, source, tests, source_sha256, files_sha256, dir, status, created_by, idempotency_key)
            select name, 1, jsonb_build_object('inputSchema', jsonb_build_object('type', 'object')), '', '', repeat('a', 64), repeat('b', 64),
                   '/dev/null', 'verified', 'forge', 'test:' || name
            from tools`;
  await sql`insert into invocations (idempotency_key, tool, version, input_hash, latency_ms, success)
            select 't:' || name || ':' || g, name, 1, repeat('c', 64), 10, g % 3 > 0
            from tools cross join lateral generate_series(1, length(name) % 7) g`;
}

/** The request's words with their weights and document frequencies, as search reads them. */
async function wordsOf(sql: Sql, text: string, activeOnly: boolean): Promise<ShortlistWord[]> {
  const lexed = await sql<{ raw: string; lexeme: string }[]>`
    select lower(token) as raw, lexemes[1] as lexeme from ts_debug('english', ${text})
    where alias in ('asciiword', 'word') and coalesce(array_length(lexemes, 1), 0) > 0`;
  const [stats] = await sql<
    { n: number }[]
  >`select (case when ${activeOnly} then active else listed end)::int as n from catalog_stats where id = 1`;
  const out: ShortlistWord[] = [];
  for (const { raw, lexeme } of lexed) {
    if (out.some((w) => w.lexeme === lexeme)) continue;
    const [row] = await sql<{ df: number }[]>`
      select (case when ${activeOnly} then active else listed end)::int as df from tool_lexemes where lexeme = ${lexeme}`;
    const df = row?.df ?? 0;
    out.push({ lexeme, raw, weight: termWeight(df, stats?.n ?? 0, policy), postings: df });
  }
  return out;
}

const requests = [
  'list the records in Jira by owner',
  'update a record',
  'delete the customr records for a date range', // a typo: trigram evidence through the vocabulary
  'validation of the Stripe backup',
  'sync the status page in Kafka with filters',
  'owner',
  'nothing here matches',
];

for (const backend of ['postgres', 'pglite'] as const) {
  describe(`discovery shortlist in one pass (${backend})`, () => {
    let db: ScratchDb | BenchDb;
    let sql: Sql;

    before(async () => {
      db = backend === 'postgres' ? await scratchDb('onepass') : await pgliteDb();
      sql = db.sql;
      await seed(sql);
    });

    after(async () => {
      if (!db) return;
      if ('drop' in db) await db.drop();
      else await db.close();
    });

    for (const text of requests)
      for (const activeOnly of [true, false])
        it(`"${text}"${activeOnly ? '' : ' (quarantined too)'}: the same evidence, fields and similarities as the rounds`, async () => {
          const words = await wordsOf(sql, text, activeOnly);
          const input = { words, text, activeOnly, k, policy };
          const onePass = await shortlist(sql, { ...input, onePassUpTo: Number.POSITIVE_INFINITY });
          const rounds = await shortlist(sql, { ...input, onePassUpTo: -1 });
          assert.deepEqual(
            onePass.map((h) => h.evidence.toFixed(9)),
            rounds.map((h) => h.evidence.toFixed(9)),
          );
          if (text === 'nothing here matches') assert.equal(onePass.length, 0);
          else assert.equal(onePass.length, k, 'common words: more tools hold them than the shortlist takes');
          const byName = new Map(rounds.map((h) => [h.name, h]));
          for (const hit of onePass) {
            const same = byName.get(hit.name);
            if (!same) continue; // a tie at the cut, taken by name
            assert.deepEqual(
              [hit.fields, hit.fuzzy, hit.fullText, hit.invocations, hit.successes, hit.status],
              [same.fields, same.fuzzy, same.fullText, same.invocations, same.successes, same.status],
            );
          }
          if (text.includes('customr')) assert.ok(onePass.some((h) => h.fuzzy.some((f) => f > 0)));
        });
  });
}
