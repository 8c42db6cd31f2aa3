// In-memory datasets: columns of examples by input name, seeded shuffling,
// train/test splits, and batching into the graph's static batch size.
import type { InputEntry } from "./manifest.js";
import { sizeOf } from "./arena.js";

/** One column: every example's values of one input, examples along the first axis. */
export type Column = Float32Array | Float64Array | Int32Array;

/** `size` examples; each column holds `size × width` values. */
export interface Dataset {
  readonly size: number;
  readonly columns: Readonly<Record<string, Column>>;
}

/** What the batcher needs to know of a graph input. */
export type InputShape = Pick<InputEntry, "name" | "shape">;

/** Makes a dataset of `size` examples, checking that every column divides evenly. */
export function makeDataset(columns: Readonly<Record<string, Column>>, size: number): Dataset {
  if (!(Number.isInteger(size) && size >= 0)) throw new Error(`dataset size must be an integer ≥ 0 (got ${size})`);
  for (const [name, col] of Object.entries(columns)) {
    if (size === 0 ? col.length !== 0 : col.length % size !== 0) {
      throw new Error(`dataset column "${name}" has ${col.length} values, not a multiple of ${size} examples`);
    }
  }
  return { size, columns };
}

/** The number of values per example in a column. */
export function widthOf(ds: Dataset, name: string): number {
  const col = ds.columns[name];
  if (!col) throw new Error(`the data has no column "${name}" (it has ${Object.keys(ds.columns).join(", ") || "none"})`);
  return ds.size === 0 ? 0 : col.length / ds.size;
}

