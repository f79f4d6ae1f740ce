import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type BenchDb, pgliteDb } from '../../bench/lib.ts';
import { requestValues, termWeight } from '../../domain/ranking.ts';
import { harness } from '../../harness/index.ts';
import { paramsSearchText, VALUE_EVIDENCE } from '../../services/catalog/search.ts';
import { type ShortlistWord, shortlist } from '../../services/catalog/shortlist.ts';
import type { Sql } from '../../services/db.ts';
import { type ScratchDb, scratchDb } from './registry-db.ts';

/**
 * The shortlist (services/catalog/shortlist.ts) reads posting lists (migration 081), in MaxScore
 * rounds that stop early or, when the request's words are held by few tools, all at once in one
 * pass; either way it must return what scoring every tool would: the k best by lexical evidence,
 * each with its true evidence. Checked against a brute force straight from the tools' own search
 * index and words, and the two ways against each other (fields, similarities, usage), on a catalog
 * where common words ("list", "record", "owner") are held by far more tools than the shortlist takes
 * — on a real Postgres and on PGlite, which plans without statistics.
 */

const policy = harness.policy.lexical;
const k = 40;

const verbs = ['list', 'create', 'update', 'delete', 'archive', 'validate', 'sync', 'export'];
const objects = ['record', 'invoice', 'ticket', 'order', 'customer', 'shipment', 'release', 'message', 'status page', 'backup'];
const systems = ['Jira', 'Stripe', 'Notion', 'Airtable', 'Redis', 'Kafka', 'Zendesk'];
const qualifiers = ['for a date range', 'by owner', 'with filters', 'in bulk'];

/** Tools with one version each, straight into the catalog's tables (the store's folders are not needed here). */
async function addTools(
  sql: Sql,
  rows: { name: string; description: string; sideEffect: string; params: string; status?: string; kinds?: string[] }[],
): Promise<void> {
  await sql`insert into tools (name, current_version, description, side_effect, search_params, status, value_kinds)
            select n, 1, d, s, p, st, k::text[] from unnest(${rows.map((r) => r.name)}::text[], ${rows.map((r) => r.description)}::text[],
                                                 ${rows.map((r) => r.sideEffect)}::text[], ${rows.map((r) => r.params)}::text[],
                                                 ${rows.map((r) => r.status ?? 'active')}::text[],
                                                 ${rows.map((r) => `{${(r.kinds ?? []).join(',')}}`)}::text[]) as u(n, d, s, p, st, k)`;
  await sql`insert into tool_versions (name, version, manifest, source, tests, source_sha256, files_sha256, dir, status, created_by, idempotency_key)
            select n, 1, jsonb_build_object('inputSchema', jsonb_build_object('type', 'object')), '', '', repeat('a', 64), repeat('b', 64),
                   '/dev/null', 'verified', 'forge', 'test:' || n
            from unnest(${rows.map((r) => r.name)}::text[]) as u(n)`;
}

/**
 * Every verb × object × system: 560 tools, each word held by 56 to 560 of them; every 9th
 * quarantined. Some take kinds of value: every release tool a version, Redis's and Kafka's a host,
 * Notion's releases a repository too.
 */
async function seed(sql: Sql): Promise<void> {
  const rows = verbs.flatMap((verb, v) =>
    objects.flatMap((object, o) =>
      systems.map((system, s) => {
        const name = `${system}_${object}_${verb}`.toLowerCase().replace(/[^a-z0-9]+/g, '_');
        const description = `${verb[0]!.toUpperCase()}${verb.slice(1)} the ${object} in ${system} ${qualifiers[(v + o + s) % qualifiers.length]}.`;
        const params = paramsSearchText({
          type: 'object',
          properties: { [`${object.split(' ')[0]}Id`]: { type: 'string', description: `the ${object} id` }, owner: { type: 'string' } },
        });
        const sideEffect = verb === 'list' || verb === 'export' || verb === 'validate' ? 'read' : 'write';
        const kinds = [
          ...(object === 'release' ? ['version'] : []),
          ...(system === 'Redis' || system === 'Kafka' ? ['host'] : []),
          ...(object === 'release' && system === 'Notion' ? ['repo'] : []),
        ];
        return { name, description, sideEffect, params, status: (v + o + s) % 9 === 0 ? 'quarantined' : 'active', kinds };
      }),
    ),
  );
  await addTools(sql, rows);
  // usage: the tie-break among equal evidence
  await sql`insert into invocations (idempotency_key, tool, version, input_hash, latency_ms, success)
            select 't:' || name || ':' || g, name, 1, repeat('c', 64), 10, g % 3 > 0
            from tools cross join lateral generate_series(1, length(name) % 5) g`;
}

