// A character-level transformer language model: token and position
// embeddings, pre-norm blocks (causal multi-head self-attention, then a GELU
// MLP, each added back to the residual stream), a final layer norm, and a
// linear head to next-character logits. The loss is the mean cross-entropy
// of the next character in nats.
import { graph, nn } from "gradc";
import type { Graph, ModelConfig, Tensor } from "gradc";
import type { GraphBuilder } from "gradc";
import { brownVocab } from "./data.js";

/** The model's sizes. */
export interface LmSize {
  /** Number of distinct tokens (characters). */
  readonly vocab: number;
  /** Context length: characters per example. */
  readonly seq: number;
  readonly dim: number;
  readonly heads: number;
  readonly layers: number;
  /** Hidden width of each block's MLP. */
  readonly mlp: number;
}

/** How a graph of the model is built. */
export interface LmOptions {
  /** Examples per step; 1 for generation. */
  readonly batch: number;
  /** With a loss over `targets` (training), or only the logits (generation). */
  readonly loss?: boolean;
  /** Dropout rate on each block's attention and MLP outputs in the training step (default 0). */
  readonly dropout?: number;
}

/** Small normal draws for embeddings, as GPT-2 starts them. */
const EMBED_INIT = { name: "normal", stddev: 0.02 } as const;

/**
 * The model's layers over token ids [B, T]; params are named by scope:
 * `tok.embeddings`, `pos.embeddings`, `block0.ln1.gamma`, `block0.attn.q.W`,
 * `block0.mlp.in.W`, …, `final.gamma`, `head.W`.
 */
function build(g: GraphBuilder, size: LmSize, batch: number, rate: number): Tensor {
  const ids = g.input("ids", [batch, size.seq], "i32");
  const positions = g.const(Array.from({ length: size.seq }, (_, i) => i), [size.seq], "i32");
  return layers(g, size, ids, positions, rate, (x) => nn.multiHeadAttention(g, "attn", x, { heads: size.heads, causal: true }));
}

/**
 * Embeddings of `ids` [B, T] at `positions` [T], the blocks and the head: the
 * logits [B, T, vocab]. `attend(x, layer)` is each block's self-attention.
 */
function layers(g: GraphBuilder, size: LmSize, ids: Tensor, positions: Tensor, rate: number, attend: (x: Tensor, layer: number) => Tensor): Tensor {
  const { vocab, seq, dim, mlp } = size;
  const [batch, T] = ids.shape as [number, number];
  // [B, T, D]: each character's embedding plus its position's
  let h = nn.embedding(g, "tok", ids, vocab, dim, { init: EMBED_INIT }).add(nn.embedding(g, "pos", positions, seq, dim, { init: EMBED_INIT }));
  const norm = (name: string, x: Tensor) => g.scope(name, () => nn.layerNorm(x, g.param("gamma", [dim], { init: "ones" }), g.param("beta", [dim])));
  const dense = (name: string, x: Tensor, units: number) => nn.dense(g, name, x.reshape([batch * T, x.shape.at(-1)!]), units).reshape([batch, T, units]);
  for (let l = 0; l < size.layers; l++) {
    h = g.scope(`block${l}`, () => {
      // pre-norm: x + attention(norm(x)), then x + mlp(norm(x))
      const a = h.add(nn.dropout(attend(norm("ln1", h), l), rate));
      return a.add(nn.dropout(dense("mlp.out", dense("mlp.in", norm("ln2", a), mlp).gelu(), dim), rate));
    });
  }
  return dense("head", norm("final", h), vocab);
}

/**
 * The model's generation step with a key/value cache: the token `ids` [1, 1]
 * at position `index` [1], and each block's keys and values of the positions
 * before it (inputs `cache.block0.keys`, `cache.block0.values`, … [1, heads,
 * seq, dim / heads]); outputs the next token's `logits` [1, 1, vocab] and the
 * caches with the token's row written (`block0.keys`, …). Same params as the
 * model, so it runs the training bundle's weights.
 */
