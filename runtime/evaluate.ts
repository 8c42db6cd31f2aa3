// Evaluation on held-out data: classification accuracy of argmax(output)
// against integer labels, batch by batch through `predict`, padding ignored.
import type { Trainer } from "./load.js";
import type { Dataset } from "./data.js";
import { Batcher, widthOf } from "./data.js";

/** The index of the largest of `values[from .. from + n)` (the first one on ties; NaN never wins). */
export function argmax(values: ArrayLike<number>, from: number, n: number): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let k = 0; k < n; k++) {
    const v = values[from + k]!;
    if (v > bestValue) {
      bestValue = v;
      best = k;
    }
  }
  return best;
}

/** What to compare: a graph output of shape [batch, classes] and the dataset column of labels. */
export interface AccuracySpec {
  readonly output: string;
  readonly labels: string;
}

/**
 * The fraction of `data`'s examples whose argmax over `spec.output` equals
 * the label in column `spec.labels`. The last batch is padded; padded rows
 * are not counted.
 */
export function accuracy(trainer: Trainer, data: Dataset, spec: AccuracySpec): number {
  const m = trainer.manifest;
  const out = m.outputs.find((o) => o.name === spec.output);
  if (!out) throw new Error(`accuracy: no output "${spec.output}" (outputs: ${m.outputs.map((o) => o.name).join(", ") || "none"})`);
  if (out.shape.length !== 2) throw new Error(`accuracy: output "${spec.output}" has shape [${out.shape.join(",")}]; expected [batch, classes]`);
  const labels = data.columns[spec.labels];
  if (!(labels instanceof Int32Array)) {
    throw new Error(`accuracy: the data has no integer column "${spec.labels}" (it has ${Object.keys(data.columns).join(", ") || "none"})`);
  }
  if (data.size > 0 && widthOf(data, spec.labels) !== 1) throw new Error(`accuracy: labels "${spec.labels}" must hold one class per example`);
  if (data.size === 0) return NaN;
  const [batchSize, classes] = out.shape as [number, number];
  const forwardInputs = m.inputs.filter((i) => i.usedBy.includes("forward"));
  const batcher = new Batcher(data, forwardInputs, batchSize);
  let correct = 0;
  let seen = 0;
  for (const { batch, rows } of batcher.padded()) {
    const values = trainer.predict(batch)[spec.output]!;
    for (let r = 0; r < rows; r++) {
      if (argmax(values, r * classes, classes) === labels[seen + r]) correct++;
    }
    seen += rows;
  }
  return correct / data.size;
}
