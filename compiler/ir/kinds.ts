// The primitive ops of the IR and their typed params. Composites (softmax,
// losses, layer norm, gelu, mean, ...) are built from these in the DSL.
import type { DType } from "./types.js";

type None = Record<string, never>;
/** Strides and window sizes as [height, width]. */
export type Pair = [number, number];
export type Padding = "same" | "valid";

/** Params of every primitive, by op name. */
export interface OpParams {
  // sources
  input: { name: string; shape: number[]; dtype: DType };
  param: { name: string; shape: number[]; dtype: DType };
  const: { value: number[]; shape: number[]; dtype: DType };
  // unary elementwise
  neg: None;
  exp: None;
  log: None;
  sqrt: None;
  rsqrt: None;
  abs: None;
  sign: None;
  sin: None;
  cos: None;
  tanh: None;
  sigmoid: None;
  relu: None;
  softplus: None;
  pow: { exponent: number };
  leakyRelu: { alpha: number };
  cast: { dtype: DType };
  stopGradient: None;
  // binary elementwise (numpy broadcasting)
  add: None;
  sub: None;
  mul: None;
  div: None;
  maximum: None;
  minimum: None;
  greater: None;
  greaterEqual: None;
  less: None;
  lessEqual: None;
  equal: None;
  // ternary elementwise: where(cond, a, b)
  where: None;
  // reductions; axes null = all axes
  sum: { axes: number[] | null; keepDims: boolean };
  max: { axes: number[] | null; keepDims: boolean };
  min: { axes: number[] | null; keepDims: boolean };
  argmax: { axis: number; keepDims: boolean };
  // movement
  reshape: { shape: number[] };
  transpose: { perm: number[] };
  broadcastTo: { shape: number[] };
  slice: { begin: number[]; size: number[] };
  concat: { axis: number };
  pad: { paddings: [number, number][]; value: number };
  /** gather(table [V, ...d], indices i32 [...i]) → [...i, ...d]. */
  gather: None;
  /** scatterAdd(values [...i, ...d], indices i32 [...i]) → [rows, ...d]; the VJP of gather. */
  scatterAdd: { rows: number };
  oneHot: { depth: number };
  // contraction
  /** op(A)·op(B) over the last two axes; a flag reads that operand transposed (absent = false). */
  matmul: { transposeA?: boolean; transposeB?: boolean };
  conv2d: { strides: Pair; padding: Padding };
  /** d conv2d / d x: (dy, filter) → x's shape. */
  conv2dBackpropInput: { inputShape: number[]; strides: Pair; padding: Padding };
  /** d conv2d / d filter: (x, dy) → filter's shape. */
  conv2dBackpropFilter: { filterShape: number[]; strides: Pair; padding: Padding };
  maxPool2d: { size: Pair; strides: Pair; padding: Padding };
  /** d maxPool2d / d x: (x, dy) → x's shape; each window's max takes dy. */
  maxPool2dGrad: { size: Pair; strides: Pair; padding: Padding };
  avgPool2d: { size: Pair; strides: Pair; padding: Padding };
  /** d avgPool2d / d x: (dy) → x's shape. */
  avgPool2dGrad: { inputShape: number[]; size: Pair; strides: Pair; padding: Padding };
  /** Identity on input 0 whose VJP is a user function (see `customGrad`). */
  customGrad: { fn: number; label: string };
  /** Identity that marks its value as saved for the backward pass (gradient checkpointing). */
  checkpoint: None;
  // training mode and randomness
  /** ifTraining(a, b): a in the training step, b in forward/predict. */
  ifTraining: None;
  /** A bool mask, true with probability `p`, drawn from (seed, step, element index): see ops/random.ts. */
  bernoulli: { shape: number[]; p: number; seed: number };
  /** Mixed precision's dynamic loss scale, an f32 scalar the runtime sets each step: the seed of the backward pass. */
  lossScale: None;
}

export type OpKind = keyof OpParams;
