import type postgres from 'postgres';
import { describeError } from '../../domain/errors.ts';
import {
  type ActionIntent,
  actionIntent,
  correctTypo,
  cosine,
  foldWord,
  type IntentFit,
  type IntentPolicy,
  intentFit,
  type LexicalPolicy,
  lexicalSimilarity,
  type RankingPolicy,
  rerank,
  type TermEvidence,
  termWeight,
  toolActions,
} from '../../domain/ranking.ts';
import { type ToolStatus, type TrustLevel, trustLevel } from '../../domain/trust.ts';
import { harness } from '../../harness/index.ts';
import type { Sql } from '../db.ts';
import type { Logger } from '../log.ts';
import type { Embedder } from './embeddings.ts';

/**
 * Discovery over the catalog: lexical evidence from Postgres (full text + trigrams over the index
 * the store writes), dense cosine when an embedder is configured, and the re-ranking of
 * domain/ranking.ts, which weighs what the request wants done (read, delete, restart, …) against
 * what each tool does. Before any of it the request is read as the catalog would write it: words of
 * other languages and shorthand through the harness's alias table, and a word the catalog does not
 * know, one letter away from one it does, as that word. Also the index's own writes that the store
 * calls: the parameter words it indexes and the tool embeddings.
 */

export interface SearchHit {
  name: string;
  version: number;
  description: string;
  status: ToolStatus;
  sideEffect: 'read' | 'write';
  destructive: boolean;
  inputSchema: Record<string, unknown>;
  /** 0..1 retrieval similarity (lexical, blended with dense cosine when embeddings exist) */
  similarity: number;
  /** the re-ranked score: similarity, success rate and usage, weighted by harness.policy.ranking */
  score: number;
  components: { lexical: number; fullText: number; dense: number | null };
  invocations: number;
  successes: number;
  level: TrustLevel;
  /** what the tool changes, in the intent vocabulary (none for a read tool) */
  actions: string[];
  /** whether it does what the request wants done (domain/ranking.ts intentFit) */
  intentFit: IntentFit;
  /** what the request wants done, as the search read it (typos corrected): the same on every hit */
  intent: ActionIntent;
}

export interface SearchOptions {
  limit?: number;
  includeInactive?: boolean;
}

export interface SearchDeps {
  sql: Sql;
  /** dense embeddings are optional: without an embedder, search is full-text + trigram only */
  embedder?: Embedder;
  /** weight of the dense cosine when a tool has an embedding (the rest is lexical) */
  denseWeight?: number;
  /** absent: the harness's (harness.policy.ranking, .lexical) */
  rankingPolicy?: RankingPolicy;
  lexicalPolicy?: LexicalPolicy;
  intentPolicy?: IntentPolicy;
  log: Logger;
}

export interface ToolEmbedding {
  model: string;
  vector: number[];
}

/** Words requests use that the schema knows: parameter names (split) and their descriptions. */
export function paramsSearchText(inputSchema: Record<string, unknown>): string {
  const props = inputSchema.properties;
  if (typeof props !== 'object' || props === null) return '';
  return Object.entries(props as Record<string, unknown>)
    .map(([key, prop]) => {
      const words = key.replace(/([a-z0-9])([A-Z])/g, '$1 $2').replace(/[_-]+/g, ' ');
      const desc =
        typeof prop === 'object' && prop !== null && typeof (prop as { description?: unknown }).description === 'string'
          ? (prop as { description: string }).description
          : '';
      return `${words} ${desc}`.trim();
    })
    .join('. ');
}

interface SearchRow {
  name: string;
  version: number;
  description: string;
  status: ToolStatus;
  side_effect: 'read' | 'write';
  destructive: boolean;
  input_schema: Record<string, unknown> | null;
  a_hits: string[];
  b_hits: string[];
  c_hits: string[];
  fuzzy: number[];
  /** the lexical evidence SQL summed, which the shortlist is ordered by */
  evidence: number;
  full_text: number;
  invocations: number;
  successes: number;
}

export type Search = ReturnType<typeof createSearch>;

/**
 * The request as the catalog would word it: accents folded, and words of the alias table (other
 * languages, shorthand) replaced by the catalog's. Host names and URLs keep their text: the search
 * leaves them out anyway.
 */