/** The request's words as search reads them (ts_debug; weights and document frequencies from tool_lexemes). */
async function wordsOf(sql: Sql, text: string, activeOnly = true): Promise<ShortlistWord[]> {
  const lexed = await sql<{ raw: string; lexeme: string }[]>`
    select lower(token) as raw, lexemes[1] as lexeme from ts_debug('english', ${text})
    where alias in ('asciiword', 'word') and coalesce(array_length(lexemes, 1), 0) > 0`;
  const [stats] = await sql<
    { n: number }[]
  >`select (case when ${activeOnly} then active else listed end)::int as n from catalog_stats where id = 1`;
  const n = stats?.n ?? 0;
  const out: ShortlistWord[] = [];
  for (const { raw, lexeme } of lexed) {
    if (out.some((w) => w.lexeme === lexeme)) continue;
    const [row] = await sql<{ df: number }[]>`
      select (case when ${activeOnly} then active else listed end)::int as df from tool_lexemes where lexeme = ${lexeme}`;
    const df = row?.df ?? 0;
    out.push({ lexeme, raw, weight: termWeight(df, n, policy), postings: df });
  }
  for (const kind of new Set(requestValues(text).map((v) => v.kind)))
    out.push({ lexeme: `value:${kind}`, raw: '', weight: VALUE_EVIDENCE, value: true });
  return out;
}

/** The two ways, forced: every posting at once, or MaxScore rounds. */
const ways = { 'one pass': Number.POSITIVE_INFINITY, rounds: -1 };

/**
 * Every active tool's evidence, from its search index and the words of its name and description;
 * and, for a tool some word is found in, the request's kinds of value its `value_kinds` holds.
 */
async function bruteForce(sql: Sql, all: ShortlistWord[]): Promise<Map<string, number>> {
  const fw = policy.fieldWeights;
  const words = all.filter((w) => !w.value);
  const kinds = all.filter((w) => w.value).map((w) => w.lexeme.slice('value:'.length));
  const rows = await sql<{ name: string; evidence: number; taken: number }[]>`
    select t.name, (
      select coalesce(sum(w.tw * greatest(
               case when t.search @@ (quote_literal(w.lex) || ':A')::tsquery then ${fw.name}::float8
                    when t.search @@ (quote_literal(w.lex) || ':B')::tsquery then ${fw.description}::float8
                    when t.search @@ (quote_literal(w.lex) || ':C')::tsquery then ${fw.params}::float8 else 0 end,
               case when length(w.raw) >= ${policy.typo.minLength} then ${policy.fuzzyWeight}::float8 * coalesce(
                 (select max(s) from (select word_similarity(w.raw, v)::float8 as s from forge_tool_words(t.trgm_text) v) x
                  where s >= ${policy.fuzzyMin}), 0) else 0 end)), 0)
      from unnest(${words.map((w) => w.lexeme)}::text[], ${words.map((w) => w.raw)}::text[], ${words.map((w) => w.weight)}::float8[]) as w(lex, raw, tw)
    ) as evidence,
    cardinality(array(select unnest(t.value_kinds) intersect select unnest(${kinds}::text[]))) as taken
    from tools t where t.current_version is not null and t.status = 'active'`;
  return new Map(rows.map((r) => [r.name, r.evidence > 0 ? r.evidence + VALUE_EVIDENCE * r.taken : 0]));
}

const requests = [
  'list the records in Jira by owner', // common words only: every one held by hundreds
  'update a record', // a word in every name of its verb, one in every name of its object
  'delete the customr records for a date range', // a typo: found through the vocabulary's trigrams, not exactly
  'validation of the Stripe backup', // an inflection the stemmer does not join ("validation", "validate")
  'sync the status page in Kafka with filters',
  'owner', // held by every tool's parameters
  'list the releases v2.1.0 of acme/forge', // values: a version every release tool takes, a repository only Notion's take
  'sync the release on cache.example.com', // a host Redis's and Kafka's tools take; never a candidate by the value alone
];

