// Training data as bytes: a bundle's data.safetensors (one tensor per graph
// input), split as its spec says, and the train/test splits `gradc serve`
// hands a page in one safetensors file. No file system: the Node runtime
// (runtime/sources.ts) and the browser runtime read the same way.
import type { DataSpec, InputEntry } from "./manifest.js";
import type { Column, Dataset } from "./data.js";
import { makeDataset, splitDataset } from "./data.js";
import type { SafetensorsContent } from "./checkpoint.js";
import type { NamedTensor } from "./safetensorsFormat.js";
import { encodeSafetensors } from "./safetensorsFormat.js";
import { sizeOf } from "./arena.js";

/** Pixels per MNIST image. */
export const MNIST_PIXELS = 784;

/** Training data as a bundle describes it: a train split and, when held out, a test split. */
export interface TrainingData {
  readonly train: Dataset;
  readonly test?: Dataset;
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
export function arraysFrom(file: SafetensorsContent, path: string, inputs: readonly InputEntry[]): Dataset {
  const { tensors } = file;
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

/** The data of an `arrays` spec: the file's examples, a seeded test split held out when the spec asks. */
export function splitArrays(all: Dataset, spec: Extract<DataSpec, { kind: "arrays" }>): TrainingData {
  const fraction = spec.testFraction ?? 0;
  if (!(fraction >= 0 && fraction < 1)) throw new Error(`testFraction must be in [0, 1) (got ${fraction})`);
  if (fraction === 0) return { train: all };
  return splitDataset(all, fraction, spec.seed ?? 0);
}

/** The metadata `format` of a file of train/test splits. */
export const SPLITS_FORMAT = "gradc-splits";

/** Train and test splits as safetensors bytes: each column as `train/<input>` and `test/<input>`. */
export function encodeSplits(data: TrainingData): Uint8Array {
  const tensors: Record<string, NamedTensor> = Object.create(null) as Record<string, NamedTensor>;
  for (const [split, ds] of [["train", data.train], ["test", data.test]] as const) {
    if (!ds) continue;
    for (const [name, col] of Object.entries(ds.columns)) tensors[`${split}/${name}`] = { shape: [ds.size, ds.size === 0 ? 0 : col.length / ds.size], data: col };
  }
  return encodeSafetensors(tensors, { format: SPLITS_FORMAT });
}

/** The splits of a file `encodeSplits` wrote (`path` names it in errors), checked against the graph inputs as a data file is. */
export function decodeSplits(file: SafetensorsContent, path: string, inputs: readonly InputEntry[]): TrainingData {
  if (file.metadata["format"] !== SPLITS_FORMAT) throw new Error(`${path}: not a file of train/test splits (metadata format ${JSON.stringify(file.metadata["format"] ?? null)}, expected "${SPLITS_FORMAT}")`);
  const part = (split: string): SafetensorsContent | undefined => {
    const tensors: Record<string, NamedTensor> = Object.create(null) as Record<string, NamedTensor>;
    for (const [name, t] of Object.entries(file.tensors)) if (name.startsWith(`${split}/`)) tensors[name.slice(split.length + 1)] = t;
    return Object.keys(tensors).length ? { tensors, metadata: {} } : undefined;
  };
  const train = part("train");
  if (!train) throw new Error(`${path}: has no train/ tensors`);
  const test = part("test");
  return { train: arraysFrom(train, path, inputs), ...(test ? { test: arraysFrom(test, path, inputs) } : {}) };
}
