import type { LexicalPolicy, RankingPolicy } from '../../domain/ranking.ts';

/**
 * Reuse-or-forge (seed 002). Re-ranking orders candidates by
 *   0.7 similarity + 0.2 success rate + 0.1 usage
 * and the thresholds, on the similarity, decide:
 *   similarity >= 0.80         reuse
 *   0.65 <= similarity < 0.80  reuse only when the request's parameters fit the tool's input schema
 *   similarity <  0.65         forge a new tool
 * and below 0.85 a reuse is only proposed, to be confirmed (seed 000: the "let's weather this
 * outage" false positive). What each number means, and the bounds it must stay within, are
 * domain/ranking.ts's.
 */
export const ranking: RankingPolicy = {
  weights: { similarity: 0.7, successRate: 0.2, usage: 0.1 },
  reuseAt: 0.8,
  considerAt: 0.65,
  confirmBelow: 0.85,
  /** a freshly forged tool just passed its tests: it starts as if 80% of runs succeeded, worth 2 runs */
  priorSuccessRate: 0.8,
  priorWeight: 2,
};

/** Retrieval similarity from the request's words (no embeddings). */
export const lexical: LexicalPolicy = {
  priorDocuments: 8,
  fieldWeights: { name: 1, description: 0.8, params: 0.6 },
  fuzzyMin: 0.7,
  fuzzyWeight: 0.7,
  /**
   * At 1.45 a word found in exactly one tool alone reaches the 0.65..0.80 band — 0.69 in the
   * description, 0.77 in the name — where the parameters must fit too; it takes two to clear 0.80
   * (0.90). That is what keeps "let's weather this outage" from a reuse: one word, nothing to fill
   * the city with. A word found only among the parameters (0.58) is not enough on its own.
   */
  steepness: 1.45,
};

export const retrieval = {
  /** weight of the dense cosine when a tool has an embedding (the rest is lexical) */
  denseWeight: 0.6,
  /** search hits the reuse-or-forge decision weighs, and the most an agent turn is offered */
  candidates: 5,
  /** below this similarity a hit is noise to the model: it is not offered */
  offerAt: 0.3,
};