/** mulberry32: a small seeded PRNG of floats in [0, 1). The same seed gives the same stream. */
export function createRng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seed for epoch `epoch` of a run seeded with `seed`, so each epoch has its own order. */
export function epochSeed(seed: number, epoch: number): number {
  // an integer hash of the pair (splitmix-style mixing)
  let h = (Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  return (h ^ (h >>> 15)) >>> 0;
}

/** A seeded random permutation of 0..n−1 (Fisher–Yates). */
export function permutation(n: number, seed: number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  const r = createRng(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}

/** The examples at `indices`, in that order, as a new dataset. */
export function subset(ds: Dataset, indices: ArrayLike<number>): Dataset {
  const columns: Record<string, Column> = {};
  for (const [name, col] of Object.entries(ds.columns)) {
    const w = widthOf(ds, name);
    const out = new (col.constructor as new (n: number) => Column)(indices.length * w);
    for (let r = 0; r < indices.length; r++) {
      const i = indices[r]!;
      if (!(i >= 0 && i < ds.size)) throw new Error(`subset: index ${i} is outside the dataset's ${ds.size} examples`);
      out.set(col.subarray(i * w, (i + 1) * w), r * w);
    }
    columns[name] = out;
  }
  return { size: indices.length, columns };
}

/**
 * Splits a dataset in two with a seeded shuffle: `test` is a count of
 * examples, or a fraction of them when below 1. The two parts never overlap.
 */
export function splitDataset(ds: Dataset, test: number, seed: number): { train: Dataset; test: Dataset } {
  const k = test > 0 && test < 1 ? Math.round(ds.size * test) : test;
  if (!(Number.isInteger(k) && k >= 0 && k <= ds.size)) {
    throw new Error(`cannot hold out ${test} of ${ds.size} examples for testing`);
  }
  const p = permutation(ds.size, seed);
  return { train: subset(ds, p.subarray(0, ds.size - k)), test: subset(ds, p.subarray(ds.size - k)) };
}

/**
 * Cuts a dataset into batches of the graph's static batch size. The batch
 * buffers are allocated once and refilled, so a batch is only valid until
 * the next `fill`.
 */
export class Batcher {
  /** The current batch, by input name. */
  readonly batch: Readonly<Record<string, Column>>;
  private readonly parts: { name: string; width: number; src: Column; dst: Column }[] = [];

  constructor(
    readonly data: Dataset,
    inputs: readonly InputShape[],
    readonly batchSize: number,
  ) {
    const batch: Record<string, Column> = {};
    for (const input of inputs) {
      if (input.shape[0] !== batchSize) {
        throw new Error(`input "${input.name}" has shape [${input.shape.join(",")}]; batches need its first axis to be the batch size ${batchSize}`);
      }
      const src = data.columns[input.name];
      if (!src) throw new Error(`the data has no column for input "${input.name}" (it has ${Object.keys(data.columns).join(", ") || "none"})`);
      const width = sizeOf(input.shape.slice(1));
      if (data.size > 0 && widthOf(data, input.name) !== width) {
        throw new Error(`data column "${input.name}" has ${widthOf(data, input.name)} values per example, but input "${input.name}" [${input.shape.join(",")}] needs ${width}`);
      }
      const dst = new (src.constructor as new (n: number) => Column)(batchSize * width);
      batch[input.name] = dst;
      this.parts.push({ name: input.name, width, src, dst });
    }
    this.batch = batch;
  }

  /** Full batches in one pass over the data (the last partial batch is dropped). */
  get fullBatches(): number {
    return Math.floor(this.data.size / this.batchSize);
  }

  /** Batches needed to cover every example once (the last one padded). */
  get paddedBatches(): number {
    return Math.ceil(this.data.size / this.batchSize);
  }

  /** The order of examples in an epoch: shuffled with (seed, epoch), or 0..n−1. */
  order(epoch: number, shuffle: boolean, seed: number): Int32Array {
    if (shuffle) return permutation(this.data.size, epochSeed(seed, epoch));
    const identity = new Int32Array(this.data.size);
    for (let i = 0; i < identity.length; i++) identity[i] = i;
    return identity;
  }

  /**
   * Fills the batch with examples order[start], order[start + 1], ...; rows
   * past the end of `order` are zero padding. Returns the number of real rows.
   */
  fill(order: ArrayLike<number>, start: number): number {
    const rows = Math.max(0, Math.min(this.batchSize, order.length - start));
    for (const { width, src, dst } of this.parts) {
      for (let r = 0; r < rows; r++) {
        const from = order[start + r]! * width;
        const to = r * width;
        for (let k = 0; k < width; k++) dst[to + k] = src[from + k]!;
      }
      dst.fill(0, rows * width);
    }
    return rows;
  }

  /** The training batches of one epoch, full batches only. Each yields the shared batch buffers. */
  *epoch(epoch: number, shuffle = true, seed = 0): Generator<Readonly<Record<string, Column>>> {
    const order = this.order(epoch, shuffle, seed);
    for (let b = 0; b < this.fullBatches; b++) {
      this.fill(order, b * this.batchSize);
      yield this.batch;
    }
  }

  /** Every example once, in order; the last batch is padded, and `rows` says how many rows are real. */
  *padded(): Generator<{ batch: Readonly<Record<string, Column>>; rows: number }> {
    const order = this.order(0, false, 0);
    for (let b = 0; b < this.paddedBatches; b++) {
      const rows = this.fill(order, b * this.batchSize);
      yield { batch: this.batch, rows };
    }
  }
}

/**
 * Random translations of images for augmentation: each image (height × width,
 * row-major, one per batch row) moves by whole pixels in [−maxShift, maxShift]
 * along each axis; the uncovered border becomes 0. Buffers are made once.
 */
export class RandomShift {
  private readonly scratch: Float64Array;

  constructor(
    readonly height: number,
    readonly width: number,
    readonly maxShift: number,
  ) {
    if (!(Number.isInteger(maxShift) && maxShift >= 0 && maxShift < Math.min(height, width))) {
      throw new Error(`augment shift must be a whole number of pixels in [0, ${Math.min(height, width) - 1}] (got ${maxShift})`);
    }
    this.scratch = new Float64Array(height * width);
  }

  /**
   * Shifts the first `rows` images of `images` in place; the same seed gives
   * the same shifts. The images are rows `firstRow …` of a larger batch
   * seeded alike (a data-parallel rank's shard): they get that batch's shifts.
   */
  apply(images: Column, rows: number, seed: number, firstRow = 0): void {
    const { height: h, width: w, maxShift: s, scratch } = this;
    const size = h * w;
    if (s === 0) return;
    if (images.length < rows * size) throw new Error(`augment: ${rows} images of ${h}×${w} need ${rows * size} values, the batch has ${images.length}`);
    const rng = createRng(seed);
    // two draws per row before ours
    for (let k = 0; k < 2 * firstRow; k++) rng();
    for (let r = 0; r < rows; r++) {
      const dy = Math.floor(rng() * (2 * s + 1)) - s;
      const dx = Math.floor(rng() * (2 * s + 1)) - s;
      const base = r * size;
      // out[i][j] = in[i − dy][j − dx], or 0 outside the image
      for (let i = 0; i < h; i++) {
        const si = i - dy;
        for (let j = 0; j < w; j++) {
          const sj = j - dx;
          scratch[i * w + j] = si >= 0 && si < h && sj >= 0 && sj < w ? images[base + si * w + sj]! : 0;
        }
      }
      for (let k = 0; k < size; k++) images[base + k] = scratch[k]!;
    }
  }
}
