/**
 * Cost estimation for model calls. Pure. Prices are US dollars per million tokens, from
 * https://www.anthropic.com/pricing (standard tier, 5-minute cache writes = 1.25 × input,
 * cache reads = 0.1 × input). Prices move: this table is the one place to update.
 */
export interface TokenPrices {
  input: number;
  output: number;
  cacheWrite: number;
  cacheRead: number;
}

export type ModelFamily = 'opus' | 'sonnet' | 'haiku';

export interface PriceRow {
  family: ModelFamily;
  /** Which model names the row covers; the first matching row wins, so specific rows come first. */
  match: RegExp;
  prices: TokenPrices;
}

const perMillion = (input: number, output: number): TokenPrices => ({
  input,
  output,
  cacheWrite: input * 1.25,
  cacheRead: input * 0.1,
});

export const priceTable: readonly PriceRow[] = [
  // Older Opus and Haiku generations cost differently from the current ones of their family.
  { family: 'opus', match: /claude-3-opus|claude-opus-4-0|claude-opus-4-1|claude-opus-4-2025/, prices: perMillion(15, 75) },
  { family: 'opus', match: /opus/, prices: perMillion(5, 25) },
  { family: 'sonnet', match: /sonnet/, prices: perMillion(3, 15) },
  { family: 'haiku', match: /claude-3-5-haiku/, prices: perMillion(0.8, 4) },
  { family: 'haiku', match: /claude-3-haiku/, prices: perMillion(0.25, 1.25) },
  { family: 'haiku', match: /haiku/, prices: perMillion(1, 5) },
];

// Families this table does not know (new names appear with new SDKs) fall back to sonnet prices,
// and estimateCost says so in priceNote.
const fallback: PriceRow = priceTable.find((r) => r.family === 'sonnet')!;

export interface TokenCounts {
  inputTokens: number;
  outputTokens: number;
  cacheCreationTokens: number;
  cacheReadTokens: number;
}

export interface CostEstimate {
  costUsd: number;
  pricedAs: ModelFamily;
  /** Set when the model is not in the table, so a report can say the cost is a guess. */
  priceNote?: string;
}

export function pricesFor(model: string): { row: PriceRow; known: boolean } {
  const row = priceTable.find((r) => r.match.test(model.toLowerCase()));
  return row ? { row, known: true } : { row: fallback, known: false };
}

/** Anthropic's input_tokens excludes cached tokens, so the four counts add up without overlap. */
export function estimateCost(model: string, t: TokenCounts): CostEstimate {
  const { row, known } = pricesFor(model);
  const p = row.prices;
  const micro =
    t.inputTokens * p.input + t.outputTokens * p.output + t.cacheCreationTokens * p.cacheWrite + t.cacheReadTokens * p.cacheRead;
  // Rounded to a millionth of a dollar: finer digits are float noise, not information.
  const costUsd = Math.round(micro) / 1e6;
  return known
    ? { costUsd, pricedAs: row.family }
    : { costUsd, pricedAs: row.family, priceNote: `unknown model "${model}": priced as ${row.family}` };
}
