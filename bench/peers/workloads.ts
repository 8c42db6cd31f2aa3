// The workloads that gradc and its peers (jax-js, TensorFlow.js, PyTorch) run
// side by side: shapes, the optimizer, and seeded initial weights and data,
// laid out as gradc lays them out (row-major, images NHWC, filters
// [fh, fw, cin, cout], dense weights [in, out]). Every system starts from
// these same arrays, so the losses after one update must agree.
import { createRng } from "../../runtime/data.js";

/** One array: its shape and row-major values. */
export interface Tensor32 {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** A training step to compare: one update on a fixed batch. */
export interface Workload {
  readonly name: "mlpSgd" | "mlpAdam" | "xor" | "transformer" | "cnn";
  readonly title: string;
  readonly optimizer: { readonly name: "sgd" | "adam"; readonly lr: number };
  /** Params in the order the peers take them. */
  readonly params: Readonly<Record<string, Tensor32>>;
  /** Float inputs (x, and targets for regression). */
  readonly inputs: Readonly<Record<string, Tensor32>>;
  /** Class labels for a softmax cross-entropy loss, when the workload has one. */
  readonly labels?: { readonly classes: number; readonly data: Int32Array };
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Seeded uniform arrays. */
class Filler {
  private readonly rand: () => number;
  constructor(seed: number) {
    this.rand = createRng(seed);
  }
  uniform(shape: readonly number[], lo: number, hi: number): Tensor32 {
    return { shape, data: Float32Array.from({ length: size(shape) }, () => lo + (hi - lo) * this.rand()) };
  }
  /** Glorot-uniform weights of a layer with `fanIn` inputs and `fanOut` outputs. */
  glorot(shape: readonly number[], fanIn: number, fanOut: number): Tensor32 {
    const a = Math.sqrt(6 / (fanIn + fanOut));
    return this.uniform(shape, -a, a);
  }
  labels(n: number, classes: number): Int32Array {
    return Int32Array.from({ length: n }, () => Math.floor(this.rand() * classes));
  }
}

/** MLP 784→256→256→10, ReLU, batch 128, softmax cross-entropy. */
function mlp(name: "mlpSgd" | "mlpAdam", optimizer: Workload["optimizer"]): Workload {
  const f = new Filler(11);
  const sizes = [784, 256, 256, 10];
  const params: Record<string, Tensor32> = {};
  for (let l = 1; l < sizes.length; l++) {
    params[`W${l}`] = f.glorot([sizes[l - 1]!, sizes[l]!], sizes[l - 1]!, sizes[l]!);
    params[`b${l}`] = f.uniform([sizes[l]!], -0.1, 0.1);
  }
  const title = `MLP 784→256→256→10, batch 128, softmax CE, ${optimizer.name === "sgd" ? "SGD" : "Adam"} step`;
  return { name, title, optimizer, params, inputs: { x: f.uniform([128, 784], 0, 1) }, labels: { classes: 10, data: f.labels(128, 10) } };
}

/** XOR 2→8 tanh→1, batch 4, MSE, Adam. */
function xor(): Workload {
  const f = new Filler(12);
  return {
    name: "xor",
    title: "XOR 2→8 tanh→1, batch 4, MSE, Adam step",
    optimizer: { name: "adam", lr: 0.01 },
    params: { W1: f.glorot([2, 8], 2, 8), b1: f.uniform([8], -0.1, 0.1), W2: f.glorot([8, 1], 8, 1), b2: f.uniform([1], -0.1, 0.1) },
    inputs: { x: { shape: [4, 2], data: Float32Array.of(0, 0, 0, 1, 1, 0, 1, 1) }, y: { shape: [4, 1], data: Float32Array.of(0, 1, 1, 0) } },
  };
}

/** Sizes of the transformer block. */
export const BLOCK = { batch: 8, seq: 64, d: 128, heads: 4, hidden: 512, eps: 1e-5 } as const;

/**
 * One pre-LN transformer block, h = x + Attn(LN1(x)), out = h + W2·gelu(W1·LN2(h)),
 * four heads without masks or attention biases, loss = MSE against a target; SGD.
 */
function transformer(): Workload {
  const f = new Filler(13);
  const { batch, seq, d, hidden } = BLOCK;
  const ln = () => [f.uniform([d], 0.9, 1.1), f.uniform([d], -0.1, 0.1)] as const;
  const [g1, be1] = ln();
  const [g2, be2] = ln();
  return {
    name: "transformer",
    title: "pre-LN transformer block fwd+bwd (B 8, seq 64, d 128, 4 heads, MLP 512, GELU), SGD step",
    optimizer: { name: "sgd", lr: 0.01 },
    params: {
      ln1g: g1, ln1b: be1,
      Wq: f.glorot([d, d], d, d), Wk: f.glorot([d, d], d, d), Wv: f.glorot([d, d], d, d), Wo: f.glorot([d, d], d, d),
      ln2g: g2, ln2b: be2,
      W1: f.glorot([d, hidden], d, hidden), b1: f.uniform([hidden], -0.1, 0.1),
      W2: f.glorot([hidden, d], hidden, d), b2: f.uniform([d], -0.1, 0.1),
    },
    inputs: { x: f.uniform([batch, seq, d], -1, 1), y: f.uniform([batch, seq, d], -1, 1) },
  };
}

/** conv 3×3, 1→8 channels (valid) + bias → ReLU → 2×2 max pool → dense 1352→10, batch 32 of 28×28; softmax CE, SGD. */
function cnn(): Workload {
  const f = new Filler(14);
  return {
    name: "cnn",
    title: "CNN conv 8×3×3 → ReLU → maxpool 2 → dense, batch 32 of 28×28, SGD step",
    optimizer: { name: "sgd", lr: 0.01 },
    params: {
      K: f.glorot([3, 3, 1, 8], 9, 72), kb: f.uniform([8], -0.1, 0.1),
      W: f.glorot([13 * 13 * 8, 10], 13 * 13 * 8, 10), b: f.uniform([10], -0.1, 0.1),
    },
    inputs: { x: f.uniform([32, 28, 28, 1], 0, 1) },
    labels: { classes: 10, data: f.labels(32, 10) },
  };
}

/** Every workload, in the order the table lists them. */
export function workloads(): Workload[] {
  return [mlp("mlpSgd", { name: "sgd", lr: 0.01 }), mlp("mlpAdam", { name: "adam", lr: 0.001 }), xor(), transformer(), cnn()];
}

/** The labels one-hot, [n, classes], for peers whose loss takes probabilities. */
export function oneHot(labels: NonNullable<Workload["labels"]>): Tensor32 {
  const n = labels.data.length;
  const data = new Float32Array(n * labels.classes);
  labels.data.forEach((c, i) => (data[i * labels.classes + c] = 1));
  return { shape: [n, labels.classes], data };
}

/** The sgemm row: C = A·B, 512×512 by 512×512, seeded. */
export function sgemmOperands(n = 512): { a: Float32Array; b: Float32Array; n: number } {
  const f = new Filler(15);
  return { a: f.uniform([n, n], -1, 1).data, b: f.uniform([n, n], -1, 1).data, n };
}
