import { z } from 'zod';
import type { ToolStatus } from './trust.ts';

/**
 * Reuse-or-forge (seed 002). Retrieval gives each candidate tool a 0..1 similarity; re-ranking
 * orders them by a weighted sum of similarity, success rate and usage; the thresholds then decide:
 *   similarity >= reuseAt               reuse
 *   considerAt <= similarity < reuseAt  reuse only when the request's parameters fit the tool's input schema
 *   similarity <  considerAt            forge a new tool
 * and below confirmBelow a reuse is only proposed, to be confirmed (seed 000: the "let's weather
 * this outage" false positive). Thresholds apply to the similarity, not to the re-ranked score:
 * success and popularity say how good a tool is, not whether it is the tool this request is about —
 * a popular weather tool must not climb over the threshold on a metaphor.
 * What the request wants done weighs too (actionIntent, intentFit): a request to delete, restart,
 * renew or send is never served unattended by a tool that only reads, or that makes another change.
 * So do the values it carries (requestValues, valueFit): a request with a host name and an IP
 * address ranks a tool that takes a host above an equally worded one that takes a CRM record's
 * fields. Like success and usage, value fit orders candidates; it never moves a similarity across
 * a threshold.
 * The numbers the agent uses are the harness's (harness/policy/ranking.ts); this file holds what
 * they mean, the bounds they must stay within, and the functions, which take the policy as a
 * parameter. Pure: workflows import it.
 */

export const rankingPolicySchema = z.object({
  /**
   * The re-ranked score's parts: similarity, smoothed success rate, log-scaled usage, whether
   * the tool does what the request wants done (intentFit: match 1, unknown 0.5, mismatch 0), and
   * the share of the request's values its parameters can take (valueFit; left out of the score,
   * weight and all, when the request carries no values).
   */
  weights: z.object({
    similarity: z.number().min(0),
    successRate: z.number().min(0),
    usage: z.number().min(0),
    intent: z.number().min(0),
    values: z.number().min(0),
  }),
  reuseAt: z.number().min(0).max(1),
  considerAt: z.number().min(0).max(1),
  confirmBelow: z.number().min(0).max(1),
  /**
   * A tool with no history gets this success rate, fading as real runs arrive (a Beta prior worth
   * `priorWeight` runs). Without it a freshly forged tool, which just passed its tests, would rank
   * as if it always failed.
   */
  priorSuccessRate: z.number().min(0).max(1),
  priorWeight: z.number().min(0),
});
export type RankingPolicy = z.infer<typeof rankingPolicySchema>;

export interface Candidate {
  name: string;
  /** 0..1, from retrieval: the request's words (what the decision's bands read) */
  similarity: number;
  /**
   * what the meaning of the request adds to the similarity for the order alone (−1..1, from the dense
   * cosine, policy retrieval.dense: services/catalog/search.ts); absent without embeddings. Decisions never read it.
   */
  meaning?: number;
  invocations?: number;
  successes?: number;
  /** the tool's input JSON Schema, for the parameter check */
  inputSchema?: Record<string, unknown>;
  status?: ToolStatus;
  /** whether the tool does what the request wants done (intentFit); absent = not judged */
  intentFit?: IntentFit;
  /** 0..1, the share of the request's kinds of value the tool's parameters take (valueFit); absent = the request carries none */
  valueFit?: number;
  /** for the reasons: whether the tool changes anything, and what (toolActions) */
  sideEffect?: 'read' | 'write';
  actions?: readonly string[];
}

export type Ranked<C extends Candidate> = C & { score: number; successRate: number; usage: number };

export function smoothedSuccessRate(invocations: number, successes: number, policy: RankingPolicy): number {
  const w = policy.priorWeight;
  const n = invocations + w;
  return n === 0 ? policy.priorSuccessRate : (successes + policy.priorSuccessRate * w) / n;
}

/** Log-scaled against the most used candidate: the 10th use matters more than the 1000th. */
export function usageScore(invocations: number, maxInvocations: number): number {
  if (maxInvocations <= 0) return 0;
  return Math.min(1, Math.log1p(Math.max(0, invocations)) / Math.log1p(maxInvocations));
}

const FIT_VALUE: Record<IntentFit, number> = { match: 1, unknown: 0.5, mismatch: 0 };

/**
 * 0..1. `intent` is the intent fit as a number (match 1, unknown 0.5, mismatch 0); absent counts as
 * a match. `values` is the value fit; absent (a request without values) it is left out of the
 * weighted mean, so such a request's scores are what they were without the part.
 */
export function hybridScore(
  parts: { similarity: number; successRate: number; usage: number; intent?: number; values?: number },
  policy: RankingPolicy,
): number {
  const w = policy.weights;
  const wv = parts.values === undefined ? 0 : w.values;
  const total = w.similarity + w.successRate + w.usage + w.intent + wv;
  return (
    (w.similarity * parts.similarity +
      w.successRate * parts.successRate +
      w.usage * parts.usage +
      w.intent * (parts.intent ?? 1) +
      wv * (parts.values ?? 0)) /
    total
  );
}

