// Layers with parameters or structure beyond one op: embeddings, attention,
// dropout and batch norm, written in terms of primitives (gather, matmul,
// where, softmax, bernoulli, ifTraining) so that gradients, CSE and fusion apply.
import type { Tensor } from "../ir/node.js";
import { GraphError, isFloat, shapeStr } from "../ir/types.js";
import { callerLocation } from "../ir/source.js";
import type { GraphBuilder } from "./graph.js";
import { activeBuilder } from "./graph.js";
import type { InitSpec } from "./init.js";
import { hashString } from "./init.js";
import { dense, softmax } from "./composites.js";

/**
 * Dropout: in the training step each element is zeroed with probability
 * `rate` and the rest scaled by 1 / (1 − rate); in forward/predict it is the
 * identity (Keras `Dropout`, PyTorch `nn.Dropout`). The mask is a `bernoulli`
 * draw from (seed, step number, element index), so a step draws the same mask
 * on every backend and in the interpreter, and each step draws a new one. The
 * seed comes from the graph's seed and the call (or from `opts.seed`).
 */
export function dropout(x: Tensor, rate: number, opts: { seed?: number } = {}): Tensor {
  if (!(typeof rate === "number" && rate >= 0 && rate < 1)) throw new GraphError("dropout", `rate must be in [0, 1), got ${String(rate)}`, callerLocation());
  if (!isFloat(x.dtype)) throw new GraphError("dropout", `x must be a float tensor, got ${x.dtype}${shapeStr(x.shape)}`, callerLocation());
  if (rate === 0) return x;
  if (opts.seed !== undefined && !(Number.isInteger(opts.seed) && opts.seed >= 0)) {
    throw new GraphError("dropout", `seed must be a non-negative integer, got ${String(opts.seed)}`, callerLocation());
  }
  // the number of nodes so far tells one call from another, the same way in every build
  const seed = opts.seed ?? hashString(`dropout:${x.ctx.seed}:${x.ctx.nodes.length}`);
  const keep = x.ctx.apply("bernoulli", [], { shape: [...x.shape], p: 1 - rate, seed });
  const dropped = keep.where(x.mul(1 / (1 - rate)), 0);
  return x.ctx.apply("ifTraining", [dropped, x], {});
}

/** What masked-out attention scores are set to before the softmax: exp of it minus any real score is 0. */
export const MASKED_SCORE = -1e9;

/**
 * A lookup table `${name}.embeddings` [vocab, dim]: row `ids[...]` for every
 * id, so integer ids [...] give vectors [..., dim] (Keras `Embedding`,
 * PyTorch `nn.Embedding`). Its gradient adds each output row's cotangent into
 * the row it came from. An id outside [0, vocab) reads a zero row.
 * Default init: uniform in [-0.05, 0.05], as Keras.
 */
