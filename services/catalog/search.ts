import type postgres from 'postgres';
import { describeError } from '../../domain/errors.ts';
import {
  type ActionIntent,
  actionIntent,
  correctTypo,
  foldWord,
  type IntentFit,
  type IntentPolicy,
  intentFit,
  type LexicalPolicy,
  lexicalSimilarity,
  type RankingPolicy,
  requestValues,
  rerank,
  slotsFit,
  type TermEvidence,
  termWeight,
  toolActions,
  type ValueSlots,
  valueSlots,
} from '../../domain/ranking.ts';
import { type TrustLevel, trustLevel } from '../../domain/trust.ts';
import { harness } from '../../harness/index.ts';
import type { Sql } from '../db.ts';
import type { Logger } from '../log.ts';
import { DenseIndex, normalized } from './dense-index.ts';
import type { Embedder } from './embeddings.ts';
import { type Shortlisted, type ShortlistWord, shortlist, type ToolListing } from './shortlist.ts';

/**
 * Discovery over the catalog: lexical evidence from Postgres (the best tools by the request's
 * words, read from posting lists: services/catalog/shortlist.ts), dense cosine when an embedder
 * is configured, and the re-ranking of domain/ranking.ts, which weighs what the request wants
 * done (read, delete, restart, …) against what each tool does. Before any of it the request is
 * read as the catalog would write it: words of other languages and shorthand through the
 * harness's alias table, and a word the catalog does not know, one letter away from one it does,
 * as that word. Also the index's own writes that the store calls: the parameter words it indexes
 * and the tool embeddings.
 */

export interface SearchHit extends ToolListing {
  /** 0..1 retrieval similarity: the request's words (what the decision's bands read) */
  similarity: number;
  /** what the request's meaning moved the order by (policy retrieval.dense); absent without embeddings */
  meaning?: number;
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
  /** the share of the request's kinds of value its parameters take (domain/ranking.ts valueFit); absent when the request carries none */
  valueFit?: number;
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
  /** absent: the harness's (harness.policy.retrieval.dense) */
  densePolicy?: DensePolicy;
  /** absent: the harness's (harness.policy.ranking, .lexical) */
  rankingPolicy?: RankingPolicy;
  lexicalPolicy?: LexicalPolicy;
  intentPolicy?: IntentPolicy;
  log: Logger;
}

/** The text a tool is embedded by: its name in words, then its description. */
export const embeddingText = (name: string, description: string) => `${name.replace(/_/g, ' ')}: ${description}`;

export interface DensePolicy {
  weight: number;
  center: number;
  nearest: number;
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

/**
 * The kinds of value a tool's parameters take (domain/ranking.ts valueSlots), as the store keeps
 * them with the tool (`tools.value_kinds`, migration 082) for the shortlist's value postings.
 */
export function valueKindsOf(inputSchema: Record<string, unknown>): string[] {
  return [...valueSlots(inputSchema).kinds].sort();
}

/**
 * Reads the value kinds of listed tools that have none recorded yet (a catalog from before
 * migration 082), from their current version's schema. Run once by infra/migrate.ts after it.
 */
export async function fillValueKinds(db: Sql | postgres.TransactionSql): Promise<number> {
  const rows = await db<{ name: string; schema: Record<string, unknown> | null }[]>`
    select t.name, v.manifest -> 'inputSchema' as schema from tools t
    join tool_versions v on v.name = t.name and v.version = t.current_version
    where t.value_kinds is null`;
  if (rows.length === 0) return 0;
  // one array literal per tool: a text[] per row does not pass through unnest as an array of arrays
  const kinds = rows.map((r) => `{${valueKindsOf(r.schema ?? {}).join(',')}}`);
  await db`update tools t set value_kinds = u.k::text[]
           from unnest(${rows.map((r) => r.name)}::text[], ${kinds}::text[]) as u(n, k) where t.name = u.n`;
  return rows.length;
}

/**
 * What a kind of value the request carries adds to a tool's evidence in the shortlist when the
 * tool's parameters take it: a twentieth of a word found in one tool's name, so it decides among
 * tools the words tie or nearly tie, never over a tool the words clearly prefer.
 */
export const VALUE_EVIDENCE = 0.05;

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
  const densePolicy = deps.densePolicy ?? harness.policy.retrieval.dense;
  const lexicalPolicy = deps.lexicalPolicy ?? harness.policy.lexical;
  const intentPolicy = deps.intentPolicy ?? harness.policy.retrieval.intent;
  let vocabularyCache: { key: string; words: Map<string, number> } | undefined;
  const intentWords = new Set(
    [...Object.values(intentPolicy.actions).flatMap((a) => a.verbs), ...intentPolicy.reads]
      .map(foldWord)
      .filter((w) => /^\p{L}+$/u.test(w)),
  );
  const intentWordUses = new Map([...intentWords].map((w) => [w, 1]));
  // What a tool does, by its name and description: reading it takes about a millisecond per write
  // tool (toolActions parses each name word as a clause), and a shortlist of 40 from a large
  // catalog holds dozens of them, the same ones search after search.
  const actionsCache = new Map<string, string[]>();
  const actionsOf = (tool: { name: string; description: string; sideEffect: 'read' | 'write' }): string[] => {
    const key = `${tool.sideEffect}\u0000${tool.name}\u0000${tool.description}`;
    let actions = actionsCache.get(key);
    if (!actions) {
      if (actionsCache.size >= 50_000) actionsCache.clear();
      actions = toolActions(tool, intentPolicy, lexicalPolicy.aliases);
      actionsCache.set(key, actions);
    }
    return actions;
  };