export function withAliases(text: string, aliases: Readonly<Record<string, string>>): string {
  return foldWord(text).replace(/[\p{L}]+/gu, (w) => aliases[w] ?? w);
}

export function createSearch(deps: SearchDeps) {
  const { sql, log } = deps;
  const denseWeight = deps.denseWeight ?? harness.policy.retrieval.denseWeight;
  const lexicalPolicy = deps.lexicalPolicy ?? harness.policy.lexical;
  const intentPolicy = deps.intentPolicy ?? harness.policy.retrieval.intent;
  let vocabularyCache: { key: string; words: Map<string, number> } | undefined;
  const intentWords = new Set(
    [...Object.values(intentPolicy.actions).flatMap((a) => a.verbs), ...intentPolicy.reads]
      .map(foldWord)
      .filter((w) => /^\p{L}+$/u.test(w)),
  );
  const intentWordUses = new Map([...intentWords].map((w) => [w, 1]));

  /** The text a tool is embedded by; null without an embedder or when the provider fails. */
  async function embedTool(name: string, description: string): Promise<ToolEmbedding | null> {
    if (!deps.embedder) return null;
    try {
      const [vector] = await deps.embedder.embed([`${name.replace(/_/g, ' ')}: ${description}`]);
      return vector ? { model: deps.embedder.model, vector } : null;
    } catch (err) {
      // Embeddings only sharpen search; a tool is still findable by its words.
      log.warn('embedding failed; the tool is indexed for full-text search only', { tool: name, error: describeError(err) });
      return null;
    }
  }

  /** One embedding per tool and model, describing the version given (inside the store's transaction or not). */
  async function saveEmbedding(db: Sql | postgres.TransactionSql, name: string, version: number, embedding: ToolEmbedding): Promise<void> {
    await db`insert into tool_embeddings (name, version, model, embedding) values (${name}, ${version}, ${embedding.model}, ${embedding.vector})
             on conflict (name, model) do update set version = excluded.version, embedding = excluded.embedding, created_at = now()`;
  }

  /** After a promotion the embedding must describe the version now current (best-effort). */
  async function refreshEmbedding(name: string, version: number, description: string): Promise<void> {
    if (!deps.embedder) return;
    const embedding = await embedTool(name, description);
    if (!embedding) return;
    await saveEmbedding(sql, name, version, embedding);
  }

  /**
   * Hybrid retrieval. Postgres does the text work — stemming and stop words (to_tsvector), which of
   * the request's words each tool's weighted index holds, trigram word_similarity for misspellings,
   * ts_rank of websearch_to_tsquery for requests that name a tool outright — and the scores are
   * combined here (domain/ranking.ts), blended with dense cosine when embeddings exist, then
   * re-ranked by success rate and usage.
   */
  async function search(query: string, searchOpts: SearchOptions = {}): Promise<SearchHit[]> {
    const limit = searchOpts.limit ?? 5;
    const original = query.trim().slice(0, 2000);
    if (!original) return [];
    let q = withAliases(original, lexicalPolicy.aliases);
    let intentText = foldWord(original);
    const activeOnly = !searchOpts.includeInactive;

    let { lexemes, rawWords, df, n } = await lexemesOf(q, activeOnly);
    // A word the catalog does not know may be a slip of one it does ("restrat", "certifcate"). The
    // trigram evidence below credits such a word only in part, never enough alone to reach the
    // decision's bands: read as the word it slipped from, it counts in full. The intent vocabulary's
    // verbs count as known words too ("dleete" is "delete" though no tool deletes).
    const unknown = rawWords.filter((w, i) => !df.has(lexemes[i]!) && w.length >= lexicalPolicy.typo.minLength && /^\p{L}+$/u.test(w));
    if (unknown.length) {
      const vocabulary = await catalogVocabulary(activeOnly);
      // Toward a verb of the intent vocabulary, which the catalog may not use, more caution: no wrong
      // letter, and two letters more ("lunch" is a word, not a slip of "launch"; "restrat" is a slip).
      const toVerbs = { minLength: lexicalPolicy.typo.minLength + 2, substitutionFrom: Number.POSITIVE_INFINITY };
      let corrected = false;
      for (const w of unknown) {
        if (vocabulary.has(w) || intentWords.has(w)) continue;
        const fix = correctTypo(w, vocabulary, lexicalPolicy.typo) ?? correctTypo(w, intentWordUses, toVerbs);
        if (!fix) continue;
        const word = new RegExp(`(?<![\\p{L}\\p{N}])${w}(?![\\p{L}\\p{N}])`, 'gu');
        q = q.replace(word, fix);
        intentText = intentText.replace(word, fix);
        corrected = true;
      }
      if (corrected) ({ lexemes, rawWords, df, n } = await lexemesOf(q, activeOnly));
    }
    if (lexemes.length === 0) return [];
    const intent = actionIntent(intentText, intentPolicy, lexicalPolicy.aliases);

    // The candidates come from the indexes, never from scoring every tool: the tools whose search
    // index holds a lexeme (GIN over the tsvector), and the tools a request word is word-similar to
    // at the fuzzy floor or above (`%>`: GIN over the trigrams, at a threshold set for this
    // transaction only); the similarity is computed for those pairs only. Each candidate's lexical
    // evidence is then summed in SQL exactly as lexicalSimilarity sums it (domain/ranking.ts: the
    // term weights come from here), and only the best `shortlist` go on to be described and
    // re-ranked: a catalog of 10,000 tools has thousands that share a common word ("list",
    // "record"), and describing each one cost more than the search itself. Usage comes from
    // tool_usage, kept by a trigger (migration 072).
    const fuzzyFloor = Math.min(0.5, lexicalPolicy.fuzzyMin);
    const termWeights = lexemes.map((l) => termWeight(df.get(l) ?? 0, n, lexicalPolicy));
    // trigrams of a word shorter than a typo could be made in ("re" of "we're") match anything
    const fuzzyCounts = rawWords.map((w) => (w.length >= lexicalPolicy.typo.minLength ? 1 : 0));
    const fw = lexicalPolicy.fieldWeights;
    const shortlist = Math.max(40, limit * 8);
    // Top-k pruning (MaxScore): a word more tools use than the shortlist holds ("list", "date")
    // brings thousands of candidates, each worth little. Candidates come first from the other
    // words; the common words are still scored on them. A tool that has only common words can
    // reach at most `commonMax`: when the shortlist's last entry beats that, no such tool could
    // have entered it, and the search is done; otherwise it runs again over every word.
    const bestField = Math.max(fw.name, fw.description, fw.params, lexicalPolicy.fuzzyWeight);
    const common = lexemes.map((l) => (df.get(l) ?? 0) > shortlist);
    const commonMax = termWeights.reduce((sum, w, i) => sum + (common[i] ? w * bestField : 0), 0);
    const shortlistOf = (essential: boolean[]) =>
      sql
        .begin((tx) => [
          tx`select set_config('pg_trgm.word_similarity_threshold', ${String(fuzzyFloor)}, true)`,
          tx<SearchRow[]>`
      with q as (
        select ${lexemes}::text[] as lex, ${rawWords}::text[] as words, ${termWeights}::float8[] as tw, ${fuzzyCounts}::float8[] as fc,
               ${essential.map((e) => (e ? 1 : 0))}::int[] as ess,
               array(select (quote_literal(l) || ':A')::tsquery from unnest(${lexemes}::text[]) l) as qa,
               array(select (quote_literal(l) || ':B')::tsquery from unnest(${lexemes}::text[]) l) as qb,
               array(select (quote_literal(l) || ':C')::tsquery from unnest(${lexemes}::text[]) l) as qc
      ),
      fuzzy as (
        select f.name, jsonb_object_agg(u.i::text, f.sim) as sims
        from q, unnest(q.words) with ordinality as u(w, i),
             lateral (select t.name, word_similarity(u.w, t.trgm_text)::float8 as sim from tools t where t.trgm_text %> u.w offset 0) f
        where q.ess[u.i] = 1
        group by f.name
      ),
      lexical as (
        select t.name from q, tools t
        where t.search @@ to_tsquery('simple', array_to_string(array(select quote_literal(q.lex[i]) from generate_subscripts(q.lex, 1) i where q.ess[i] = 1), ' | '))
      ),
      candidates as (select coalesce(f.name, l.name) as name, f.sims from fuzzy f full join lexical l on l.name = f.name),
      scored as (
        select t.name, t.current_version, t.description, t.status, t.side_effect, t.destructive, t.search, z.fz,
               (select coalesce(sum(q.tw[i] * greatest(
                          case when t.search @@ q.qa[i] then ${fw.name}::float8 when t.search @@ q.qb[i] then ${fw.description}::float8
                               when t.search @@ q.qc[i] then ${fw.params}::float8 else 0 end,
                          case when z.fz[i] >= ${lexicalPolicy.fuzzyMin} then ${lexicalPolicy.fuzzyWeight}::float8 * z.fz[i] else 0 end)), 0)
                from generate_subscripts(q.lex, 1) i) as evidence,
               coalesce(s.invocations, 0)::int as invocations, coalesce(s.successes, 0)::int as successes
        from q, candidates c
        -- one index lookup per candidate, whatever the planner's statistics (PGlite has none)
        cross join lateral (select * from tools t where t.name = c.name and (${!activeOnly} or t.status = 'active') offset 0) t
        -- each word's similarity: from the trigram search, or (a common word) computed for this candidate alone
        cross join lateral (
          select array(
            select case when q.fc[i] = 0 then 0
                        when q.ess[i] = 1 then coalesce((c.sims ->> i::text)::float8, 0)
                        else (select case when x.s >= ${fuzzyFloor} then x.s else 0 end
                              from (select word_similarity(q.words[i], t.trgm_text)::float8 as s) x) end
            from generate_subscripts(q.words, 1) i order by i) as fz) z
        left join tool_usage s on s.tool = t.name
        order by evidence desc, invocations desc, t.name
        limit ${shortlist}
      )
      select t.name, t.current_version as version, t.description, t.status, t.side_effect, t.destructive,
             v.manifest -> 'inputSchema' as input_schema,
             array(select q.lex[i] from generate_subscripts(q.lex, 1) i where t.search @@ q.qa[i]) as a_hits,
             array(select q.lex[i] from generate_subscripts(q.lex, 1) i where t.search @@ q.qb[i]) as b_hits,
             array(select q.lex[i] from generate_subscripts(q.lex, 1) i where t.search @@ q.qc[i]) as c_hits,
             t.fz as fuzzy, t.evidence,
             ts_rank(t.search, websearch_to_tsquery('english', ${q}))::float8 as full_text,
             t.invocations, t.successes
      from q, scored t
      join tool_versions v on v.name = t.name and v.version = t.current_version`,
        ])
        .then((results) => results[1] as SearchRow[]);

    let rows: SearchRow[];
    if (common.some((c) => c) && common.some((c) => !c)) {
      rows = await shortlistOf(common.map((c) => !c));
      const last = rows.length >= shortlist ? Math.min(...rows.map((r) => r.evidence)) : Number.NEGATIVE_INFINITY;
      if (!(last > commonMax)) rows = await shortlistOf(lexemes.map(() => true));
    } else rows = await shortlistOf(lexemes.map(() => true));

    const dense = await denseSimilarities(
      q,
      rows.map((r) => r.name),
    );
    const scored = rows.map((r) => {
      const evidence: TermEvidence[] = lexemes.map((lex, i) => ({
        docFrequency: df.get(lex) ?? 0,
        inName: r.a_hits.includes(lex),
        inDescription: r.b_hits.includes(lex),
        inParams: r.c_hits.includes(lex),
        // trigrams of a word shorter than a typo could be made in ("re" of "we're") match anything
        fuzzy: (rawWords[i]?.length ?? 0) >= lexicalPolicy.typo.minLength ? (r.fuzzy[i] ?? 0) : 0,
      }));
      const lexical = lexicalSimilarity(evidence, n, lexicalPolicy);
      const d = dense.get(r.name) ?? null;
      const similarity = d === null ? lexical : denseWeight * d + (1 - denseWeight) * lexical;
      const actions = toolActions(
        { name: r.name, description: r.description, sideEffect: r.side_effect },
        intentPolicy,
        lexicalPolicy.aliases,
      );
      return {
        name: r.name,
        version: r.version,
        description: r.description,
        status: r.status,
        sideEffect: r.side_effect,
        destructive: r.destructive,
        inputSchema: r.input_schema ?? {},
        similarity,
        components: { lexical, fullText: r.full_text, dense: d },
        invocations: r.invocations,
        successes: r.successes,
        level: trustLevel({ invocations: r.invocations, successes: r.successes }),
        actions,
        intentFit: intentFit(intent, { sideEffect: r.side_effect, actions }),
        intent,
      };
    });
    return rerank(scored, deps.rankingPolicy ?? harness.policy.ranking)
      .slice(0, limit)
      .map(({ successRate: _s, usage: _u, ...hit }) => hit);
  }

  /**
   * The request's words with their lexemes, split by Postgres's own parser: stop words drop out,
   * and host names, URLs, paths, versions and numbers (values, not intent: "blog.example.net" says
   * nothing about blogs) are left out; hyphenated words count by their parts. With each lexeme, how
   * many catalog tools use it.
   */
  async function lexemesOf(q: string, activeOnly: boolean) {
    const lexed = await sql<{ word: string; lexeme: string }[]>`
      select lower(token) as word, lexemes[1] as lexeme from ts_debug('english', ${q})
      where alias in ('asciiword', 'word', 'numword', 'hword_asciipart', 'hword_part', 'hword_numpart')
        and coalesce(array_length(lexemes, 1), 0) > 0
      limit 64`;
    const terms = new Map<string, string>(); // lexeme -> a raw word (for trigram matching)
    for (const { word, lexeme } of lexed) if (lexeme.length > 1 && !terms.has(lexeme)) terms.set(lexeme, word);
    const lexemes = [...terms.keys()];
    // Word statistics and the catalog's size as triggers keep them (migration 072), not ts_stat
    // over every tool per search.
    const [stats] = await sql<{ n: number; df: Record<string, number> }[]>`
      select (case when ${activeOnly} then active else listed end)::int as n,
             coalesce((select jsonb_object_agg(lexeme, case when ${activeOnly} then active else listed end) from tool_lexemes
                       where lexeme = any(${lexemes}::text[]) and (case when ${activeOnly} then active else listed end) > 0), '{}') as df
      from catalog_stats where id = 1`;
    return { lexemes, rawWords: [...terms.values()], df: new Map(Object.entries(stats?.df ?? {})), n: stats?.n ?? 0 };
  }

  /**
   * Every word (not a stop word) of the catalog's names, descriptions and parameters, with how many
   * tools use it: what a typo is corrected to. Kept until the catalog changes.
   */
  async function catalogVocabulary(activeOnly: boolean): Promise<Map<string, number>> {
    const [stamp] = await sql<{ changes: string }[]>`select changes::text from catalog_stats where id = 1`;
    const key = `${activeOnly}:${stamp?.changes}`;
    if (vocabularyCache?.key === key) return vocabularyCache.words;
    const rows = await sql<{ word: string; uses: number }[]>`
      select word, (case when ${activeOnly} then active else listed end)::int as uses from tool_words
      where (case when ${activeOnly} then active else listed end) > 0`;
    const words = new Map(rows.map((r) => [foldWord(r.word), r.uses]));
    vocabularyCache = { key, words };
    return words;
  }

  async function denseSimilarities(query: string, names: string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (!deps.embedder || names.length === 0) return out;
    const rows = await sql<{ name: string; embedding: number[] }[]>`
      select name, embedding from tool_embeddings where model = ${deps.embedder.model} and name = any(${names}::text[])`;
    if (rows.length === 0) return out;
    try {
      const [qv] = await deps.embedder.embed([query]);
      if (qv) for (const r of rows) out.set(r.name, cosine(qv, r.embedding.map(Number)));
    } catch (err) {
      log.warn('query embedding failed; searching by words only', { error: describeError(err) });
    }
    return out;
  }

  return { search, embedTool, saveEmbedding, refreshEmbedding };
}
