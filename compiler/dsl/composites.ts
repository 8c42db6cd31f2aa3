// Composite layers and losses, written in terms of primitives so that their
// gradients, CSE and fusion come for free. nn.ts exports them with the
// layers of layers.ts, which build on them.
import type { Tensor } from "../ir/node.js";
import { GraphError, shapeStr } from "../ir/types.js";
import { callerLocation } from "../ir/source.js";
import type { GraphBuilder } from "./graph.js";
import type { InitSpec } from "./init.js";

/** log Σ exp(x) over `axis`, stable: the max is subtracted first (and held constant). */
export function logsumexp(x: Tensor, axis = -1, keepDims = false): Tensor {
  const m = x.max(axis, true).stopGradient();
  const s = x.sub(m).exp().sum(axis, true).log().add(m);
  return keepDims ? s : s.squeeze(axis);
}

/** x − logsumexp(x): log-probabilities. */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return x.sub(logsumexp(x, axis, true));
}

/** exp(x − max) / Σ exp(x − max). */
export function softmax(x: Tensor, axis = -1): Tensor {
  const e = x.sub(x.max(axis, true).stopGradient()).exp();
  return e.div(e.sum(axis, true));
}

function sameShape(op: string, a: Tensor, b: Tensor): void {
  if (shapeStr(a.shape) !== shapeStr(b.shape)) {
    throw new GraphError(op, `predictions ${shapeStr(a.shape)} and targets ${shapeStr(b.shape)} differ in shape`, callerLocation());
  }
}

/** Mean squared error over all elements. */
export function mse(pred: Tensor, target: Tensor): Tensor {
  sameShape("mse", pred, target);
  return pred.sub(target).square().mean();
}

/**
 * Mean cross-entropy of `logits` [..., classes] against integer `labels` [...].
 * Its gradient is (softmax − onehot) / batch.
 */
export function softmaxCrossEntropy(logits: Tensor, labels: Tensor): Tensor {
  if (labels.dtype !== "i32") throw new GraphError("softmaxCrossEntropy", `labels must be i32 class indices, got ${labels.dtype}`, callerLocation());
  if (shapeStr(logits.shape.slice(0, -1)) !== shapeStr(labels.shape)) {
    throw new GraphError("softmaxCrossEntropy", `logits ${shapeStr(logits.shape)} and labels ${shapeStr(labels.shape)}: labels must have the logits' shape without the class axis`, callerLocation());
  }
  const onehot = labels.oneHot(logits.shape.at(-1)!).cast(logits.dtype);
  return logSoftmax(logits).mul(onehot).sum(-1).neg().mean();
}

/** Mean binary cross-entropy from logits: max(x,0) − x·y + log(1 + e^−|x|). */
export function sigmoidCrossEntropy(logits: Tensor, targets: Tensor): Tensor {
  sameShape("sigmoidCrossEntropy", logits, targets);
  return logits.relu().sub(logits.mul(targets)).add(logits.abs().neg().softplus()).mean();
}

/** Mean hinge loss max(0, 1 − y·ŷ) for targets in {−1, +1}. */
export function hinge(pred: Tensor, target: Tensor): Tensor {
  sameShape("hinge", pred, target);
  return pred.mul(target).neg().add(1).relu().mean();
}

/** Layer normalization over the last axis, then scale and shift if given. */
export function layerNorm(x: Tensor, gamma?: Tensor, beta?: Tensor, eps = 1e-5): Tensor {
  const mu = x.mean(-1, true);
  const xc = x.sub(mu);
  const variance = xc.square().mean(-1, true);
  let y = xc.mul(variance.add(eps).rsqrt());
  if (gamma) y = y.mul(gamma);
  if (beta) y = y.add(beta);
  return y;
}

export type Activation = "relu" | "tanh" | "sigmoid" | "gelu" | "leakyRelu" | "softplus" | "linear";

/** Applies a named activation. */
export function activate(x: Tensor, act: Activation = "linear"): Tensor {
  switch (act) {
    case "relu": return x.relu();
    case "tanh": return x.tanh();
    case "sigmoid": return x.sigmoid();
    case "gelu": return x.gelu();
    case "leakyRelu": return x.leakyRelu();
    case "softplus": return x.softplus();
    case "linear": return x;
    default: return act satisfies never;
  }
}

/**
 * x·W + b, then an activation. An x of rank > 2 with a matrix W is multiplied
 * as one matrix [every leading position, in] and reshaped back, so the product
 * is a plain matmul (the fast path of every backend) rather than a batched one.
 */
export function linear(x: Tensor, W: Tensor, b?: Tensor, act: Activation = "linear"): Tensor {
  if (x.rank > 2 && W.rank === 2) {
    const lead = x.shape.slice(0, -1);
    const rows = lead.reduce((a, d) => a * d, 1);
    return linear(x.reshape([rows, x.shape.at(-1)!]), W, b, act).reshape([...lead, W.shape[1]!]);
  }
  const y = x.matmul(W);
  return activate(b ? y.add(b) : y, act);
}

/**
 * A fully connected layer that creates its parameters `${name}.W` [in, units]
 * and `${name}.b` [units] (Glorot uniform and zeros by default).
 */
export function dense(
  g: GraphBuilder,
  name: string,
  x: Tensor,
  units: number,
  opts: { activation?: Activation; kernelInit?: InitSpec; useBias?: boolean; trainable?: boolean } = {},
): Tensor {
  const trainable = opts.trainable ?? true;
  const W = g.param(`${name}.W`, [x.shape.at(-1)!, units], { init: opts.kernelInit ?? "glorotUniform", trainable });
  const b = opts.useBias === false ? undefined : g.param(`${name}.b`, [units], { init: "zeros", trainable });
  return linear(x, W, b, opts.activation);
}
