import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { LOCAL_EMBEDDINGS_MODEL, MODEL_FILE, TOKENIZER_FILE } from '../../domain/embedding.ts';
import { ComponentDownError, describeError } from '../../domain/errors.ts';
import type { Embedder } from './embeddings.ts';
import { type WordPiece, wordPieceFrom } from './wordpiece.ts';

/**
 * Meaning without a provider: all-MiniLM-L6-v2 (sentence-transformers, 384 dimensions, int8-quantized
 * ONNX; Apache-2.0), run in this process by ONNX Runtime's CPU build from the npm registry. Its files
 * are in `modelDir` (infra/embedding-model.ts fetches them once, pinned by sha256); FORGE_EMBEDDINGS_URL=local.
 * One request's vector takes ~3.5 ms. ONNX Runtime's `run` holds the thread that calls it, so the
 * model runs in a worker thread of its own: a search's request is embedded while the event loop
 * reads the words' shortlist from Postgres. The model's name is what tool_embeddings rows are kept
 * under: vectors of another model never mix.
 */
export { LOCAL_EMBEDDINGS_MODEL };

/** The model reads at most 256 word pieces; tool descriptions and requests are far shorter. */
const MAX_TOKENS = 256;
/** Requests repeat (an agent loop searches every turn with the task's words): their vectors are kept. */
const CACHED_QUERIES = 512;

/**
 * The thread: it loads the model, then answers each batch of token ids with one vector per text,
 * the last layer's token vectors averaged and scaled to length 1 (as sentence-transformers does).
 * Plain JavaScript, so it runs the same from the sources and from the CLI's bundle.
 */
const THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ort);
const ready = ort.InferenceSession.create(workerData.model, { intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 3 });
ready.then(() => parentPort.postMessage({ ready: true }), (err) => parentPort.postMessage({ ready: false, error: String(err && err.message || err) }));
parentPort.on('message', async ({ id, texts }) => {
  try {
    const session = await ready;
    const vectors = [];
    for (const ids of texts) {
      const n = ids.length;
      const out = await session.run({
        input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, n]),
        attention_mask: new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]),
        token_type_ids: new ort.Tensor('int64', new BigInt64Array(n), [1, n]),
      });
      const hidden = out.last_hidden_state.data;
      const width = hidden.length / n;
      const mean = new Float64Array(width);
      for (let t = 0; t < n; t++) for (let d = 0; d < width; d++) mean[d] += hidden[t * width + d];
      const norm = Math.hypot(...mean) || 1;
      vectors.push(Array.from(mean, (x) => x / norm));
    }
    parentPort.postMessage({ id, vectors });
  } catch (err) {
    parentPort.postMessage({ id, error: String(err && err.message || err) });
  }
});
`;

interface Model {
  tokenizer: WordPiece;
  infer(ids: number[][]): Promise<number[][]>;
}

/** One model (one thread) per process and folder, however many embedders use it. */
const models = new Map<string, Promise<Model>>();

function notLoaded(modelDir: string, reason: string): ComponentDownError {
  return new ComponentDownError(
    'local embedding model',
    `all-MiniLM-L6-v2 did not load from ${modelDir}: ${reason}`,
    'run `npx forge up` (it fetches the model into that folder), or set FORGE_EMBEDDINGS_URL=off to search by words only',
  );
}

async function startModel(modelDir: string): Promise<Model> {
  const tokenizerFile = await readFile(path.join(modelDir, TOKENIZER_FILE), 'utf8').catch((err: unknown) => {
    throw notLoaded(modelDir, describeError(err));
  });
  const tokenizer = wordPieceFrom(JSON.parse(tokenizerFile));
  // The thread reads the weights itself: 23 MB neither read on this thread nor copied to it.
  const worker = new Worker(THREAD, {
    eval: true,
    workerData: { ort: createRequire(import.meta.url).resolve('onnxruntime-node'), model: path.join(modelDir, MODEL_FILE) },
    stdout: false,
    stderr: false,
  });
  // Idle, the thread never keeps a process alive; a batch in flight refs it.
  worker.unref();
  const pending = new Map<number, { resolve(v: number[][]): void; reject(e: Error): void }>();
  let nextId = 0;
  let failed: Error | undefined;
  const failAll = (err: Error) => {
    failed = err;
    models.delete(modelDir);
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  await new Promise<void>((resolve, reject) => {
    worker.once('message', (m: { ready: boolean; error?: string }) =>
      m.ready ? resolve() : reject(notLoaded(modelDir, m.error ?? 'the model did not load')),
    );
    worker.once('error', (err) => reject(notLoaded(modelDir, err.message)));
  });
  worker.on('message', (m: { id: number; vectors?: number[][]; error?: string }) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (pending.size === 0) worker.unref();
    if (m.vectors) p.resolve(m.vectors);
    else p.reject(new Error(`the embedding model failed: ${m.error}`));
  });
  worker.on('error', (err) => failAll(notLoaded(modelDir, err.message)));
  worker.on('exit', (code) => failAll(notLoaded(modelDir, `its thread exited (${code})`)));
  return {
    tokenizer,
    infer(ids) {
      if (failed) return Promise.reject(failed);
      const id = nextId++;
      worker.ref();
      worker.postMessage({ id, texts: ids });
      return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
    },
  };
}

function load(modelDir: string): Promise<Model> {
  let model = models.get(modelDir);
  if (!model) {
    // Started on first use: a process without embeddings pays for neither ONNX Runtime nor 23 MB of weights.
    model = startModel(modelDir);
    model.catch(() => models.delete(modelDir));
    models.set(modelDir, model);
  }
  return model;
}

export function createLocalEmbedder(modelDir: string): Embedder {
  const cache = new Map<string, number[]>();
  return {
    model: LOCAL_EMBEDDINGS_MODEL,
    async embed(texts: string[]): Promise<number[][]> {
      // An empty text means nothing.
      const missing = [...new Set(texts.filter((t) => t.trim() && !cache.has(t)))];
      if (missing.length) {
        const model = await load(modelDir);
        const vectors = await model.infer(missing.map((t) => model.tokenizer.encode(t, MAX_TOKENS)));
        for (const [i, t] of missing.entries()) {
          if (cache.size >= CACHED_QUERIES) cache.delete(cache.keys().next().value as string);
          cache.set(t, vectors[i]!);
        }
      }
      return texts.map((t) => cache.get(t) ?? []);
    },
  };
}