for (const backend of ['postgres', 'pglite'] as const) {
  describe(`discovery shortlist (${backend})`, () => {
    let db: ScratchDb | BenchDb;
    let sql: Sql;

    before(async () => {
      db = backend === 'postgres' ? await scratchDb('shortlist') : await pgliteDb();
      sql = db.sql;
      await seed(sql);
    });

    after(async () => {
      if (!db) return;
      if ('drop' in db) await db.drop();
      else await db.close();
    });

    for (const text of requests)
      for (const [way, onePassUpTo] of Object.entries(ways))
        it(`"${text}" (${way}): the ${k} best by evidence, as scoring every tool would find them`, async () => {
          const words = await wordsOf(sql, text);
          const truth = await bruteForce(sql, words);
          const top = await shortlist(sql, { words, text, activeOnly: true, k, policy, onePassUpTo });
          const want = [...truth.values()].filter((e) => e > 0).sort((a, b) => b - a);
          assert.equal(top.length, Math.min(k, want.length));
          for (const hit of top) assert.ok(Math.abs(hit.evidence - truth.get(hit.name)!) < 1e-9, `${hit.name}: evidence as scored in full`);
          if (text.includes('customr'))
            assert.ok(
              top.some((h) => h.fuzzy.some((f) => f > 0)),
              'the misspelt word counts through its trigrams',
            );
          for (const [i, hit] of top.entries())
            assert.ok(Math.abs(hit.evidence - want[i]!) < 1e-9, `rank ${i + 1}: ${hit.name} ${hit.evidence} vs ${want[i]}`);
        });

    for (const text of [...requests, 'nothing here matches'])
      for (const activeOnly of [true, false])
        it(`"${text}"${activeOnly ? '' : ' (quarantined too)'}: one pass finds the same evidence, fields and similarities as the rounds`, async () => {
          const words = await wordsOf(sql, text, activeOnly);
          const input = { words, text, activeOnly, k, policy };
          const onePass = await shortlist(sql, { ...input, onePassUpTo: ways['one pass'] });
          const rounds = await shortlist(sql, { ...input, onePassUpTo: ways.rounds });
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
        });

    for (const [way, onePassUpTo] of Object.entries(ways))
      it(`a tie at the cut goes to the tools that take the request's values; a value alone brings no tool (${way})`, async () => {
        const text = 'the release v2.1.0 of acme/forge';
        const top = await shortlist(sql, { words: await wordsOf(sql, text), text, activeOnly: true, k: 5, policy, onePassUpTo });
        // 56 tools hold "release" in their names, all alike by the words; Notion's alone take a repository too
        assert.equal(top.length, 5);
        for (const h of top)
          assert.match(h.name, /^notion_release_/, `${h.name} takes no repository, yet entered before a Notion release tool`);
        const hosts = await shortlist(sql, {
          words: await wordsOf(sql, 'the weather on cache.example.com'),
          text: 'the weather on cache.example.com',
          activeOnly: true,
          k,
          policy,
          onePassUpTo,
        });
        assert.deepEqual(hosts, [], "Redis's and Kafka's tools take a host, but no word of the request is theirs");
      });

    it('follows the catalog: a new description, a quarantine, a version withdrawn, a tool deleted', async () => {
      const find = async (text: string, activeOnly = true) =>
        (await shortlist(sql, { words: await wordsOf(sql, text), text, activeOnly, k, policy })).map((h) => h.name);
      await addTools(sql, [
        { name: 'payout_check', description: 'Reconcile the ledger of a Stripe payout.', sideEffect: 'read', params: '' },
      ]);
      assert.deepEqual(await find('reconcile the ledger'), ['payout_check']);
      await sql`update tools set description = 'Balance the books of a payout.' where name = 'payout_check'`;
      assert.deepEqual(await find('reconcile the ledger'), []);
      assert.deepEqual(await find('balance the books'), ['payout_check']);
      await sql`update tools set status = 'quarantined' where name = 'payout_check'`;
      assert.deepEqual(await find('balance the books'), []);
      assert.deepEqual(await find('balance the books', false), ['payout_check']);
      await sql`update tools set status = 'active', current_version = null where name = 'payout_check'`;
      assert.deepEqual(await find('balance the books', false), []);
      await sql`update tools set current_version = 1 where name = 'payout_check'`;
      assert.deepEqual(await find('balance the books'), ['payout_check']);
      await sql`delete from tools where name = 'payout_check'`;
      assert.deepEqual(await find('balance the books', false), []);
    });
  });
}