/** Best first; ties go to the more similar tool, then by name so the order is stable. */
export function rerank<C extends Candidate>(
  candidates: readonly C[],
  policy: RankingPolicy,
  limit = Number.POSITIVE_INFINITY,
): Ranked<C>[] {
  let maxUse = 0;
  for (const c of candidates) maxUse = Math.max(maxUse, c.invocations ?? 0);
  const ordered = (c: C) => Math.min(1, Math.max(0, c.similarity + (c.meaning ?? 0)));
  // Scored first, copied only as far as asked: search ranks its shortlist once per round of intent
  // judging, and copying every candidate each time was most of what a search allocated.
  const scored = candidates.map((c) => {
    const successRate = smoothedSuccessRate(c.invocations ?? 0, c.successes ?? 0, policy);
    const usage = usageScore(c.invocations ?? 0, maxUse);
    const intent = c.intentFit === undefined ? 1 : FIT_VALUE[c.intentFit];
    const order = ordered(c);
    return {
      c,
      successRate,
      usage,
      order,
      score: hybridScore({ similarity: order, successRate, usage, intent, values: c.valueFit }, policy),
    };
  });
  scored.sort((a, b) => b.score - a.score || b.order - a.order || a.c.name.localeCompare(b.c.name));
  return scored.slice(0, limit).map(({ c, successRate, usage, score }) => ({ ...c, successRate, usage, score }));
}

export function needsConfirmation(similarity: number, policy: RankingPolicy): boolean {
  return similarity < policy.confirmBelow;
}

// ---------------------------------------------------------------------------------------------
// Parameter fit

export interface ParamsFit {
  fit: boolean;
  /** required by the tool, not supplied by the request */
  missing: string[];
  /** supplied by the request, no such parameter on the tool */
  unknown: string[];
  /** supplied with a value of the wrong type */
  mismatched: string[];
}

/** Names compare loosely: an extractor may say zoneId where the schema says zone_id. */
const normalizeName = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, '');

/**
 * Whether a request can drive a tool: `provided` is either the arguments extracted from the
 * request, or just the names of the parameters it supplies. Every required parameter must be
 * supplied, and nothing supplied may lack a parameter to go into — a request that carries
 * information the tool has no slot for is asking for something else.
 */
export function paramsFit(
  inputSchema: Record<string, unknown> | undefined,
  provided: Record<string, unknown> | readonly string[],
): ParamsFit {
  const properties = isRecord(inputSchema?.properties) ? inputSchema.properties : {};
  const required = Array.isArray(inputSchema?.required) ? inputSchema.required.filter((r): r is string => typeof r === 'string') : [];
  const byNorm = new Map(Object.keys(properties).map((k) => [normalizeName(k), k]));

  const supplied = Array.isArray(provided)
    ? new Map<string, unknown>(provided.map((n) => [n, undefined]))
    : new Map(Object.entries(provided).filter(([, v]) => v !== undefined && v !== null));
  const suppliedNorm = new Set([...supplied.keys()].map(normalizeName));

  const missing = required.filter((r) => !suppliedNorm.has(normalizeName(r)));
  const unknown: string[] = [];
  const mismatched: string[] = [];
  for (const [name, value] of supplied) {
    const prop = byNorm.get(normalizeName(name));
    if (prop === undefined) unknown.push(name);
    else if (!Array.isArray(provided) && !valueFits(properties[prop], value)) mismatched.push(name);
  }
  return { fit: missing.length === 0 && unknown.length === 0 && mismatched.length === 0, missing, unknown, mismatched };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A shallow type check. Extractors hand numbers over as strings often enough ("250 EUR") that a
 * numeric string counts as a number; anything deeper is the tool's own input validation's job.
 */
function valueFits(schema: unknown, value: unknown): boolean {
  if (!isRecord(schema)) return true;
  if (Array.isArray(schema.enum))
    return schema.enum.some((e) => e === value || (typeof value === 'string' && String(e).toLowerCase() === value.toLowerCase()));
  const alternatives = [schema.anyOf, schema.oneOf].find(Array.isArray) as unknown[] | undefined;
  if (alternatives) return alternatives.some((alt) => valueFits(alt, value));
  const types = Array.isArray(schema.type) ? schema.type : schema.type === undefined ? [] : [schema.type];
  if (types.length === 0) return true;
  return types.some((t) => typeFits(String(t), value));
}

function typeFits(type: string, value: unknown): boolean {
  switch (type) {
    case 'string':
      return typeof value === 'string' || typeof value === 'number';
    case 'number':
      return typeof value === 'number' || (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value)));
    case 'integer':
      return Number.isInteger(typeof value === 'string' && value.trim() !== '' ? Number(value) : value);
    case 'boolean':
      return typeof value === 'boolean' || value === 'true' || value === 'false';
    case 'array':
      return Array.isArray(value);
    case 'object':
      return isRecord(value);
    case 'null':
      return value === null;
    default:
      return true;
  }
}

// ---------------------------------------------------------------------------------------------
// The decision

export type DecisionAction = 'reuse' | 'forge' | 'confirm';

export interface Decision {
  action: DecisionAction;
  tool?: string;
  /** the re-ranked score of the chosen (or, when forging, the best) candidate; 0 with no candidates */
  score: number;
  similarity: number;
  reason: string;
  paramsFit?: ParamsFit;
}

export interface DecideOptions {
  /** what the request supplies: extracted arguments, or parameter names. Absent = not checked. */
  args?: Record<string, unknown> | readonly string[];
  policy: RankingPolicy;
  /** what the request wants done (actionIntent), for the reasons; each candidate carries its intentFit */
  intent?: ActionIntent;
}

const pct = (x: number) => x.toFixed(2);

