import type postgres from 'postgres';
import type { LexicalPolicy } from '../../domain/ranking.ts';
import type { ToolStatus } from '../../domain/trust.ts';
import type { Sql } from '../db.ts';

/**
 * The tools with the most lexical evidence for a request — the shortlist search re-ranks — read
 * from posting lists (migration 081) instead of scoring every tool that shares a word. Evidence is
 * what domain/ranking.ts lexicalSimilarity sums: per request word, its weight times the best of
 * the field that holds it (name, description, parameters) and its trigram similarity to a word of
 * the tool's name or description (misspellings, inflections), found through the catalog's
 * vocabulary (tool_words), not by comparing the word with every tool.
 *
 * Top-k by MaxScore over "segments": a segment is the tools holding one lexeme in one field, or
 * one catalog word similar to a request word, and every tool in it gains the same from that word.
 * The first round reads the first k + 1 tools of every segment and scores them in full; the k-th
 * best evidence so far is a floor. A tool not read yet can gain from each word at most the value of
 * that word's unfinished segments; while a segment's value plus what the other words could still
 * add beats the floor, a tool in it could still enter, and the most valuable such segment is read
 * to its end (one more round, which scores the best k so far again with it). When none could, the
 * shortlist is the true top k; among tools of equal evidence, which ones enter is the posting
 * order's (by name), as a full scoring would leave it to `invocations` among the tools it saw.
 *
 * Each round is one statement and returns the best k so far with what search reports of them:
 * on a busy machine every round trip to the database costs more than the work it carries.
 *
 * When the request's words are held by few enough tools together (`postings` known for every word,
 * their sum at most `onePassUpTo`), the shortlist is one statement instead: every posting of the
 * words read and summed per tool (term at a time). Aggregating a posting costs about a microsecond,
 * scoring a candidate from its own postings several, and the rounds' extra round trips more than
 * either; MaxScore pays off only when a word is held by thousands of tools. Both give the same
 * evidence, rank by rank; among tools of equal evidence at the cut the one pass takes them by name.
 */

export interface ShortlistWord {
  lexeme: string;
  /** the word as written, for trigram matching */
  raw: string;
  /** termWeight of the lexeme (its inverse document frequency) */
  weight: number;
  /** how many tools' postings hold the lexeme (its document frequency), when the caller knows it */
  postings?: number;
  /**
   * A kind of value the request carries ('value:host', 'value:repo'; domain/ranking.ts
   * requestValues), not a word: it adds `weight` to a tool whose parameters take it (postings of
   * field 4, migration 082), and only to a tool some word already brought — a value alone never
   * makes a tool a candidate (the one pass reads its postings whole, at most one per tool; the
   * rounds only those of the tools they score). What it does is tell apart tools the words tie: at
   * the shortlist's cut the one that can take the request's values goes in.
   */
  value?: boolean;
}

export interface ShortlistInput {
  words: readonly ShortlistWord[];
  /** the request as searched, for the full-text rank reported with each tool */
  text: string;
  activeOnly: boolean;
  k: number;
  policy: LexicalPolicy;
  /** read every posting in one statement when the words' postings add up to at most this (default onePassPostings) */
  onePassUpTo?: number;
}

/**
 * Up to this many postings (of the request's own lexemes; those of similar words are not known
 * before the statement, and are few) a search reads them all at once. Measured on the bench's
 * server at 10,000 tools, load average about 12: 2,900 postings summed in 5–6 ms, where each
 * MaxScore round costs 4–10 ms and a request with two common words takes three or four rounds;
 * 24,000 postings (a word in every tool) took 40+ ms at once against 12–33 ms in rounds.
 */
export const onePassPostings = 3000;

/**
 * A tie at the cut that only the request's values could break is broken by reading the tied word's
 * postings to their end when at most this many are left: "release", held by 600 of the bench's
 * 10,000 tools, is read whole for "release v5.0.0 of expressjs/express"; "list" or "get", held by
 * thousands, is not — a word that common says little, and reading it whole costs more than the tie
 * is worth (the values still order the tools that were read).
 */
export const valueTieReads = 1000;

/** A catalog tool as discovery describes it: its current version's manifest, in brief. */
export interface ToolListing {
  name: string;
  version: number;
  description: string;
  status: ToolStatus;
  sideEffect: 'read' | 'write';
  destructive: boolean;
  inputSchema: Record<string, unknown>;
}

export interface Shortlisted extends ToolListing {
  evidence: number;
  /** ts_rank of the request as a web-search query */
  fullText: number;
  invocations: number;
  successes: number;
  /** per request word, the best field holding its lexeme: 1 name, 2 description, 3 parameters, 0 none */
  fields: number[];
  /** per request word, the best trigram similarity to a word of the tool's name or description (0 below fuzzyMin) */
  fuzzy: number[];
}

