// What fusion, lowering and the bundle writer ask of a backend: its
// capabilities, its cost model, its matmul strategy (a kernel IR pass of its
// own) and the hooks its emitter adds to the TypeScript kernels. Nothing
// above compiler/backends/ names a backend; it holds a Target.
import type { Stmt } from "../kernel/kir.js";
import type { Value } from "../fusion/program.js";
import type { Precision } from "../lower/lower.js";
import type { FusedKernel, KernelContext } from "../lower/fusedKernel.js";
import type { Kernel } from "../lower/schedule.js";

/** What a target can do. */
export interface Capabilities {
  /** Whether kernels may compute in float64 (f64 compiles for gradient checks). */
  readonly f64: boolean;
  /** f32 lanes of its vector instructions (1: scalar). */
  readonly vectorWidth: number;
  /** Threads a kernel may run on at once. */
  readonly threads: number;
  /** Whether it has atomic adds (a parallel scatterAdd), or must rewrite scatters as gathers. */
  readonly atomics: boolean;
}

/** The costs fusion weighs when it decides what to store and what to recompute inline. */
export interface CostModel {
  /**
   * A value inlined into a matmul operand is recomputed as often as
   * `matmulReuse` says: it is stored once that total cost per element is above this.
   */
  readonly operandCost: number;
  /** How many times this target's matmul kernel reads each element of A and of B. */
  matmulReuse(mm: Value, precision: Precision): readonly [number, number];
}

/**
 * Work a backend pass hands to code of its own (an `extern` statement in the
 * kernel body): numbers that backend's emitter reads back, and the kernel's
 * private scratch buffer, if it needs one.
 */
export interface ExternWork {
  readonly data: Readonly<Record<string, number>>;
  readonly scratch?: { readonly name: string; readonly size: number };
}

/** What a target adds to the TypeScript module of a bundle's kernels. */
export interface EmitHooks {
  /** Module-level TypeScript statements the kernels of one file need (run once when the module loads). */
  preamble(ks: readonly Kernel[]): string[];
  /** The JavaScript of a kernel's extern statement. */
  externJs(k: Kernel, s: Stmt & { k: "extern" }): string[];
  /** The array a kernel's scratch buffer lives in, indexed from 0. */
  readonly scratchArray: string;
  /** Module-level names the preamble declares, which no kernel may be named. */
  readonly moduleNames: readonly string[];
}

/** A kernel backend, as the compiler's middle stages see it. */
export interface Target {
  /** Its name, as `compile({ backend })` and the CLI's `--backend` take it. */
  readonly name: string;
  /** The runtime device its bundles run on (manifest.backend). */
  readonly device: "ts";
  readonly capabilities: Capabilities;
  readonly cost: CostModel;
  /** The matmul strategy: a fused matmul kernel (its products and epilogue) in this target's kernel IR. */
  matmulKernel(cx: KernelContext): FusedKernel;
  readonly emit: EmitHooks;
}

/** Hooks of a target whose kernels are plain TypeScript. */
export const PLAIN_TS: EmitHooks = {
  preamble: () => [],
  externJs: (k, s) => {
    throw new Error(`emit: kernel ${k.name} has an extern ${s.call}, which plain TypeScript cannot run`);
  },
  scratchArray: "SCRATCH",
  moduleNames: [],
};