export function decide(candidates: readonly Candidate[], opts: DecideOptions): Decision {
  const { policy } = opts;
  // Quarantined and archived tools are never reused: a replacement gets forged instead.
  const ranked = rerank(
    candidates.filter((c) => (c.status ?? 'active') === 'active'),
    policy,
  );
  const best = ranked[0];
  if (!best) return { action: 'forge', score: 0, similarity: 0, reason: 'no registered tool matches' };

  const fitOf = (c: Candidate) => (opts.args === undefined ? undefined : paramsFit(c.inputSchema, opts.args));
  let misfitStrong: { c: Ranked<Candidate>; fit: ParamsFit } | undefined;
  // The most similar tool that does not do what the request wants done: named in the reason to forge.
  let mismatched: Ranked<Candidate> | undefined;
  const wants = opts.intent?.actions.length ? opts.intent.actions.join(' and ') : 'make a change';

  for (const c of ranked) {
    // A tool that reads where a change is asked for, or makes another change, is never picked
    // without the model or a person choosing it (the loop still offers it: listing may come first).
    if (c.intentFit === 'mismatch') {
      if (!mismatched || c.similarity > mismatched.similarity) mismatched = c;
      continue;
    }
    const fit = fitOf(c);
    const sim = pct(c.similarity);
    if (c.similarity >= policy.reuseAt) {
      if (fit && !fit.fit) {
        misfitStrong ??= { c, fit };
        continue;
      }
      // A write tool for a request whose action is unclear (or a write tool whose action is): a person says.
      const unsure = c.intentFit === 'unknown';
      const confirm = c.similarity < policy.confirmBelow || unsure;
      return {
        action: confirm ? 'confirm' : 'reuse',
        tool: c.name,
        score: c.score,
        similarity: c.similarity,
        reason: unsure
          ? `${c.name} matches (similarity ${sim}) and makes changes, but the request does not say that is what it wants done: confirm before use`
          : confirm
            ? `${c.name} matches (similarity ${sim}) but below ${pct(policy.confirmBelow)}: confirm before use`
            : `${c.name} matches with similarity ${sim}`,
        ...(fit ? { paramsFit: fit } : {}),
      };
    }
    if (c.similarity >= policy.considerAt) {
      if (fit?.fit === false) continue;
      return {
        action: 'confirm',
        tool: c.name,
        score: c.score,
        similarity: c.similarity,
        reason: fit
          ? `${c.name} is a medium match (similarity ${sim}) and the parameters fit: confirm before use`
          : `${c.name} is a medium match (similarity ${sim}); parameters were not checked: confirm before use`,
        ...(fit ? { paramsFit: fit } : {}),
      };
    }
  }

  // A strong match whose parameters do not fit is not run unattended, and not discarded either:
  // a person may supply what is missing.
  if (misfitStrong) {
    const { c, fit } = misfitStrong;
    return {
      action: 'confirm',
      tool: c.name,
      score: c.score,
      similarity: c.similarity,
      reason: `${c.name} matches (similarity ${pct(c.similarity)}) but the parameters do not fit (${describeFit(fit)}): confirm before use`,
      paramsFit: fit,
    };
  }
  const top = [...ranked].sort((a, b) => b.similarity - a.similarity)[0]!;
  const why =
    mismatched && mismatched.similarity >= policy.considerAt
      ? `${mismatched.name} matches (similarity ${pct(mismatched.similarity)}) but the request wants to ${wants}, ` +
        `which it does not do (${mismatched.sideEffect === 'read' ? 'it only reads' : `it does ${mismatched.actions?.length ? mismatched.actions.join(' and ') : 'something else'}`})`
      : top.similarity >= policy.considerAt
        ? `medium matches (best ${top.name} at ${pct(top.similarity)}) but the parameters fit none`
        : `best match ${top.name} has similarity ${pct(top.similarity)}, below ${pct(policy.considerAt)}`;
  return { action: 'forge', score: top.score, similarity: top.similarity, reason: `${why}: forge a new tool` };
}

export function describeFit(fit: ParamsFit): string {
  const parts = [
    fit.missing.length ? `missing ${fit.missing.join(', ')}` : '',
    fit.unknown.length ? `no parameter for ${fit.unknown.join(', ')}` : '',
    fit.mismatched.length ? `wrong type for ${fit.mismatched.join(', ')}` : '',
  ].filter(Boolean);
  return parts.join('; ') || 'fits';
}

// ---------------------------------------------------------------------------------------------
// Retrieval similarity (no embeddings): how strongly the request's words point at one tool.

export const typoPolicySchema = z.object({
  /** words shorter than this are never corrected: "dns" and "dsn" are both plausible */
  minLength: z.number().int().min(3),
  /**
   * a wrong letter (rather than a swapped, missing or extra one) is a typo only from this length:
   * "book" is a word, not a typo of "look"
   */
  substitutionFrom: z.number().int().min(3),
});
export type TypoPolicy = z.infer<typeof typoPolicySchema>;

export const lexicalPolicySchema = z.object({
  /**
   * Virtual tools that contain none of the request's words, added to the catalog when weighing
   * words. Without them a one-tool catalog makes every word look common (and worthless).
   */
  priorDocuments: z.number().min(0),
  /** how much a word counts where it was found: the tool's name, its description, its parameters */
  fieldWeights: z.object({ name: z.number(), description: z.number(), params: z.number() }),
  /** a misspelled or differently inflected word counts when its trigram similarity reaches this … */
  fuzzyMin: z.number().min(0).max(1),
  /** … at this fraction of its similarity */
  fuzzyWeight: z.number().min(0).max(1),
  /**
   * Evidence turns into a 0..1 similarity as 1 - exp(-steepness · evidence), where a word found in
   * exactly one tool weighs 1 (the harness's value says which band one word lands in).
   */
  steepness: z.number().positive(),
  /**
   * Words of other languages and common short forms, and the catalog's words for them ("wetter":
   * "weather", "löschen": "delete", "cert": "certificate"); keys are folded (foldWord). Applied to
   * the request before it is searched, and to its verbs (actionIntent).
   */
  aliases: z.record(z.string().min(1), z.string().min(1)),
  /** a word the catalog does not know, one letter away from a word it does, is read as that word */
  typo: typoPolicySchema,
});
export type LexicalPolicy = z.infer<typeof lexicalPolicySchema>;