interface Segment {
  word: number;
  kind: 'lexeme' | 'word';
  key: string;
  field: number;
  value: number;
  read: number;
  done: boolean;
}

interface Row {
  name: string;
  version: number;
  description: string;
  status: ToolStatus;
  side_effect: 'read' | 'write';
  destructive: boolean;
  input_schema: Record<string, unknown> | null;
  evidence: number;
  full_text: number;
  invocations: number;
  successes: number;
  at: number[];
  field: number[];
  fz: number[];
  reads: number[];
  /** the catalog words similar to the request's (first round): [word index, word, similarity] */
  similar: [number, string, number][] | null;
}

type Db = Sql | postgres.TransactionSql;

/** pg_trgm's word_similarity_threshold, which `%>` matches at: no statement here changes it */
const trgmDefaultThreshold = 0.6;

export async function shortlist(db: Db, input: ShortlistInput): Promise<Shortlisted[]> {
  const { words, activeOnly, k, policy: p } = input;
  if (words.length === 0) return [];
  const postings = words.reduce((sum, w) => sum + (w.value ? 0 : (w.postings ?? Number.POSITIVE_INFINITY)), 0);
  if (postings <= (input.onePassUpTo ?? onePassPostings)) return listed(words, await onePass(db, input));
  const fw = p.fieldWeights;
  const segments: Segment[] = words.flatMap((w, i) =>
    (w.value ? [] : [fw.name, fw.description, fw.params]).map((f, at) => ({
      word: i,
      kind: 'lexeme' as const,
      key: w.lexeme,
      field: at + 1,
      value: w.weight * f,
      read: 0,
      done: false,
    })),
  );
  let similar: [number, string, number][] = [];
  let best: Row[] = [];

  const similarWords = similarWordsQuery(db, input);

  /**
   * Reads the given segments from their `read` offset (`limit` tools each, or to the end), scores
   * what they hold together with the best k so far, and keeps the best k. The first round also
   * finds the similar words and reads their segments.
   */
  async function round(which: Segment[], limit: number | null, first: boolean) {
    const rows = await db<Row[]>`
      with w as (
        select lex, tw, i::int as i
        from unnest(${words.map((w) => w.lexeme)}::text[], ${words.map((w) => w.weight)}::float8[]) with ordinality as w(lex, tw, i)
      ),
      sim as materialized (
        ${
          first
            ? similarWords
            : db`select * from unnest(${similar.map((s) => s[0])}::int[], ${similar.map((s) => s[1])}::text[], ${similar.map((s) => s[2])}::float8[]) as s(i, word, sim)`
        }
      ),
      seg as (
        select kind, key, field, skip, n from unnest(${which.map((s) => s.kind)}::text[], ${which.map((s) => s.key)}::text[],
                                                     ${which.map((s) => s.field)}::int[], ${which.map((s) => s.read)}::int[])
                                              with ordinality as s(kind, key, field, skip, n)
        union all
        select 'word', s.word, 0, 0, ${which.length} + row_number() over (order by s.i, s.word) from sim s where ${first}
      ),
      reads as materialized (
        select s.n, r.tool from seg s cross join lateral (
          select p.tool from lexeme_postings p
          where s.kind = 'lexeme' and p.lexeme = s.key and p.field = s.field and (${!activeOnly} or p.active)
          order by p.tool offset s.skip limit ${limit}
        ) r
        union all
        select s.n, r.tool from seg s cross join lateral (
          select p.tool from word_postings p
          where s.kind = 'word' and p.word = s.key and (${!activeOnly} or p.active)
          order by p.tool offset s.skip limit ${limit}
        ) r
      ),
      cand as materialized (
        select tool from reads union select unnest(${best.map((r) => r.name)}::text[])
      ),
      -- per candidate, its postings for the request's words: one index lookup each, never a
      -- common word's whole posting list
      hits as (
        select c.tool, w.i, e.field, w.tw * case e.field when 1 then ${fw.name}::float8 when 2 then ${fw.description}::float8
                                                         when 3 then ${fw.params}::float8 when 4 then 1 else 0 end as v, 0::float8 as fz
        from cand c
        cross join lateral (select p.lexeme, p.field from lexeme_postings p where p.tool = c.tool offset 0) e
        join w on w.lex = e.lexeme
        union all
        select c.tool, s.i, 0, w.tw * ${p.fuzzyWeight}::float8 * s.sim, s.sim
        from cand c
        cross join lateral (select p.word from word_postings p where p.tool = c.tool and p.word in (select word from sim) offset 0) f
        join sim s on s.word = f.word
        join w on w.i = s.i
      ),
      scored as (
        select tool, sum(v) as evidence, array_agg(i order by i) as at, array_agg(field order by i) as field, array_agg(fz order by i) as fz
        from (select tool, i, max(v) as v, coalesce(min(field) filter (where field > 0), 0) as field, max(fz) as fz from hits group by tool, i) x
        group by tool
      ),
      top as (
        select s.*, coalesce(u.invocations, 0)::int as invocations, coalesce(u.successes, 0)::int as successes
        from scored s
        left join lateral (select u.invocations, u.successes from tool_usage u where u.tool = s.tool offset 0) u on true
        order by s.evidence desc, invocations desc, s.tool
        limit ${k}
      )
      select t.name, t.current_version as version, t.description, t.status, t.side_effect, t.destructive,
             v.manifest -> 'inputSchema' as input_schema,
             top.evidence, ts_rank(t.search, websearch_to_tsquery('english', ${input.text}))::float8 as full_text,
             top.invocations, top.successes, top.at, top.field, top.fz,
             array(select count(r.tool)::int from seg s left join reads r on r.n = s.n group by s.n order by s.n) as reads,
             case when ${first} then (select json_agg(json_build_array(s.i, s.word, s.sim) order by s.i, s.word) from sim s) end as similar
      from top
      join lateral (select * from tools t where t.name = top.tool offset 0) t on true
      join tool_versions v on v.name = t.name and v.version = t.current_version
      order by top.evidence desc, top.invocations desc, top.tool`;
    if (first) {
      similar = rows[0]?.similar ?? [];
      segments.push(
        ...similar.map(([i, text, sim]) => ({
          word: i - 1,
          kind: 'word' as const,
          key: text,
          field: 0,
          value: words[i - 1]!.weight * p.fuzzyWeight * sim,
          read: 0,
          done: false,
        })),
      );
    }
    const reads = rows[0]?.reads ?? [];
    for (const [i, s] of which.entries()) {
      s.read += reads[i] ?? 0;
      if (limit === null || (reads[i] ?? 0) < limit) s.done = true;
    }
    best = rows;
  }

  // one more than k: a segment of exactly k tools is known to be finished, not read again
  await round(segments, k + 1, true);
  for (;;) {
    const floor = best.length >= k ? best[k - 1]!.evidence : 0;
    // what a tool not read yet could still gain from each word: its unfinished segments' best value
    // (a value's postings are not read: any tool not read yet may take it)
    const open = words.map((w, i) =>
      w.value ? 0 : Math.max(0, ...segments.filter((s) => s.word === i && !s.done && s.value > 0).map((s) => s.value)),
    );
    const total = open.reduce((a, b) => a + b, 0);
    const values = words.reduce((sum, w) => sum + (w.value ? w.weight : 0), 0);
    const needed = segments.filter((s) => {
      if (s.done || s.value <= 0) return false;
      const bound = s.value + total - open[s.word]!;
      if (bound > floor + 1e-9) return true;
      // Only the values could lift a tool not read yet over the floor: worth reading the segment
      // to its end for a tie among a few hundred tools, not among thousands.
      return bound + values > floor + 1e-9 && (words[s.word]!.postings ?? Number.POSITIVE_INFINITY) - s.read <= valueTieReads;
    });
    if (needed.length === 0) break;
    await round([needed.reduce((a, b) => (b.value > a.value ? b : a))], null, false);
  }
  return listed(words, best);
}