export function embedding(
  g: GraphBuilder,
  name: string,
  ids: Tensor,
  vocab: number,
  dim: number,
  opts: { init?: InitSpec; trainable?: boolean } = {},
): Tensor {
  if (ids.dtype !== "i32") throw new GraphError("embedding", `"${name}": ids must be i32 token indices, got ${ids.dtype}${shapeStr(ids.shape)}`, callerLocation());
  for (const [what, v] of [["vocab", vocab], ["dim", dim]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new GraphError("embedding", `"${name}": ${what} must be a positive integer, got ${String(v)}`, callerLocation());
  }
  const table = g.param(`${name}.embeddings`, [vocab, dim], { init: opts.init ?? "uniform", trainable: opts.trainable ?? true });
  return table.gather(ids);
}

/**
 * The causal mask of a sequence of length `seq`: a bool [seq, seq] constant,
 * true at [i, j] where query i may attend to key j (j ≤ i), as Keras's
 * `attention_mask` and `jax.nn.dot_product_attention`'s `mask` read it.
 * Apply it to scores [..., seq, seq] with `mask.where(scores, nn.MASKED_SCORE)`
 * or pass it to `dotProductAttention`. Must be called inside a graph's build.
 */
export function causalMask(seq: number): Tensor {
  const g = activeBuilder("causalMask");
  if (!Number.isInteger(seq) || seq < 1) throw new GraphError("causalMask", `seq must be a positive integer, got ${String(seq)}`, callerLocation());
  const values = new Array<number>(seq * seq);
  for (let i = 0; i < seq; i++) for (let j = 0; j < seq; j++) values[i * seq + j] = j <= i ? 1 : 0;
  return g.const(values, [seq, seq], "bool");
}

/**
 * softmax(q·kᵀ / √d + mask) · v over the last two axes: q [..., Tq, d],
 * k [..., Tk, d], v [..., Tk, dv] → [..., Tq, dv]. `mask` (bool, broadcast to
 * [..., Tq, Tk]) is true where a query may attend to a key. `dropout` drops
 * attention weights in the training step.
 */
export function dotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts: { mask?: Tensor; scale?: number; dropout?: number } = {}): Tensor {
  const op = "dotProductAttention";
  if (q.rank < 2 || k.rank !== q.rank || v.rank !== q.rank) {
    throw new GraphError(op, `q, k and v must have one rank ≥ 2, got ${shapeStr(q.shape)}, ${shapeStr(k.shape)}, ${shapeStr(v.shape)}`, callerLocation());
  }
  if (q.shape.at(-1) !== k.shape.at(-1) || k.shape.at(-2) !== v.shape.at(-2)) {
    throw new GraphError(op, `q ${shapeStr(q.shape)}, k ${shapeStr(k.shape)}, v ${shapeStr(v.shape)}: q and k must agree in their last axis, k and v in their second-to-last`, callerLocation());
  }
  if (opts.mask && opts.mask.dtype !== "bool") throw new GraphError(op, `mask must be bool (true = attend), got ${opts.mask.dtype}${shapeStr(opts.mask.shape)}`, callerLocation());
  const perm = [...q.shape.keys()];
  perm.splice(-2, 2, q.rank - 1, q.rank - 2);
  const scores = q.matmul(k.transpose(perm)).mul(opts.scale ?? 1 / Math.sqrt(q.shape.at(-1)!));
  const masked = opts.mask ? opts.mask.where(scores, MASKED_SCORE) : scores;
  return dropout(softmax(masked), opts.dropout ?? 0).matmul(v);
}

/** Options of `multiHeadAttention`. */
export interface AttentionOptions {
  /** Number of heads; must divide the model width. */
  readonly heads: number;
  /** Each position attends only to itself and earlier ones (default false). */
  readonly causal?: boolean;
  /** Dropout rate on the attention weights in the training step (default 0). */
  readonly dropout?: number;
  /** Biases in the four projections (default true). */
  readonly useBias?: boolean;
}

/**
 * Multi-head self-attention over x [..., T, D] (Keras `MultiHeadAttention`
 * with query = key = value): projections `${name}.q`, `.k`, `.v` and `.out`
 * (each a dense layer with `.W` [D, D] and `.b` [D]), `heads` heads of width
 * D / heads, scaled dot-product attention per head, then the output
 * projection. `causal` masks later positions with a compile-time constant.
 */
export function multiHeadAttention(g: GraphBuilder, name: string, x: Tensor, opts: AttentionOptions): Tensor {
  const op = "multiHeadAttention";
  if (x.rank < 2) throw new GraphError(op, `"${name}": x must be [..., seq, width], got ${shapeStr(x.shape)}`, callerLocation());
  const [T, D] = [x.shape.at(-2)!, x.shape.at(-1)!];
  const heads = opts?.heads;
  if (!Number.isInteger(heads) || heads < 1 || D % heads !== 0) {
    throw new GraphError(op, `"${name}": heads must be a positive integer that divides the width ${D}, got ${String(heads)}`, callerLocation());
  }
  const rate = opts.dropout ?? 0;
  if (!(rate >= 0 && rate < 1)) throw new GraphError(op, `"${name}": dropout must be in [0, 1), got ${String(rate)}`, callerLocation());
  const lead = x.shape.slice(0, -2);
  const B = lead.reduce((a, b) => a * b, 1);
  const useBias = opts.useBias ?? true;
  const { q, k, v, merge } = headProjections(g, name, x.reshape([B, T, D]), heads, useBias);
  const attended = dotProductAttention(q, k, v, { dropout: rate, ...(opts.causal ? { mask: causalMask(T) } : {}) });
  return merge(attended).reshape([...lead, T, D]);
}