/**
 * A word's weight by how many catalog tools use it (inverse document frequency): 1 for a word only
 * one tool uses, less the more tools share it. Scaled so that 1 means the same whatever the
 * catalog's size, which keeps the thresholds meaningful as the catalog grows.
 */
export function termWeight(docFrequency: number, catalogSize: number, policy: LexicalPolicy): number {
  const n = catalogSize + policy.priorDocuments;
  return Math.min(1, Math.log(1 + n / (docFrequency + 1)) / Math.log(1 + n / 2));
}

export interface TermEvidence {
  /** catalog tools whose index holds this word */
  docFrequency: number;
  inName: boolean;
  inDescription: boolean;
  inParams: boolean;
  /** best trigram word similarity of the raw word against the tool's name + description, 0..1 */
  fuzzy: number;
}

/** 0..1: the summed weight of the request's words found in the tool, saturating. */
export function lexicalSimilarity(terms: readonly TermEvidence[], catalogSize: number, p: LexicalPolicy): number {
  let evidence = 0;
  for (const t of terms) {
    const exact = t.inName ? p.fieldWeights.name : t.inDescription ? p.fieldWeights.description : t.inParams ? p.fieldWeights.params : 0;
    const fuzzy = t.fuzzy >= p.fuzzyMin ? p.fuzzyWeight * t.fuzzy : 0;
    evidence += termWeight(t.docFrequency, catalogSize, p) * Math.max(exact, fuzzy);
  }
  return 1 - Math.exp(-p.steepness * evidence);
}

/** Cosine similarity clamped to 0..1 (opposite directions are as useless as orthogonal ones). */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length || a.length === 0) return 0;
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na === 0 || nb === 0 ? 0 : Math.max(0, dot / Math.sqrt(na * nb));
}

// ---------------------------------------------------------------------------------------------
// What a request wants done: read, or which change (delete, restart, renew, send, …)

export const intentPolicySchema = z.object({
  /**
   * Kinds of change, each with the verbs that ask for it (base forms; phrasal verbs as 'get rid
   * of'). `destructive` kinds lose or hand away something. A verb followed by one of `notBefore`
   * does not ask for the change ("tell me", "send us": the person asks to be told).
   */
  actions: z.record(
    z.string().regex(/^[a-z][a-z_]*$/),
    z.object({
      destructive: z.boolean(),
      verbs: z.array(z.string().min(2)).min(1),
      notBefore: z.array(z.string().min(1)).default([]),
    }),
  ),
  /** verbs and question words that ask only to see something: list, show, check, what, is, … */
  reads: z.array(z.string().min(1)),
  /**
   * Words after which a verb is still an instruction (please, can you, to, and, then, …). A verb
   * counts only at the start of a clause or after one of these: "the domain transfer status" and
   * "a restart loop" are things, not instructions.
   */
  leadIns: z.array(z.string().min(1)),
  /** words that cancel the verb after them ("don't delete anything") */
  negations: z.array(z.string().min(1)),
});
export type IntentPolicy = z.infer<typeof intentPolicySchema>;

export interface ActionIntent {
  /**
   * destructive/write: a change was asked for; read: only to see something; unknown: neither
   * could be told ("forecast for Oslo on Friday") — a read tool fits it, a write tool is confirmed.
   */
  kind: 'read' | 'write' | 'destructive' | 'unknown';
  /** the kinds of change asked for, in the policy's names */
  actions: string[];
  /** the words that asked for them, as written (normalised) */
  verbs: string[];
}

/** How a tool's own action relates to what the request wants done. */
export type IntentFit = 'match' | 'unknown' | 'mismatch';