/**
 * Catalog words similar to the request's, through the trigram index over the vocabulary at
 * pg_trgm's default threshold (a policy that reaches lower reads the whole vocabulary). A word
 * whose lexeme is the request word's own adds nothing the exact match does not already give,
 * when name and description both weigh at least what a trigram match can.
 */
function similarWordsQuery(db: Db, { words, activeOnly, policy: p }: ShortlistInput) {
  const fw = p.fieldWeights;
  const eligible = words.map((w, i) => ({ ...w, i: i + 1 })).filter((w) => w.raw.length >= p.typo.minLength);
  const indexed = p.fuzzyMin >= trgmDefaultThreshold ? db`t.word %> u.w and` : db``;
  const exactDominates = Math.min(fw.name, fw.description) >= p.fuzzyWeight;
  return db`
    select u.i::int as i, v.word, v.sim from unnest(${eligible.map((w) => w.i)}::int[], ${eligible.map((w) => w.raw)}::text[],
                                                    ${eligible.map((w) => w.lexeme)}::text[]) as u(i, w, lex)
    cross join lateral (
      select t.word, word_similarity(u.w, t.word)::float8 as sim from tool_words t
      where ${indexed} word_similarity(u.w, t.word) >= ${p.fuzzyMin} and (case when ${activeOnly} then t.active else t.listed end) > 0
        and not (${exactDominates} and u.lex = any(tsvector_to_array(to_tsvector('english', t.word))))
      offset 0
    ) v
    order by u.i, v.word`;
}

