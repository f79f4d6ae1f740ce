/**
 * The catalog's tool vectors of one model, in memory, for a search's meaning: unit length, one row
 * each in a single Float32Array, so a request is compared with 10,000 tools in one tight loop of dot
 * products (a few ms) and only the nearest are kept — no map of every tool's cosine per search.
 */
export class DenseIndex {
  private readonly rowOf = new Map<string, number>();
  private names: string[] = [];
  private data = new Float32Array(0);
  private dim = 0;

  get size(): number {
    return this.names.length;
  }

  /** Adds or replaces a tool's vector; a vector of another length than the index's is ignored (another model's). */
  set(name: string, vector: ArrayLike<number>): void {
    if (vector.length === 0) return;
    if (this.dim === 0) this.dim = vector.length;
    if (vector.length !== this.dim) return;
    let row = this.rowOf.get(name);
    if (row === undefined) {
      row = this.names.length;
      this.names.push(name);
      this.rowOf.set(name, row);
      if ((row + 1) * this.dim > this.data.length) {
        const grown = new Float32Array(Math.max(1024, (row + 1) * 2) * this.dim);
        grown.set(this.data);
        this.data = grown;
      }
    }
    const unit = normalized(vector);
    this.data.set(unit, row * this.dim);
  }

  /** The request's cosine to one tool; null when the tool has no vector. */
  cosine(query: Float32Array, name: string): number | null {
    const row = this.rowOf.get(name);
    return row === undefined || query.length !== this.dim ? null : Math.max(0, this.dot(query, row));
  }

  /** The `k` tools nearest the request, nearest first. */
  nearest(query: Float32Array, k: number): { name: string; cosine: number }[] {
    if (query.length !== this.dim || k <= 0) return [];
    const best: { row: number; cosine: number }[] = [];
    for (let row = 0; row < this.names.length; row++) {
      const c = this.dot(query, row);
      if (best.length === k && c <= best[k - 1]!.cosine) continue;
      let at = best.length === k ? k - 1 : best.length;
      while (at > 0 && best[at - 1]!.cosine < c) at--;
      best.splice(at, 0, { row, cosine: c });
      if (best.length > k) best.pop();
    }
    return best.map((b) => ({ name: this.names[b.row]!, cosine: Math.max(0, b.cosine) }));
  }

  private dot(query: Float32Array, row: number): number {
    const data = this.data;
    const base = row * this.dim;
    let sum = 0;
    for (let i = 0; i < query.length; i++) sum += query[i]! * data[base + i]!;
    return sum;
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
