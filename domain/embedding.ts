import { z } from 'zod';

/**
 * Dense embeddings for discovery. Providers speak the common embeddings shape (Voyage AI, OpenAI
 * and compatible servers): POST { input: string[], model } → { data: [{ embedding, index }] }.
 */
export const embeddingsResponseSchema = z.object({
  data: z.array(z.object({ embedding: z.array(z.number()).min(1), index: z.number().int().min(0).optional() })).min(1),
  model: z.string().optional(),
});

const stem = (w: string) => w.replace(/(ing|ed|es|s)$/, '');

/**
 * The offline stand-in's embedding (scripted model server): a signed, hashed bag of stemmed words,
 * L2-normalised. Deterministic and meaningless beyond word overlap — enough to drive the real
 * dense-retrieval code path without a provider.
 */
export function hashedEmbedding(text: string, dims = 256): number[] {
  const v = new Array<number>(dims).fill(0);
  for (const word of text.toLowerCase().match(/[a-z0-9]+/g) ?? []) {
    let h = 2166136261;
    for (const ch of stem(word)) h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
    const i = Math.abs(h) % dims;
    v[i]! += h & 1 ? 1 : -1;
  }
  const norm = Math.hypot(...v) || 1;
  return v.map((x) => x / norm);
}

/**
 * The local embedding model (FORGE_EMBEDDINGS_URL=local): all-MiniLM-L6-v2, int8-quantized ONNX. Its
 * files, in its folder under the models directory, by these names (infra/embedding-model.ts puts them there).
 */
export const LOCAL_EMBEDDINGS_MODEL = 'all-minilm-l6-v2-q';
export const MODEL_FILE = 'model.onnx';
export const TOKENIZER_FILE = 'tokenizer.json';