/**
 * The projections of multi-head attention over x [B, T, D]: q, k and v split
 * into heads [B, heads, T, D / heads], and `merge`, which joins attended heads
 * back to [B, T, D] through the output projection.
 */
function headProjections(g: GraphBuilder, name: string, x: Tensor, heads: number, useBias: boolean): { q: Tensor; k: Tensor; v: Tensor; merge: (attended: Tensor) => Tensor } {
  const [B, T, D] = x.shape as [number, number, number];
  const dh = D / heads;
  // [B, T, D] → [B, heads, T, dh]
  const split = (t: Tensor) => t.reshape([B, T, heads, dh]).transpose([0, 2, 1, 3]);
  return {
    q: split(dense(g, `${name}.q`, x, D, { useBias })),
    k: split(dense(g, `${name}.k`, x, D, { useBias })),
    v: split(dense(g, `${name}.v`, x, D, { useBias })),
    merge: (attended) => dense(g, `${name}.out`, attended.transpose([0, 2, 1, 3]).reshape([B, T, D]), D, { useBias }),
  };
}

/** The keys and values of the positions so far, and where the new token goes (see `cachedMultiHeadAttention`). */
export interface AttentionCache {
  /** [B, heads, maxLength, D / heads]: row j holds position j's key; rows from `index` on are ignored. */
  readonly keys: Tensor;
  /** [B, heads, maxLength, D / heads], as `keys`. */
  readonly values: Tensor;
  /** i32 [1]: the position of the new token, in [0, maxLength). */
  readonly index: Tensor;
}

/** Options of `cachedMultiHeadAttention`. */
export interface CachedAttentionOptions {
  readonly heads: number;
  readonly cache: AttentionCache;
  /** Biases in the four projections (default true). */
  readonly useBias?: boolean;
}

/**
 * One step of causal multi-head self-attention with a key/value cache
 * (KerasNLP's `CachedMultiHeadAttention`): x [B, 1, D] is the token at
 * position `cache.index`; its key and value are written into the cache at
 * that row, and its query attends to rows 0 … index. The params are those of
 * `multiHeadAttention(g, name, …)`, so the output [B, 1, D] equals row
 * `index` of causal `multiHeadAttention` over the whole sequence, for the
 * cost of one row. Returns it with the updated cache, for the next step.
 */
export function cachedMultiHeadAttention(g: GraphBuilder, name: string, x: Tensor, opts: CachedAttentionOptions): { output: Tensor; keys: Tensor; values: Tensor } {
  const op = "cachedMultiHeadAttention";
  if (x.rank !== 3 || x.shape[1] !== 1) throw new GraphError(op, `"${name}": x must be one token per example [batch, 1, width], got ${shapeStr(x.shape)}`, callerLocation());
  const [B, , D] = x.shape as [number, number, number];
  const heads = opts?.heads;
  if (!Number.isInteger(heads) || heads < 1 || D % heads !== 0) {
    throw new GraphError(op, `"${name}": heads must be a positive integer that divides the width ${D}, got ${String(heads)}`, callerLocation());
  }
  const { keys, values, index } = opts.cache ?? ({} as Partial<AttentionCache>);
  if (!keys || !values || !index) throw new GraphError(op, `"${name}": cache must be { keys, values, index } tensors`, callerLocation());
  const T = keys.shape[2]!;
  const want = shapeStr([B, heads, T, D / heads]);
  if (keys.rank !== 4 || shapeStr(keys.shape) !== want || shapeStr(values.shape) !== want || !isFloat(keys.dtype) || values.dtype !== keys.dtype) {
    throw new GraphError(op, `"${name}": cache keys and values must be float [batch, heads, length, width / heads] = ${want}, got ${keys.dtype}${shapeStr(keys.shape)} and ${values.dtype}${shapeStr(values.shape)}`, callerLocation());
  }
  if (index.dtype !== "i32" || shapeStr(index.shape) !== "[1]") throw new GraphError(op, `"${name}": cache index must be i32[1] (the new token's position), got ${index.dtype}${shapeStr(index.shape)}`, callerLocation());
  const { q, k, v, merge } = headProjections(g, name, x, heads, opts.useBias ?? true);
  const rows = g.const(Array.from({ length: T }, (_, j) => j), [T], "i32");
  // the new row at `index` (its key and value broadcast over the length), the old rows elsewhere
  const here = rows.equal(index).reshape([T, 1]);
  const newKeys = here.where(k, keys);
  const newValues = here.where(v, values);
  const attended = dotProductAttention(q, newKeys, newValues, { mask: rows.lessEqual(index) });
  return { output: merge(attended), keys: newKeys, values: newValues };
}

