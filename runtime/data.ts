// In-memory datasets: columns of examples by input name, seeded shuffling,
// train/test splits, and batching into the graph's static batch size.
import type { DataSpec, InputEntry } from "./manifest.js";
import { join } from "node:path";
import { loadSafetensors } from "./safetensors.js";
import { sizeOf } from "./arena.js";
import { loadMnist } from "./mnist.js";
import { epochSeed, permutation } from "./random.js";

export { createRng, epochSeed, permutation } from "./random.js";

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

/** A column converted to the kind of array an input of `dtype` accepts. */
function columnFor(dtype: InputEntry["dtype"], col: Column): Column {
  const float = dtype === "f32" || dtype === "f64";
  if (float) return col instanceof Int32Array ? Float32Array.from(col) : col;
  if (col instanceof Int32Array) return col;
  const ints = Int32Array.from(col);
  if (ints.some((v, i) => v !== col[i])) throw new Error(`non-integer values for an ${dtype} input`);
  return ints;
}

/**
 * Reads a bundle's data file: one tensor per graph input, examples along the
 * first axis. The number of examples comes from the inputs' per-example sizes.
 */
export function loadArrays(path: string, inputs: readonly InputEntry[]): Dataset {
  const { tensors } = loadSafetensors(path);
  const columns: Record<string, Column> = {};
  let size: number | undefined;
  for (const [name, t] of Object.entries(tensors)) {
    const input = inputs.find((i) => i.name === name);
    if (!input) throw new Error(`${path}: tensor "${name}" is not a graph input (inputs: ${inputs.map((i) => i.name).join(", ")})`);
    if (t.data instanceof Uint8Array) throw new Error(`${path}: tensor "${name}" is u8; expected numbers for input "${name}"`);
    const width = sizeOf(input.shape.slice(1));
    const n = t.data.length / width;
    if (!Number.isInteger(n)) throw new Error(`${path}: tensor "${name}" has ${t.data.length} values, not a multiple of ${width} per example`);
    if (size !== undefined && n !== size) throw new Error(`${path}: tensor "${name}" has ${n} examples, but others have ${size}`);
    size = n;
    try {
      columns[name] = columnFor(input.dtype, t.data);
    } catch (e) {
      throw new Error(`${path}: tensor "${name}": ${(e as Error).message}`);
    }
  }
  return makeDataset(columns, size ?? 0);
}

/** Training data as a bundle describes it: a train split and, when held out, a test split. */
export interface TrainingData {
  readonly train: Dataset;
  readonly test?: Dataset;
}

/** Loads the data of a bundle's training spec (`dir` is the bundle's folder). */
export function loadTrainingData(spec: DataSpec, dir: string, inputs: readonly InputEntry[]): TrainingData {
  switch (spec.kind) {
    case "arrays": {
      const all = loadArrays(join(dir, spec.file), inputs);
      const fraction = spec.testFraction ?? 0;
      if (!(fraction >= 0 && fraction < 1)) throw new Error(`testFraction must be in [0, 1) (got ${fraction})`);
      if (fraction === 0) return { train: all };
      return splitDataset(all, fraction, spec.seed ?? 0);
    }
    case "mnist":
      return loadMnist(spec);
    default:
      return spec satisfies never;
  }
}