/** Every posting of the request's words (and of the catalog words similar to them), summed per tool: the true top k at once. */
async function onePass(db: Db, input: ShortlistInput): Promise<Row[]> {
  const { words, activeOnly, k, policy: p } = input;
  const fw = p.fieldWeights;
  return db<Row[]>`
    with w as (
      select lex, tw, i::int as i, v = 'value' as value
      from unnest(${words.map((w) => w.lexeme)}::text[], ${words.map((w) => w.weight)}::float8[], ${words.map((w) => (w.value ? 'value' : 'word'))}::text[])
           with ordinality as w(lex, tw, v, i)
    ),
    sim as materialized (${similarWordsQuery(db, input)}),
    words as (
      select p.tool, w.i, p.field::int as field, w.tw * case p.field when 1 then ${fw.name}::float8 when 2 then ${fw.description}::float8
                                                                    when 3 then ${fw.params}::float8 else 0 end as v, 0::float8 as fz
      from w cross join lateral (select p.tool, p.field from lexeme_postings p where p.lexeme = w.lex and (${!activeOnly} or p.active) offset 0) p
      where not w.value
      union all
      select p.tool, s.i, 0, w.tw * ${p.fuzzyWeight}::float8 * s.sim, s.sim
      from sim s join w on w.i = s.i
      cross join lateral (select p.tool from word_postings p where p.word = s.word and (${!activeOnly} or p.active) offset 0) p
    ),
    -- per tool and word, the best evidence the words give: the field holding the lexeme, or a similar word
    xw as materialized (
      select tool, i, max(v) as v, coalesce(min(field) filter (where field > 0), 0) as field, max(fz) as fz from words group by tool, i
    ),
    -- the tools that take each of the request's values, read in one pass and joined by hash. Only
    -- a tool the words brought gains from them; one that could not reach the cut even with every
    -- value cannot enter the k best either way, so adding them to every tool ranks as adding them
    -- only near the cut would, and costs less: at a tie among a common word's tools nearly all are
    -- near it, and an index lookup per tool (1,600 for "check the cert expiry date for
    -- api.example.com" at 10,000 tools) was half the statement. A value's postings are at most one per tool.
    takes as materialized (
      select p.tool, w.i, w.tw from w
      cross join lateral (select p.tool from lexeme_postings p where p.lexeme = w.lex and p.field = 4 offset 0) p
      where w.value
    ),
    -- the k best by evidence alone (cheap to sum), and only theirs described
    best as materialized (
      select e.tool, e.e + coalesce(t.v, 0) as evidence
      from (select tool, sum(v) as e from xw group by tool) e
      left join (select tool, sum(tw) as v from takes group by tool) t on t.tool = e.tool
      where e.e + coalesce(t.v, 0) > 0
      order by 2 desc, e.tool limit ${k}
    ),
    x as (
      select tool, i, v, field, fz from xw where tool in (select tool from best)
      union all
      select tool, i, tw, 4, 0::float8 from takes where tool in (select tool from best)
    ),
    top as (
      select b.tool, b.evidence, array_agg(x.i order by x.i) as at, array_agg(x.field order by x.i) as field, array_agg(x.fz order by x.i) as fz,
             coalesce(min(u.invocations), 0)::int as invocations, coalesce(min(u.successes), 0)::int as successes
      from best b join x on x.tool = b.tool
      left join lateral (select u.invocations, u.successes from tool_usage u where u.tool = b.tool offset 0) u on true
      group by b.tool, b.evidence
    )
    select t.name, t.current_version as version, t.description, t.status, t.side_effect, t.destructive,
           v.manifest -> 'inputSchema' as input_schema,
           top.evidence, ts_rank(t.search, websearch_to_tsquery('english', ${input.text}))::float8 as full_text,
           top.invocations, top.successes, top.at, top.field, top.fz, '{}'::int[] as reads, null as similar
    from top
    join lateral (select * from tools t where t.name = top.tool offset 0) t on true
    join tool_versions v on v.name = t.name and v.version = t.current_version
    order by top.evidence desc, top.invocations desc, top.tool`;
}

/** The rows as search reads them: per request word, the field holding it and its trigram similarity. */
function listed(words: readonly ShortlistWord[], rows: readonly Row[]): Shortlisted[] {
  return rows.map((r) => {
    const fields = words.map(() => 0);
    const fuzzy = words.map(() => 0);
    for (const [j, at] of r.at.entries()) {
      fields[at - 1] = r.field[j] ?? 0;
      fuzzy[at - 1] = r.fz[j] ?? 0;
    }
    return {
      name: r.name,
      version: r.version,
      description: r.description,
      status: r.status,
      sideEffect: r.side_effect,
      destructive: r.destructive,
      inputSchema: r.input_schema ?? {},
      evidence: r.evidence,
      fullText: r.full_text,
      invocations: r.invocations,
      successes: r.successes,
      fields,
      fuzzy,
    };
  });
}
