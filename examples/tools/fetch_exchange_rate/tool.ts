import { z } from 'zod';
import type { ToolContext } from '@forge/tool';

/**
 * fetch_exchange_rate: the latest rate between two currencies from Open Exchange Rates.
 * Worked example of the Forge tool contract (docs/tool-contract.md).
 */
const API = 'https://openexchangerates.org/api/latest.json';
const currency = z.string().regex(/^[A-Z]{3}$/, 'an ISO 4217 code such as USD');

export const manifest = {
  name: 'fetch_exchange_rate',
  description: 'Latest exchange rate between two currencies (Open Exchange Rates). 1 base = rate quote.',
  sideEffect: 'read',
  destructive: false,
  permissions: { network: ['openexchangerates.org'], env: ['OPENEXCHANGERATES_APP_ID'] },
  input: z.object({ base: currency.default('USD'), quote: currency }).meta({ examples: [{ base: 'USD', quote: 'EUR' }] }),
  output: z.object({ base: currency, quote: currency, rate: z.number().positive(), asOf: z.string() }),
};

type Input = z.output<typeof manifest.input>;
type Output = z.output<typeof manifest.output>;

/** What we rely on in the API's answer; anything else in it is ignored. */
const latestResponse = z.object({
  timestamp: z.number().int(),
  base: z.string(),
  rates: z.record(z.string(), z.number()),
});

const MAX_ATTEMPTS = 3;
const MAX_RETRY_AFTER_S = 5;

/** Waits, but gives up at once when the job is cancelled. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

/** Retry-After (seconds) when the API sends it, else a short exponential backoff; capped so a call never stalls long. */
function retryDelayMs(res: Response, attempt: number): number {
  const header = res.headers.get('retry-after');
  const seconds = header === null ? Number.NaN : Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds, MAX_RETRY_AFTER_S) * 1000;
  return 250 * 2 ** (attempt - 1);
}

async function fetchLatest(url: URL, ctx: ToolContext): Promise<unknown> {
  for (let attempt = 1; ; attempt++) {
    const res = await ctx.fetch(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(10_000) });
    const retryable = res.status === 429 || res.status >= 500;
    if (retryable && attempt < MAX_ATTEMPTS) {
      const wait = retryDelayMs(res, attempt);
      ctx.log.warn('exchange-rate API asked us to retry', { status: res.status, attempt, waitMs: wait });
      await sleep(wait, ctx.signal);
      continue;
    }
    const text = await res.text();
    if (!res.ok) {
      throw new Error(`Open Exchange Rates answered ${res.status} after ${attempt} attempt(s): ${text.slice(0, 200)}`);
    }
    try {
      return JSON.parse(text);
    } catch {
      throw new Error(`Open Exchange Rates returned malformed JSON: ${text.slice(0, 100)}`);
    }
  }
}

export async function run(input: Input, ctx: ToolContext): Promise<Output> {
  const appId = ctx.env.OPENEXCHANGERATES_APP_ID;
  if (!appId) throw new Error('OPENEXCHANGERATES_APP_ID is not set: create a free App ID at openexchangerates.org');
  const url = new URL(API);
  url.searchParams.set('app_id', appId);
  url.searchParams.set('base', input.base);
  url.searchParams.set('symbols', input.quote);

  const parsed = latestResponse.safeParse(await fetchLatest(url, ctx));
  if (!parsed.success) {
    throw new Error(
      `Open Exchange Rates returned an unexpected response: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  const rate = parsed.data.rates[input.quote];
  if (rate === undefined) throw new Error(`no rate for ${input.quote} against ${input.base}: is it a supported currency?`);
  return { base: parsed.data.base, quote: input.quote, rate, asOf: new Date(parsed.data.timestamp * 1000).toISOString() };
}
