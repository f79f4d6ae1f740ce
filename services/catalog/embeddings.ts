import type { ForgeConfig } from '../../domain/config.ts';
import { embeddingsResponseSchema } from '../../domain/embedding.ts';
import { ComponentDownError, describeError } from '../../domain/errors.ts';
import { localModelDir } from '../config.ts';
import { createLocalEmbedder } from './local-embedder.ts';

/** Dense embeddings are optional: without an embedder, search is full-text + trigram only. */
export interface Embedder {
  model: string;
  embed(texts: string[]): Promise<number[][]>;
}

/**
 * An embedding provider over HTTP (FORGE_EMBEDDINGS_URL, e.g. https://api.voyageai.com/v1/embeddings,
 * or the scripted model's /v1/embeddings offline). The key comes from the environment only.
 */
export function createHttpEmbedder(opts: { url: string; model: string; apiKey?: string; timeoutMs?: number }): Embedder {
  return {
    model: opts.model,
    async embed(texts: string[]): Promise<number[][]> {
      let res: Response;
      try {
        res = await fetch(opts.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {}) },
          body: JSON.stringify({ input: texts, model: opts.model }),
          signal: AbortSignal.timeout(opts.timeoutMs ?? 20_000),
        });
      } catch (err) {
        throw new ComponentDownError(
          'embedding provider',
          `${opts.url}: ${describeError(err)}`,
          'check FORGE_EMBEDDINGS_URL, or set it to off to search by words only',
        );
      }
      if (!res.ok) {
        throw new ComponentDownError(
          'embedding provider',
          `${opts.url} answered ${res.status}: ${(await res.text()).slice(0, 300)}`,
          res.status === 401 ? 'check FORGE_EMBEDDINGS_API_KEY' : 'check FORGE_EMBEDDINGS_URL and FORGE_EMBEDDINGS_MODEL',
        );
      }
      const parsed = embeddingsResponseSchema.safeParse(await res.json());
      if (!parsed.success || parsed.data.data.length !== texts.length) {
        throw new ComponentDownError(
          'embedding provider',
          `${opts.url} did not answer with ${texts.length} embedding(s)`,
          'point FORGE_EMBEDDINGS_URL at an endpoint that speaks { input, model } → { data: [{ embedding }] }',
        );
      }
      return [...parsed.data.data].sort((a, b) => (a.index ?? 0) - (b.index ?? 0)).map((d) => d.embedding);
    },
  };
}

/**
 * The embedder FORGE_EMBEDDINGS_URL names: `local` for all-MiniLM-L6-v2 in this process
 * (local-embedder.ts, its files under the models directory; the default), an http(s) URL for a
 * provider, `off` for words alone.
 */
export function embedderFor(
  cfg: Pick<ForgeConfig, 'FORGE_EMBEDDINGS_URL' | 'FORGE_EMBEDDINGS_MODEL' | 'FORGE_EMBEDDINGS_API_KEY' | 'FORGE_MODELS_DIR'>,
): Embedder | undefined {
  if (cfg.FORGE_EMBEDDINGS_URL === 'off') return undefined;
  if (cfg.FORGE_EMBEDDINGS_URL === 'local') return createLocalEmbedder(localModelDir(cfg));
  return createHttpEmbedder({ url: cfg.FORGE_EMBEDDINGS_URL, model: cfg.FORGE_EMBEDDINGS_MODEL, apiKey: cfg.FORGE_EMBEDDINGS_API_KEY });
}