/** Lower case, accents stripped: "Löschen" and "loschen", "météo" and "meteo" are one word to the vocabulary. */
export function foldWord(word: string): string {
  return word.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase().replace(/[’‘`]/g, "'");
}

interface Token {
  word: string;
  /** the first word of a clause (after the start, punctuation, or a quoted span) */
  clauseStart: boolean;
  /** came from the alias table (another language): such verbs count wherever they stand */
  foreign: boolean;
}

/**
 * The request's words, with clause starts marked. Quoted spans are content (a message's text),
 * not instructions, and are left out; "'s", "'re", "'d" … are cut so "what's" is "what".
 */
function tokens(text: string, aliases: Readonly<Record<string, string>>): Token[] {
  const unquoted = text.replace(/"[^"]*"|“[^”]*”|«[^»]*»|(^|[\s(])'[^']*'(?=$|[\s.,;:!?)])/g, '$1 . ');
  const out: Token[] = [];
  let clauseStart = true;
  // A hyphenated or underscored word ("my-first-post", "_acme-challenge") is one token: a name, not a verb.
  for (const m of foldWord(unquoted).matchAll(/[\p{L}\p{N}]+(?:[-_'][\p{L}\p{N}]+)*|[.,;:!?()[\]{}<>|—–]|\s-\s|->|→/gu)) {
    const raw = m[0];
    if (!/^[\p{L}\p{N}]/u.test(raw)) {
      clauseStart = true;
      continue;
    }
    const word = raw.replace(/'(s|re|ll|d|ve|m)$/, '');
    const alias = aliases[word];
    if (alias !== undefined) {
      const parts = alias.split(/\s+/).filter(Boolean);
      parts.forEach((w, i) => {
        out.push({ word: w, clauseStart: clauseStart && i === 0, foreign: true });
      });
    } else {
      out.push({ word, clauseStart, foreign: false });
    }
    clauseStart = false;
  }
  return out;
}

/** The forms a verb takes after "to be": deleted, stopped, transferred, … (regular ones). */
function participles(verb: string): string[] {
  if (verb.endsWith('e')) return [`${verb}d`];
  if (/[^aeiou]y$/.test(verb)) return [`${verb.slice(0, -1)}ied`];
  const forms = [`${verb}ed`];
  if (/[^aeiou][aeiou][^aeiouwxy]$/.test(verb)) forms.push(`${verb}${verb.at(-1)}ed`);
  return forms;
}

interface Phrase {
  words: string[];
  action: string | null; // null: a read
  notBefore: readonly string[];
  participle: boolean;
}

interface IntentTables {
  /** by first word, longest first: a request's every word is looked up, and most start none */
  phrases: Map<string, Phrase[]>;
  leadIns: Set<string>;
  negations: Set<string>;
  destructive: Set<string>;
}

/** Per policy object: a search asks it of every write candidate, and the policy does not change under it. */
const tablesByPolicy = new WeakMap<IntentPolicy, IntentTables>();

function intentTables(policy: IntentPolicy): IntentTables {
  let t = tablesByPolicy.get(policy);
  if (!t) {
    t = {
      phrases: byFirstWord(phrases(policy)),
      leadIns: new Set(policy.leadIns.map(foldWord)),
      negations: new Set(policy.negations.map(foldWord)),
      destructive: new Set(
        Object.entries(policy.actions)
          .filter(([, d]) => d.destructive)
          .map(([a]) => a),
      ),
    };
    tablesByPolicy.set(policy, t);
  }
  return t;
}

function phrases(policy: IntentPolicy): Phrase[] {
  const out: Phrase[] = [];
  for (const [action, def] of Object.entries(policy.actions)) {
    for (const verb of def.verbs) {
      const words = foldWord(verb).split(/\s+/);
      out.push({ words, action, notBefore: def.notBefore.map(foldWord), participle: false });
      const last = words.length === 1 ? words[0]! : null;
      if (last) for (const p of participles(last)) out.push({ words: [p], action, notBefore: [], participle: true });
    }
  }
  for (const r of policy.reads) out.push({ words: foldWord(r).split(/\s+/), action: null, notBefore: [], participle: false });
  // Longest first: "set up" (create) before "set" (update).
  return out.sort((a, b) => b.words.length - a.words.length);
}

function byFirstWord(all: Phrase[]): Map<string, Phrase[]> {
  const out = new Map<string, Phrase[]>();
  for (const p of all) {
    const first = p.words[0]!;
    const list = out.get(first);
    if (list) list.push(p);
    else out.set(first, [p]);
  }
  return out;
}

/** Whether the tokens from `at` on are the phrase's words. */
function startsWith(toks: readonly Token[], at: number, words: readonly string[]): boolean {
  for (let k = 1; k < words.length; k++) if (toks[at + k]?.word !== words[k]) return false;
  return true;
}

/**
 * What the request wants done, from its verbs (the vocabulary is the harness's). A verb counts as
 * an instruction at the start of a clause or after a lead-in ("please", "can you", "to", "and");
 * elsewhere the same word is usually a thing ("the domain transfer", "restart loops", "blog
 * posts"). After "to be" its participle counts too ("needs to be deleted"). A word from the alias
 * table (another language) counts wherever it stands: German and Dutch put the verb last. Any
 * change asked for outweighs a read: "check the logs and restart it" asks for a restart.
 */
export function actionIntent(text: string, policy: IntentPolicy, aliases: Readonly<Record<string, string>> = {}): ActionIntent {
  const toks = tokens(text, aliases);
  const { phrases: byFirst, leadIns, negations, destructive } = intentTables(policy);
  const actions: string[] = [];
  const verbs: string[] = [];
  let read = false;

  for (let i = 0; i < toks.length; i++) {
    const t = toks[i]!;
    const prev = toks[i - 1]?.word;
    const prev2 = toks[i - 2]?.word;
    const candidates = byFirst.get(t.word);
    if (!candidates) continue;
    let phrase: Phrase | undefined;
    for (const p of candidates)
      if (startsWith(toks, i, p.words)) {
        phrase = p;
        break;
      }
    if (!phrase) continue;
    if (prev !== undefined && negations.has(prev)) continue;
    const positioned = phrase.participle
      ? prev === 'be' && prev2 !== undefined && (leadIns.has(prev2) || prev2 === 'to')
      : t.clauseStart || t.foreign || (prev !== undefined && leadIns.has(prev));
    if (!positioned) continue;
    const next = toks[i + phrase.words.length]?.word;
    if (phrase.action === null || (next !== undefined && phrase.notBefore.includes(next))) {
      read = true;
      continue;
    }
    if (!actions.includes(phrase.action)) actions.push(phrase.action);
    verbs.push(phrase.words.join(' '));
    i += phrase.words.length - 1;
  }
  const kind = actions.length ? (actions.some((a) => destructive.has(a)) ? 'destructive' : 'write') : read ? 'read' : 'unknown';
  return { kind, actions, verbs };
}

/**
 * What a tool does, in the same vocabulary: nothing for a read tool; for a write tool the changes
 * its name names (dns_record_create, container_restart, slack_post_message: a tool's name is
 * chosen, its description's verbs may be an aside), else those its description opens with.
 */
export function toolActions(
  tool: { name: string; description: string; sideEffect: 'read' | 'write' },
  policy: IntentPolicy,
  aliases: Readonly<Record<string, string>> = {},
): string[] {
  if (tool.sideEffect === 'read') return [];
  const words = tool.name.split(/[_\W]+/).filter(Boolean);
  const fromName = new Set<string>();
  // Each name word as if it opened a clause: the name has no grammar to go by.
  for (const w of words) for (const a of actionIntent(w, policy, aliases).actions) fromName.add(a);
  if (fromName.size) return [...fromName];
  const firstSentence = tool.description.split(/(?<=[.!?])\s/)[0] ?? '';
  return actionIntent(firstSentence, policy, aliases).actions;
}

/**
 * Whether a tool does what the request wants done.
 * - a read tool: matches a read or an unclear request; mismatches a request for a change
 * - a write tool: matches a request for a change it makes; mismatches one for another change or a
 *   request only to see something; unknown when the request's or the tool's action is unclear
 */
export function intentFit(intent: ActionIntent, tool: { sideEffect: 'read' | 'write'; actions: readonly string[] }): IntentFit {
  const wantsChange = intent.kind === 'write' || intent.kind === 'destructive';
  if (tool.sideEffect === 'read') return wantsChange ? 'mismatch' : 'match';
  if (intent.kind === 'read') return 'mismatch';
  if (!wantsChange || tool.actions.length === 0) return 'unknown';
  return tool.actions.some((a) => intent.actions.includes(a)) ? 'match' : 'mismatch';
}

// ---------------------------------------------------------------------------------------------
// One-letter typos

/** How `typed` differs from `word` by one slip, or null: Damerau's four edits, at most one. */
export function oneSlip(typed: string, word: string): 'swap' | 'missing' | 'extra' | 'wrong' | null {
  if (typed === word) return null;
  // Without allocating: a search compares an unknown word with the whole vocabulary.
  if (typed.length === word.length) {
    let first = -1;
    let second = -1;
    for (let i = 0; i < typed.length; i++) {
      if (typed.charCodeAt(i) === word.charCodeAt(i)) continue;
      if (first < 0) first = i;
      else if (second < 0) second = i;
      else return null;
    }
    if (second < 0) return 'wrong';
    const swapped = second === first + 1 && typed[first] === word[second] && typed[second] === word[first];
    return swapped ? 'swap' : null;
  }
  const typedShorter = typed.length < word.length;
  const short = typedShorter ? typed : word;
  const long = typedShorter ? word : typed;
  if (long.length - short.length !== 1) return null;
  let i = 0;
  while (i < short.length && short.charCodeAt(i) === long.charCodeAt(i)) i++;
  for (let j = i; j < short.length; j++) if (short.charCodeAt(j) !== long.charCodeAt(j + 1)) return null;
  return typedShorter ? 'missing' : 'extra';
}

/**
 * The catalog word a typed word is a one-letter slip of, or null. Only for words the catalog does
 * not know (the caller checks): a real word is never "corrected". Among several, the word more
 * tools use wins; a tie between equals is left alone (no guess).
 */
export function correctTypo(typed: string, vocabulary: ReadonlyMap<string, number>, policy: TypoPolicy): string | null {
  if (typed.length < policy.minLength || !/^\p{L}+$/u.test(typed)) return null;
  let best: string | null = null;
  let bestUses = 0;
  let tie = false;
  // forEach, not for…of: no [word, uses] pair allocated per word of the vocabulary
  vocabulary.forEach((uses, word) => {
    if (Math.abs(word.length - typed.length) > 1 || word.length < policy.minLength) return;
    const slip = oneSlip(typed, word);
    if (slip === null || (slip === 'wrong' && typed.length < policy.substitutionFrom)) return;
    // "sends", "deleted": an inflection of a word, not a slip
    if (slip === 'extra' && typed.startsWith(word) && /[sd]$/.test(typed)) return;
    if (best === null || uses > bestUses) {
      best = word;
      bestUses = uses;
      tie = false;
    } else if (uses === bestUses) tie = true;
  });
  return best !== null && !tie ? best : null;
}

// ---------------------------------------------------------------------------------------------
// The request's values: what in it could fill a tool's parameters

/**
 * Kinds of value a request can carry that are recognisable by their shape alone, whatever the
 * request is about: a URL, an e-mail address, an IP address, a host name, a time (a date, a
 * weekday, "tomorrow", "last week"), an ISO 4217 currency code, a repository ("owner/name"), a
 * version ("v5.0.0", "1.24.0").
 */
export type ValueKind = 'url' | 'email' | 'ip' | 'host' | 'time' | 'currency' | 'repo' | 'version';

export interface RequestValue {
  kind: ValueKind;
  text: string;
}

/**
 * The ISO 4217 codes of the currencies in common use (upper case only: "CAD" is a currency, "cad"
 * a word). A closed list, like the codes themselves; a code not here is read as a word.
 */
const CURRENCY_CODES = new Set(
  (
    'AED ARS AUD BDT BGN BHD BRL CAD CHF CLP CNY COP CZK DKK EGP EUR GBP HKD HUF IDR ILS INR ISK JPY KES KRW KWD MAD MXN MYR ' +
    'NGN NOK NZD PEN PHP PKR PLN QAR RON RSD RUB SAR SEK SGD THB TRY TWD UAH USD VND ZAR'
  ).split(' '),
);
/** Name endings that make a dotted word a file, not a host ("contract.pdf", "next.js"). */
const FILE_EXTENSIONS = new Set(
  'pdf doc docx xls xlsx ppt pptx csv tsv txt md json yaml yml xml html htm js mjs cjs ts tsx jsx py rb go rs java sh zip tar gz tgz png jpg jpeg gif svg webp mp3 mp4 mov log'.split(
    ' ',
  ),
);
/**
 * Pairs written with a slash that are words, not "owner/name" (lower case): a closed list of the
 * common ones, like the currency codes. A pair not here with a letter on both sides is a repository.
 */
const SLASH_WORDS = new Set(
  (
    'and/or either/or w/o w/ i/o km/h m/s tcp/ip read/write input/output client/server yes/no on/off true/false he/she his/her ' +
    's/he him/her pass/fail win/loss r/w n/a a/b cc/bcc to/from from/to before/after pros/cons'
  ).split(' '),
);
const WEEKDAYS = 'monday|tuesday|wednesday|thursday|friday|saturday|sunday';
const MONTHS = 'january|february|march|april|may|june|july|august|september|october|november|december';
const PERIODS = 'day|days|week|weeks|weekend|month|months|quarter|year|years';
/** Times by their shape: dates, weekdays, dated months, days relative to today, periods counted from it. */
const TIME_PATTERNS: RegExp[] = [
  /\b\d{4}-\d{2}-\d{2}(?:[t ]\d{2}:\d{2}(?::\d{2})?)?/giu,
  /\b\d{1,2}[./]\d{1,2}[./]\d{2,4}\b/gu,
  new RegExp(`\\b(?:${WEEKDAYS})\\b`, 'giu'),
  new RegExp(`\\b(?:\\d{1,2}(?:st|nd|rd|th)?\\s+(?:${MONTHS})|(?:${MONTHS})\\s+\\d{1,4}(?:st|nd|rd|th)?)\\b`, 'giu'),
  /\b(?:today|tomorrow|yesterday|tonight)\b/giu,
  new RegExp(`\\b(?:this|next|last|past|coming|previous)\\s+(?:\\d+\\s+|few\\s+|two\\s+|three\\s+)?(?:${PERIODS})\\b`, 'giu'),
  new RegExp(`\\b\\d+\\s+(?:${PERIODS})\\s+(?:ago|ahead)\\b`, 'giu'),
];

/**
 * The values in a request (or in a parameter's description: "zone name, e.g. example.com"), by
 * shape. URLs and e-mail addresses are taken first, so the host inside them is not read again as
 * a host of its own; "owner/name" is a repository (GitHub's shape: an owner of letters, digits and
 * hyphens; a name that may hold dots, as vercel/next.js), a longer path is none, and neither is a
 * host; "v5", "v2.1.0-rc.1" and three-part numbers are versions, not hosts; a dotted word ending in
 * a file extension is a file. Quoted text is kept: a host in quotes is still a host.
 */
export function requestValues(text: string): RequestValue[] {
  const out: RequestValue[] = [];
  let rest = text;
  const take = (kind: ValueKind, re: RegExp, keep: (m: string) => boolean = () => true) => {
    rest = rest.replace(re, (m) => {
      if (!keep(m)) return m;
      out.push({ kind, text: m.replace(/[.,;:!?)]+$/, '') });
      return ' ';
    });
  };
  take('url', /\b[a-z][a-z0-9+.-]*:\/\/[^\s<>"']+/giu);
  take('email', /[\p{L}\p{N}._%+-]+@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)+/gu);
  take('ip', /(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])/gu, (m) => m.split('.').every((o) => Number(o) <= 255));
  // IPv6: "::" or all eight groups ("10:30:00" is a time)
  take(
    'ip',
    /(?<![\w:])(?=[0-9a-f:]*[0-9a-f])[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}(?![\w:])/giu,
    (m) => m.includes('::') || m.split(':').length === 8,
  );
  take('repo', /(?<![\p{L}\p{N}._/@:-])[a-z0-9][a-z0-9-]{0,38}\/[\w.-]*[a-z0-9_-](?![\p{L}\p{N}_/-]|\.[\p{L}\p{N}])/giu, (m) => {
    const [owner, name] = m.split('/') as [string, string];
    // "src/index.ts" is a file; "vercel/next.js" a repository, as projects named "*.js" are
    const ext = name.includes('.') ? name.slice(name.lastIndexOf('.') + 1).toLowerCase() : '';
    return /\p{L}/u.test(owner) && /\p{L}/u.test(name) && !SLASH_WORDS.has(m.toLowerCase()) && (ext === 'js' || !FILE_EXTENSIONS.has(ext));
  });
  // what is left with a slash: paths ("a/b/c", "/var/log"), dates, fractions, "and/or"
  rest = rest.replace(/[\p{L}\p{N}._-]*\/[\p{L}\p{N}._/-]*/gu, ' ');
  take(
    'host',
    /(?<![\p{L}\p{N}._@-])(?:[\p{L}\p{N}_](?:[\p{L}\p{N}_-]*[\p{L}\p{N}])?\.)+\p{L}{2,24}(?![\p{L}\p{N}_-]|\.[\p{L}\p{N}])/gu,
    (m) => !FILE_EXTENSIONS.has(m.slice(m.lastIndexOf('.') + 1).toLowerCase()),
  );
  take('currency', /(?<![\p{L}\p{N}])[A-Z]{3}(?![\p{L}\p{N}])/gu, (m) => CURRENCY_CODES.has(m));
  take('currency', /[€£¥$₣₹]/gu);
  for (const re of TIME_PATTERNS) take('time', re);
  // after the dates ("12.05.2024") and hosts ("v6.example.com")
  take(
    'version',
    /(?<![\p{L}\p{N}._-])(?:v\d+(?:\.\d+){0,3}|\d+\.\d+\.\d+)(?:-[0-9a-z]+(?:\.[0-9a-z]+)*)?(?![\p{L}\p{N}_-]|\.[\p{L}\p{N}])/giu,
  );
  return out;
}

/**
 * Parameter name words that say what a parameter takes, whatever the tool ("hostName", "due_date",
 * "notifyEmail"). A count of days ("days": 3) is a number, not a time: "tomorrow" does not fill it.
 */
const NAME_KINDS: Record<string, ValueKind[]> = {
  url: ['url', 'host'],
  uri: ['url', 'host'],
  link: ['url'],
  href: ['url'],
  endpoint: ['url'],
  website: ['url', 'host'],
  homepage: ['url', 'host'],
  host: ['host', 'ip', 'url'],
  hostname: ['host', 'ip', 'url'],
  domain: ['host'],
  fqdn: ['host'],
  zone: ['host'],
  ip: ['ip'],
  email: ['email'],
  mail: ['email'],
  date: ['time'],
  time: ['time'],
  datetime: ['time'],
  timestamp: ['time'],
  since: ['time'],
  until: ['time'],
  deadline: ['time'],
  currency: ['currency'],
  repo: ['repo'],
  repository: ['repo'],
  version: ['version'],
  // a git tag names a version ("v5.0.0"); a label parameter takes any word anyway
  tag: ['version'],
};
/** JSON Schema formats (draft 2020-12 and OpenAPI's) and the values that fill them. */
const FORMAT_KINDS: Record<string, ValueKind[]> = {
  uri: ['url', 'host'],
  url: ['url', 'host'],
  iri: ['url', 'host'],
  'uri-reference': ['url'],
  hostname: ['host', 'ip', 'url'],
  'idn-hostname': ['host', 'ip', 'url'],
  ipv4: ['ip'],
  ipv6: ['ip'],
  email: ['email'],
  'idn-email': ['email'],
  date: ['time'],
  'date-time': ['time'],
  time: ['time'],
  duration: ['time'],
};

/** What a tool's parameters can take (valueSlots): kinds of value, and patterns to test values against. */
export interface ValueSlots {
  kinds: ReadonlySet<ValueKind>;
  patterns: readonly RegExp[];
}

/** Per schema object: reading a schema's descriptions for values is the costly part, and a schema does not change. */
const slotsBySchema = new WeakMap<object, ValueSlots>();

/**
 * What kinds of value a tool's parameters take, from what its schema declares of each: its
 * `format`, its name's words, the values its description, `examples` or `default` show, and its
 * `pattern` (kept to test the request's values against). Nested objects and array items count: a
 * meeting's attendees' e-mail addresses are the meeting tool's to take.
 */
export function valueSlots(inputSchema: Record<string, unknown> | undefined): ValueSlots {
  if (!inputSchema) return { kinds: new Set(), patterns: [] };
  const cached = slotsBySchema.get(inputSchema);
  if (cached) return cached;
  const kinds = new Set<ValueKind>();
  const patterns: RegExp[] = [];
  const visit = (name: string, schema: unknown, depth: number) => {
    if (!isRecord(schema) || depth > 4) return;
    const words = name
      .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
      .toLowerCase()
      .split(/[^a-z0-9]+/);
    for (const w of words) for (const k of NAME_KINDS[w] ?? []) kinds.add(k);
    if (typeof schema.format === 'string') for (const k of FORMAT_KINDS[schema.format] ?? []) kinds.add(k);
    const shown = [schema.description, ...(Array.isArray(schema.examples) ? schema.examples : []), schema.default];
    for (const s of shown) if (typeof s === 'string') for (const v of requestValues(s)) kinds.add(v.kind);
    if (typeof schema.pattern === 'string')
      try {
        patterns.push(new RegExp(schema.pattern, 'u'));
      } catch {
        // a pattern JavaScript cannot read says nothing here; the tool's own validation still applies
      }
    if (isRecord(schema.properties)) for (const [k, v] of Object.entries(schema.properties)) visit(k, v, depth + 1);
    if (isRecord(schema.items)) visit(name, schema.items, depth + 1);
    for (const alt of [schema.anyOf, schema.oneOf].filter(Array.isArray) as unknown[][]) for (const a of alt) visit(name, a, depth + 1);
  };
  visit('', inputSchema, 0);
  const slots = { kinds, patterns };
  slotsBySchema.set(inputSchema, slots);
  return slots;
}

/**
 * 0..1: the share of the kinds of value the request carries (requestValues) that the tool has a
 * parameter for; undefined when it carries none. Evidence of the same sort as paramsFit's: a
 * request that brings a host name and an IP address is about a tool that takes them, and a tool
 * with no slot for them (a CRM's `record_create` beside `dns_record_create`, both "create" and
 * "record") is asking for something else. By kind, not by count: two host names are one kind.
 * A parameter whose schema says nothing of what it takes (`value: string`) fills nothing: any
 * string would do, so it is no evidence.
 */
export function valueFit(inputSchema: Record<string, unknown> | undefined, values: readonly RequestValue[]): number | undefined {
  return values.length === 0 ? undefined : slotsFit(valueSlots(inputSchema), values);
}

/** valueFit from a tool's slots (valueSlots), for a caller that keeps them per tool version. */
export function slotsFit(slots: ValueSlots, values: readonly RequestValue[]): number | undefined {
  if (values.length === 0) return undefined;
  const present = new Set(values.map((v) => v.kind));
  let filled = 0;
  for (const kind of present)
    if (slots.kinds.has(kind) || values.some((v) => v.kind === kind && slots.patterns.some((p) => p.test(v.text)))) filled++;
  return filled / present.size;
}