/** Options of `batchNorm`. */
export interface BatchNormOptions {
  /** Weight of the old moving statistics in each update (default 0.99, as Keras). */
  readonly momentum?: number;
  /** Added to the variance before the square root (default 0.001, as Keras). */
  readonly eps?: number;
  /** Learn a shift `beta` (default true) and a scale `gamma` (default true). */
  readonly center?: boolean;
  readonly scale?: boolean;
}

/**
 * Batch normalization over every axis but the last (channels), as Keras
 * `BatchNormalization(axis=-1)`: in the training step x is normalized with
 * the batch's mean and (biased) variance, and the moving statistics
 * `${name}.movingMean` and `${name}.movingVariance` (non-trainable params,
 * saved in checkpoints) are updated after the step to
 * `momentum · moving + (1 − momentum) · batch`; forward/predict normalize
 * with the moving statistics. Then scale `${name}.gamma` and shift `${name}.beta`.
 */
export function batchNorm(g: GraphBuilder, name: string, x: Tensor, opts: BatchNormOptions = {}): Tensor {
  const op = "batchNorm";
  const momentum = opts.momentum ?? 0.99;
  const eps = opts.eps ?? 1e-3;
  if (x.rank < 2 || !isFloat(x.dtype)) throw new GraphError(op, `"${name}": x must be a float tensor [..., channels] of rank ≥ 2, got ${x.dtype}${shapeStr(x.shape)}`, callerLocation());
  if (!(momentum >= 0 && momentum < 1)) throw new GraphError(op, `"${name}": momentum must be in [0, 1), got ${String(momentum)}`, callerLocation());
  if (!(eps > 0)) throw new GraphError(op, `"${name}": eps must be > 0, got ${String(eps)}`, callerLocation());
  const C = x.shape.at(-1)!;
  const dtype = x.dtype;
  const axes = x.shape.slice(0, -1).map((_, i) => i);
  const gamma = opts.scale === false ? undefined : g.param(`${name}.gamma`, [C], { init: "ones", dtype });
  const beta = opts.center === false ? undefined : g.param(`${name}.beta`, [C], { init: "zeros", dtype });
  const movingMean = g.param(`${name}.movingMean`, [C], { init: "zeros", trainable: false, dtype });
  const movingVariance = g.param(`${name}.movingVariance`, [C], { init: "ones", trainable: false, dtype });

  const normalize = (mean: Tensor, variance: Tensor): Tensor => {
    let y = x.sub(mean).mul(variance.add(eps).rsqrt());
    if (gamma) y = y.mul(gamma);
    return beta ? y.add(beta) : y;
  };
  const mean = x.mean(axes);
  const variance = x.sub(mean).square().mean(axes);
  const ema = (moving: Tensor, batch: Tensor) => moving.mul(momentum).add(batch.stopGradient().mul(1 - momentum));
  g.assign(movingMean, ema(movingMean, mean));
  g.assign(movingVariance, ema(movingVariance, variance));
  return x.ctx.apply("ifTraining", [normalize(mean, variance), normalize(movingMean, movingVariance)], {});
}
