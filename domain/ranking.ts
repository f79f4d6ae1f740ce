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
 * The numbers the agent uses are the harness's (harness/policy/ranking.ts); this file holds what
 * they mean, the bounds they must stay within, and the functions, which take the policy as a
 * parameter. Pure: workflows import it.
 */

export const rankingPolicySchema = z.object({
  weights: z.object({ similarity: z.number().min(0), successRate: z.number().min(0), usage: z.number().min(0) }),
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
  /** 0..1, from retrieval */
  similarity: number;
  invocations?: number;
  successes?: number;
  /** the tool's input JSON Schema, for the parameter check */
  inputSchema?: Record<string, unknown>;
  status?: ToolStatus;
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

export function hybridScore(parts: { similarity: number; successRate: number; usage: number }, policy: RankingPolicy): number {
  const w = policy.weights;
  const total = w.similarity + w.successRate + w.usage;
  return (w.similarity * parts.similarity + w.successRate * parts.successRate + w.usage * parts.usage) / total;
}

/** Best first; ties go to the more similar tool, then by name so the order is stable. */
export function rerank<C extends Candidate>(candidates: readonly C[], policy: RankingPolicy): Ranked<C>[] {
  const maxUse = Math.max(0, ...candidates.map((c) => c.invocations ?? 0));
  return candidates
    .map((c) => {
      const successRate = smoothedSuccessRate(c.invocations ?? 0, c.successes ?? 0, policy);
      const usage = usageScore(c.invocations ?? 0, maxUse);
      return { ...c, successRate, usage, score: hybridScore({ similarity: c.similarity, successRate, usage }, policy) };
    })
    .sort((a, b) => b.score - a.score || b.similarity - a.similarity || a.name.localeCompare(b.name));
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

  for (const c of ranked) {
    const fit = fitOf(c);
    const sim = pct(c.similarity);
    if (c.similarity >= policy.reuseAt) {
      if (fit && !fit.fit) {
        misfitStrong ??= { c, fit };
        continue;
      }
      const confirm = c.similarity < policy.confirmBelow;
      return {
        action: confirm ? 'confirm' : 'reuse',
        tool: c.name,
        score: c.score,
        similarity: c.similarity,
        reason: confirm
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
    top.similarity >= policy.considerAt
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
export function cosine(a: readonly number[], b: readonly number[]): number {
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
