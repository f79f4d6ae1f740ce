import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { LOCAL_EMBEDDINGS_MODEL, MODEL_FILE, TOKENIZER_FILE } from '../../domain/embedding.ts';
import { ComponentDownError, describeError } from '../../domain/errors.ts';
import type { Embedder } from './embeddings.ts';
import { type WordPiece, wordPieceFrom } from './wordpiece.ts';

/**
 * Meaning without a provider: all-MiniLM-L6-v2 (sentence-transformers, 384 dimensions, int8-quantized
 * ONNX; Apache-2.0), run in this process by ONNX Runtime's CPU build from the npm registry. Its files
 * are in `modelDir` (infra/embedding-model.ts fetches them once, pinned by sha256); FORGE_EMBEDDINGS_URL=local.
 * One request's vector takes ~3 ms, so meaning can sit on every search's path. The model's name is
 * what tool_embeddings rows are kept under: vectors of another model never mix.
 */
export { LOCAL_EMBEDDINGS_MODEL };

/** The model reads at most 256 word pieces; tool descriptions and requests are far shorter. */
const MAX_TOKENS = 256;
/** Requests repeat (an agent loop searches every turn with the task's words): their vectors are kept. */
const CACHED_QUERIES = 512;

interface Loaded {
  session: InferenceSession;
  tokenizer: WordPiece;
  Tensor: typeof Tensor;
}

/** One model per process and folder, however many embedders use it. */
const loaded = new Map<string, Promise<Loaded>>();
// One inference at a time: the session is given one thread (a worker shares 2 vCPUs with Temporal, Postgres and the sandboxes).
let queue: Promise<unknown> = Promise.resolve();

function load(modelDir: string): Promise<Loaded> {
  let loading = loaded.get(modelDir);
  if (!loading) {
    // Loaded on first use: ONNX Runtime and 23 MB of weights are nothing a process without embeddings should pay for.
    loading = (async () => {
      const [ort, model, tokenizer] = await Promise.all([
        import('onnxruntime-node'),
        readFile(path.join(modelDir, MODEL_FILE)),
        readFile(path.join(modelDir, TOKENIZER_FILE), 'utf8'),
      ]);
      const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 3 });
      return { session, tokenizer: wordPieceFrom(JSON.parse(tokenizer)), Tensor: ort.Tensor };
    })().catch((err: unknown) => {
      loaded.delete(modelDir);
      throw new ComponentDownError(
        'local embedding model',
        `all-MiniLM-L6-v2 did not load from ${modelDir}: ${describeError(err)}`,
        'run `npx forge up` (it fetches the model into that folder), or set FORGE_EMBEDDINGS_URL=off to search by words only',
      );
    });
    loaded.set(modelDir, loading);
  }
  return loading;
}

/** The sentence's vector: the last layer's token vectors averaged, then scaled to length 1 (as sentence-transformers does). */
async function embedOne({ session, tokenizer, Tensor }: Loaded, text: string): Promise<number[]> {
  const ids = tokenizer.encode(text, MAX_TOKENS);
  const n = ids.length;
  const out = await session.run({
    input_ids: new Tensor('int64', BigInt64Array.from(ids, BigInt), [1, n]),
    attention_mask: new Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]),
    token_type_ids: new Tensor('int64', new BigInt64Array(n), [1, n]),
  });
  const hidden = out.last_hidden_state?.data;
  if (!(hidden instanceof Float32Array)) throw new Error('the model gave no last_hidden_state');
  const width = hidden.length / n;
  const mean = new Float64Array(width);
  for (let t = 0; t < n; t++) for (let d = 0; d < width; d++) mean[d]! += hidden[t * width + d]!;
  const norm = Math.hypot(...mean) || 1;
  return Array.from(mean, (x) => x / norm);
}

export function createLocalEmbedder(modelDir: string): Embedder {
  const cache = new Map<string, number[]>();

  async function infer(texts: string[]): Promise<number[][]> {
    const model = await load(modelDir);
    const out: number[][] = [];
    // One text per run: unpadded, each costs only its own length.
    for (const t of texts) out.push(await embedOne(model, t));
    return out;
  }

  return {
    model: LOCAL_EMBEDDINGS_MODEL,
    async embed(texts: string[]): Promise<number[][]> {
      // An empty text means nothing.
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
