import { createDotProducts, type DotProducts } from './dot-products.ts';

/**
 * The catalog's tool vectors of one model, in memory, for a search's meaning: unit length, one row
 * each in WebAssembly memory, so a request is compared with 10,000 tools in one SIMD pass of dot
 * products (dot-products.ts, under a millisecond) and only the nearest are kept — no map of every
 * tool's cosine per search. Memory layout, in f32s: the rows (capacity × stride), the request
 * (stride), the scores (capacity); a row is padded with zeros to a multiple of 4 values.
 */
export class DenseIndex {
  private readonly rowOf = new Map<string, number>();
  private names: string[] = [];
  private readonly wasm: DotProducts = createDotProducts();
  private view = new Float32Array(0);
  private capacity = 0;
  private dim = 0;
  private stride = 0;

  get size(): number {
    return this.names.length;
  }

  /** Adds or replaces a tool's vector; a vector of another length than the index's is ignored (another model's). */
  set(name: string, vector: ArrayLike<number>): void {
    if (vector.length === 0) return;
    if (this.dim === 0) {
      this.dim = vector.length;
      this.stride = Math.ceil(vector.length / 4) * 4;
    }
    if (vector.length !== this.dim) return;
    let row = this.rowOf.get(name);
    if (row === undefined) {
      row = this.names.length;
      if (row >= this.capacity) this.grow(Math.max(1024, row * 2));
      this.names.push(name);
      this.rowOf.set(name, row);
    }
    this.floats().set(normalized(vector), row * this.stride);
  }

  /** The request's cosine to one tool; null when the tool has no vector. */
  cosine(query: Float32Array, name: string): number | null {
    const row = this.rowOf.get(name);
    if (row === undefined || query.length !== this.dim) return null;
    const data = this.floats();
    let sum = 0;
    for (let i = 0, at = row * this.stride; i < this.dim; i++, at++) sum += query[i]! * data[at]!;
    return Math.max(0, sum);
  }

  /** The `k` tools nearest the request, nearest first. */
  nearest(query: Float32Array, k: number): { name: string; cosine: number }[] {
    if (query.length !== this.dim || k <= 0 || this.size === 0) return [];
    const data = this.floats();
    const queryAt = this.capacity * this.stride;
    const scoresAt = queryAt + this.stride;
    data.set(query, queryAt);
    this.wasm.scores(4 * queryAt, 0, this.size, this.stride, 4 * scoresAt);
    const best: { row: number; cosine: number }[] = [];
    for (let row = 0; row < this.size; row++) {
      const c = data[scoresAt + row]!;
      if (best.length === k && c <= best[k - 1]!.cosine) continue;
      let at = best.length === k ? k - 1 : best.length;
      while (at > 0 && best[at - 1]!.cosine < c) at--;
      best.splice(at, 0, { row, cosine: c });
      if (best.length > k) best.pop();
    }
    return best.map((b) => ({ name: this.names[b.row]!, cosine: Math.max(0, b.cosine) }));
  }

  /** Room for `capacity` rows: the rows stay where they are; the request and scores after them are scratch. */
  private grow(capacity: number): void {
    const bytes = 4 * (capacity * this.stride + this.stride + capacity);
    const pages = Math.ceil(bytes / 65_536) - this.wasm.memory.buffer.byteLength / 65_536;
    if (pages > 0) this.wasm.memory.grow(pages);
    this.capacity = capacity;
  }

  /** The memory as f32s (a view made again after the memory grew: growing detaches the old one). */
  private floats(): Float32Array {
    if (this.view.buffer !== this.wasm.memory.buffer) this.view = new Float32Array(this.wasm.memory.buffer);
    return this.view;
  }
}

/** The vector at unit length (zeros stay zeros: they match nothing). */
export function normalized(vector: ArrayLike<number>): Float32Array {
  let norm = 0;
  for (let i = 0; i < vector.length; i++) norm += vector[i]! * vector[i]!;
  const out = new Float32Array(vector.length);
  if (norm === 0) return out;
  const scale = 1 / Math.sqrt(norm);
  for (let i = 0; i < vector.length; i++) out[i] = vector[i]! * scale;
  return out;
}