export function languageModelStep(name: string, size: LmSize): Graph {
  return graph(name, (g) => {
    const ids = g.input("ids", [1, 1], "i32");
    const index = g.input("index", [1], "i32");
    const shape = [1, size.heads, size.seq, size.dim / size.heads];
    const outputs: Record<string, Tensor> = {};
    outputs["logits"] = layers(g, size, ids, index, 0, (x, l) => {
      const cache = { keys: g.input(`cache.block${l}.keys`, shape), values: g.input(`cache.block${l}.values`, shape), index };
      const step = nn.cachedMultiHeadAttention(g, "attn", x, { heads: size.heads, cache });
      outputs[`block${l}.keys`] = step.keys;
      outputs[`block${l}.values`] = step.values;
      return step.output;
    });
    return { outputs };
  });
}

/** The caches of `languageModelStep`: each input and the output that holds it after a step. */
export function stepCaches(size: LmSize): { input: string; output: string }[] {
  return Array.from({ length: size.layers }, (_, l) => [`block${l}.keys`, `block${l}.values`])
    .flat()
    .map((output) => ({ input: `cache.${output}`, output }));
}

/** The model as a graph: with `loss`, inputs `ids` and `targets` [batch, seq] and the mean next-character cross-entropy in nats. */
export function languageModel(name: string, size: LmSize, opts: LmOptions): Graph {
  return graph(name, (g) => {
    const logits = build(g, size, opts.batch, opts.dropout ?? 0);
    if (opts.loss === false) return { outputs: { logits } };
    const targets = g.input("targets", [opts.batch, size.seq], "i32");
    const flat = logits.reshape([opts.batch * size.seq, size.vocab]);
    return { loss: nn.softmaxCrossEntropy(flat, targets.reshape([opts.batch * size.seq])), outputs: { logits } };
  });
}

/** The example's sizes (the vocabulary comes from the corpus) and its batch. */
export const SIZE: Omit<LmSize, "vocab"> = { seq: 64, dim: 128, heads: 4, layers: 2, mlp: 512 };
export const BATCH = 8;
/**
 * Dropout of the example's training step: none by default, as its run sees
 * less than half a pass over the corpus, where dropout only slows learning
 * (train.ts's --dropout sets a rate).
 */
export const DROPOUT = 0;

/**
 * Compile options of the example for a run of `steps` updates: AdamW with a
 * linear warm-up and a cosine decay, gradients clipped to norm 1, and the
 * batch-1 generation entry points over the same weights (the whole context,
 * and one token with a key/value cache).
 */
export function lmConfig(name: string, size: LmSize, vocab: readonly string[], steps: number, lr = 3e-3): ModelConfig {
  return {
    optimizer: {
      name: "adamw",
      lr,
      weightDecay: 0.1,
      warmupSteps: Math.min(100, Math.floor(steps / 10)),
      schedule: { name: "cosine", totalSteps: steps, minLr: lr / 10 },
    },
    gradClip: 1,
    generate: {
      graph: languageModel(name, size, { batch: 1, loss: false }),
      vocab,
      start: "\n",
      cached: { graph: languageModelStep(`${name}Step`, size), caches: stepCaches(size) },
    },
  };
}

/** Updates of the README's run. */
export const STEPS = 4500;

/** The characters of the whole Brown corpus: the example's vocabulary. */
export const VOCAB: readonly string[] = brownVocab();

/** The example's model at its sizes, for `gradc compile examples/lm/model.ts` (examples/lm/train.ts trains it). */
export default languageModel("lm", { ...SIZE, vocab: VOCAB.length }, { batch: BATCH, dropout: DROPOUT });

export const config: ModelConfig = lmConfig("lm", { ...SIZE, vocab: VOCAB.length }, VOCAB, STEPS);