  // What a tool version's parameters take (valueSlots): reading its schema's descriptions for
  // example values costs tens of microseconds per tool, and a version's schema never changes.
  const slotsCache = new Map<string, ValueSlots>();
  const slotsOf = (tool: { name: string; version: number; inputSchema: Record<string, unknown> }): ValueSlots => {
    const key = `${tool.name}\u0000${tool.version}`;
    let slots = slotsCache.get(key);
    if (!slots) {
      if (slotsCache.size >= 50_000) slotsCache.clear();
      slots = valueSlots(tool.inputSchema);
      slotsCache.set(key, slots);
    }
    return slots;
  };

  /**
   * An embedder that fails (a model not fetched, a provider down) is said once when it starts
   * failing, with its fix, not on every search; once it answers again, a new failure is said again.
   */
  let embedderDown = false;
  function embeddingFailed(message: string, fields: Record<string, unknown>, err: unknown): void {
    if (embedderDown) log.debug(message, { ...fields, error: describeError(err) });
    else log.warn(message, { ...fields, error: describeError(err) });
    embedderDown = true;
  }

  /** The text a tool is embedded by; null without an embedder or when the provider fails. */
  async function embedTool(name: string, description: string): Promise<ToolEmbedding | null> {
    if (!deps.embedder) return null;
    try {
      const [vector] = await deps.embedder.embed([embeddingText(name, description)]);
      embedderDown = false;
      return vector ? { model: deps.embedder.model, vector } : null;
    } catch (err) {
      // Embeddings only sharpen search; a tool is still findable by its words.
      embeddingFailed('embedding failed; the tool is indexed for full-text search only', { tool: name }, err);
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
   * Hybrid retrieval. Postgres does the text work — stemming and stop words (ts_lexize), which
   * field of each tool holds each of the request's words, trigram word_similarity for misspellings,
   * ts_rank of websearch_to_tsquery for requests that name a tool outright — and the scores are
   * combined here (domain/ranking.ts); with embeddings, meaning adds the nearest tools and moves
   * the order (never the similarity the decision reads); then re-ranked by success rate, usage and
   * intent fit.
   */
  async function search(query: string, searchOpts: SearchOptions = {}): Promise<SearchHit[]> {
    const limit = searchOpts.limit ?? 5;
    const original = query.trim().slice(0, 2000);
    if (!original) return [];
    let q = withAliases(original, lexicalPolicy.aliases);
    let intentText = foldWord(original);
    const activeOnly = !searchOpts.includeInactive;

    const lexed = lexemesOf(q, activeOnly);
    // The request's vector is computed in this process while Postgres reads its words, so the two
    // overlap (before any typo is corrected: a slip moves a sentence's meaning little). It never rejects.
    const meaning = embedQuery(q);
    let { lexemes, rawWords, df, n, changes } = await lexed;
    // A word the catalog does not know may be a slip of one it does ("restrat", "certifcate"). The
    // trigram evidence below credits such a word only in part, never enough alone to reach the
    // decision's bands: read as the word it slipped from, it counts in full. The intent vocabulary's
    // verbs count as known words too ("dleete" is "delete" though no tool deletes).
    const unknown = rawWords.filter((w, i) => !df.has(lexemes[i]!) && w.length >= lexicalPolicy.typo.minLength && /^\p{L}+$/u.test(w));
    if (unknown.length) {
      const vocabulary = await catalogVocabulary(activeOnly, changes);
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
      if (corrected) ({ lexemes, rawWords, df, n, changes } = await lexemesOf(q, activeOnly));
    }
    if (lexemes.length === 0) return [];
    // A slip in a verb's ending ("creat", "delet") leaves its stem, which the catalog matches, but
    // not the verb, which the intent reads: read it as the verb whose stem it keeps.
    for (const [i, w] of rawWords.entries()) {
      if (intentWords.has(w) || w.length < lexicalPolicy.typo.minLength || !/^\p{L}+$/u.test(w)) continue;
      const verb = correctTypo(w, intentWordUses, { ...lexicalPolicy.typo, substitutionFrom: Number.POSITIVE_INFINITY });
      if (verb?.startsWith(lexemes[i]!))
        intentText = intentText.replace(new RegExp(`(?<![\\p{L}\\p{N}])${w}(?![\\p{L}\\p{N}])`, 'gu'), verb);
    }
    const intent = actionIntent(intentText, intentPolicy, lexicalPolicy.aliases);
    // Host names, URLs, addresses, dates in the request: the lexing above leaves them out (they say
    // nothing about what is asked), the ranking weighs which candidates could take them.
    const values = requestValues(original);

    // The shortlist comes from posting lists (services/catalog/shortlist.ts, migration 081): the
    // best `shortlist` tools by lexical evidence, summed as lexicalSimilarity sums it (the term
    // weights come from here), without scoring every tool that shares a common word ("list",
    // "record": thousands in a catalog of 10,000). Only those are described and re-ranked. Usage
    // comes from tool_usage, kept by a trigger (migration 072). With each word, how many tools hold
    // it: when few do, the shortlist is one statement rather than rounds.
    const termWeights = lexemes.map((l) => termWeight(df.get(l) ?? 0, n, lexicalPolicy));
    const words: ShortlistWord[] = lexemes.map((lexeme, i) => ({
      lexeme,
      raw: rawWords[i]!,
      weight: termWeights[i]!,
      postings: df.get(lexeme) ?? 0,
    }));
    // The request's kinds of value, each worth a little evidence to a tool that takes it: among the
    // tools its words tie (600 `*_release_*` tools for "what's in release v5.0.0 of
    // expressjs/express") the shortlist keeps those that can take what the request brings. The
    // similarity below is the words' alone.
    for (const kind of new Set(values.map((v) => v.kind)))
      words.push({ lexeme: `value:${kind}`, raw: '', weight: VALUE_EVIDENCE, value: true });
    // Meaning finds what no word names ("how hot will it get" is weather): the nearest tools by the
    // embedder's cosine join the words' shortlist. They are found and described while Postgres
    // builds the shortlist (a tool in both is kept once, as the shortlist has it).
    const near = meaning.then(async (meant) => {
      if (!meant || !deps.embedder) return undefined;
      const index = await toolVectors(deps.embedder.model, changes);
      const names = index.size ? index.nearest(meant, densePolicy.nearest).map((n) => n.name) : [];
      return { meant, index, rows: names.length ? await describeNearest(names, lexemes, activeOnly) : [] };
    });
    const [rows, dense] = await Promise.all([
      shortlist(sql, { words, text: q, activeOnly, k: Math.max(40, limit * 8), policy: lexicalPolicy }),
      near,
    ]);
    const meant = dense?.meant;
    const index = dense?.index;
    if (dense) {
      const have = new Set(rows.map((r) => r.name));
      rows.push(...dense.rows.filter((r) => !have.has(r.name)));
    }
    if (rows.length === 0) return [];

    const scored = rows.map((r) => {
      const evidence: TermEvidence[] = lexemes.map((lex, i) => ({
        docFrequency: df.get(lex) ?? 0,
        // the best field holding it is all lexicalSimilarity weighs
        inName: r.fields[i] === 1,
        inDescription: r.fields[i] === 2,
        inParams: r.fields[i] === 3,
        // trigrams of a word shorter than a typo could be made in ("re" of "we're") match anything
        fuzzy: (rawWords[i]?.length ?? 0) >= lexicalPolicy.typo.minLength ? (r.fuzzy[i] ?? 0) : 0,
      }));
      const lexical = lexicalSimilarity(evidence, n, lexicalPolicy);
      const d = meant && index ? index.cosine(meant, r.name) : null;
      // what a write tool does is read below, only if it could make the hits; a read tool's is known
      const actions: string[] | undefined = r.sideEffect === 'read' ? [] : undefined;
      return {
        name: r.name,
        version: r.version,
        description: r.description,
        status: r.status,
        sideEffect: r.sideEffect,
        destructive: r.destructive,
        inputSchema: r.inputSchema,
        similarity: lexical,
        ...(d === null ? {} : { meaning: densePolicy.weight * (d - densePolicy.center) }),
        components: { lexical, fullText: r.fullText, dense: d },
        invocations: r.invocations,
        successes: r.successes,
        level: trustLevel({ invocations: r.invocations, successes: r.successes }),
        actions,
        intentFit: actions && (intentFit(intent, { sideEffect: r.sideEffect, actions }) as IntentFit | undefined),
        valueFit: values.length ? slotsFit(slotsOf(r), values) : undefined,
        intent,
      };
    });
    // A tool whose fit is not judged yet ranks as if it fit (the most it could score): judge the
    // ones that rank among the hits until all of those are judged. The rest cannot climb into them.
    const policy = deps.rankingPolicy ?? harness.policy.ranking;
    for (;;) {
      const hits = rerank(scored, policy, limit);
      const unjudged = hits.filter((h) => h.actions === undefined);
      if (unjudged.length === 0)
        return hits.map(({ successRate: _s, usage: _u, actions: judged, intentFit: fit, ...hit }) => ({
          ...hit,
          actions: judged ?? [],
          intentFit: fit ?? 'unknown',
        }));
      for (const h of unjudged) {
        const tool = scored.find((c) => c.name === h.name)!;
        tool.actions = actionsOf(tool);
        tool.intentFit = intentFit(intent, { sideEffect: tool.sideEffect, actions: tool.actions });
      }
    }
  }

  /**
   * The request's words with their lexemes, split by Postgres's own parser: stop words drop out,
   * and host names, URLs, paths, versions and numbers (values, not intent: "blog.example.net" says
   * nothing about blogs) are left out; hyphenated words count by their parts. With each lexeme, how
   * many catalog tools use it.
   */
  async function lexemesOf(q: string, activeOnly: boolean) {
    // ts_parse and ts_lexize with the dictionaries the 'english' configuration maps these tokens
    // to, rather than ts_debug: the same words, at half the cost (ts_debug is a SQL function
    // planned anew on every call). Word statistics and the catalog's size in the same statement, as
    // triggers keep them (migration 072), not ts_stat over every tool per search.
    const [stats] = await sql<{ lexed: [string, string][] | null; n: number; changes: string; df: Record<string, number> }[]>`
      with lexed as materialized (
        select lower(p.token) as word, x.lexemes[1] as lexeme, p.at
        from ts_parse('default', ${q}) with ordinality as p(tokid, token, at)
        join ts_token_type('default') t on t.tokid = p.tokid
        cross join lateral (
          select case when t.alias in ('numword', 'hword_numpart') then ts_lexize('simple', p.token)
                      else ts_lexize('english_stem', p.token) end as lexemes) x
        where t.alias in ('asciiword', 'word', 'numword', 'hword_asciipart', 'hword_part', 'hword_numpart')
          and coalesce(array_length(x.lexemes, 1), 0) > 0
        order by p.at
        limit 64
      )
      select (select json_agg(json_build_array(word, lexeme) order by at) from lexed) as lexed,
             (case when ${activeOnly} then active else listed end)::int as n, changes::text as changes,
             coalesce((select jsonb_object_agg(lexeme, case when ${activeOnly} then active else listed end) from tool_lexemes
                       where lexeme = any(array(select lexeme from lexed)) and (case when ${activeOnly} then active else listed end) > 0), '{}') as df
      from catalog_stats where id = 1`;
    const terms = new Map<string, string>(); // lexeme -> a raw word (for trigram matching)
    for (const [word, lexeme] of stats?.lexed ?? []) if (lexeme.length > 1 && !terms.has(lexeme)) terms.set(lexeme, word);
    return {
      lexemes: [...terms.keys()],
      rawWords: [...terms.values()],
      df: new Map(Object.entries(stats?.df ?? {})),
      n: stats?.n ?? 0,
      changes: stats?.changes ?? '',
    };
  }

  /**
   * Every word (not a stop word) of the catalog's names, descriptions and parameters, with how many
   * tools use it: what a typo is corrected to. Kept until the catalog changes.
   */
  async function catalogVocabulary(activeOnly: boolean, changes: string): Promise<Map<string, number>> {
    const key = `${activeOnly}:${changes}`;
    if (vocabularyCache?.key === key) return vocabularyCache.words;
    const rows = await sql<{ word: string; uses: number }[]>`
      select word, (case when ${activeOnly} then active else listed end)::int as uses from tool_words
      where (case when ${activeOnly} then active else listed end) > 0`;
    const words = new Map(rows.map((r) => [foldWord(r.word), r.uses]));
    vocabularyCache = { key, words };
    return words;
  }

  /**
   * Every listed tool's vector for the embedder's model, kept in memory (dense-index.ts; a catalog of
   * 10,000 is 20 MB) and topped up from the rows written since the last read when the catalog changed.
   */
  let dense: { changes: string; since: string | null; index: DenseIndex } | undefined;
  async function toolVectors(model: string, changes: string): Promise<DenseIndex> {
    if (dense?.changes === changes) return dense.index;
    const since = dense?.since ?? null;
    const rows = await sql<{ name: string; embedding: number[]; at: string }[]>`
      select name, embedding, created_at::text as at from tool_embeddings
      where model = ${model} and (${since}::timestamptz is null or created_at >= ${since}::timestamptz)`;
    const index = dense?.index ?? new DenseIndex();
    let latest = since;
    for (const r of rows) {
      index.set(r.name, r.embedding.map(Number));
      if (latest === null || r.at > latest) latest = r.at;
    }
    dense = { changes, since: latest, index };
    return index;
  }

  /** The request's vector at unit length; null without an embedder, or when it fails (words alone then). */
  async function embedQuery(query: string): Promise<Float32Array | null> {
    if (!deps.embedder) return null;
    try {
      const [vector] = await deps.embedder.embed([query]);
      embedderDown = false;
      return vector?.length ? normalized(vector) : null;
    } catch (err) {
      embeddingFailed('query embedding failed; searching by words only', {}, err);
      return null;
    }
  }

  /**
   * Tools meaning brought that the words did not shortlist, described as the shortlist describes its
   * own: which field holds each of the request's words (from their postings), no trigram evidence.
   */
  async function describeNearest(names: string[], lexemes: string[], activeOnly: boolean): Promise<Shortlisted[]> {
    const rows = await sql<
      (Omit<Shortlisted, 'sideEffect' | 'inputSchema' | 'evidence' | 'fullText' | 'fields' | 'fuzzy'> & {
        side_effect: 'read' | 'write';
        input_schema: Record<string, unknown> | null;
        fields: Record<string, number> | null;
      })[]
    >`
      select t.name, t.current_version as version, t.description, t.status, t.side_effect, t.destructive,
             v.manifest -> 'inputSchema' as input_schema,
             coalesce(u.invocations, 0)::int as invocations, coalesce(u.successes, 0)::int as successes,
             (select jsonb_object_agg(p.lexeme, p.field) from (
                select lexeme, min(field) as field from lexeme_postings
                where tool = t.name and lexeme = any(${lexemes}::text[]) and field between 1 and 3 group by lexeme) p) as fields
      from unnest(${names}::text[]) as n(name)
      -- one index lookup per tool and table (offset 0 keeps the planner from joining whole tables,
      -- as it would on PGlite, which never has statistics)
      join lateral (select * from tools t where t.name = n.name offset 0) t on true
      join lateral (select manifest from tool_versions v where v.name = t.name and v.version = t.current_version offset 0) v on true
      left join lateral (select invocations, successes from tool_usage u where u.tool = t.name offset 0) u on true
      where ${!activeOnly} or t.status = 'active'`;
    return rows.map(({ side_effect, input_schema, fields, ...r }) => ({
      ...r,
      sideEffect: side_effect,
      inputSchema: input_schema ?? {},
      evidence: 0,
      fullText: 0,
      fields: lexemes.map((l) => fields?.[l] ?? 0),
      fuzzy: lexemes.map(() => 0),
    }));
  }

  return { search, embedTool, saveEmbedding, refreshEmbedding };
}
