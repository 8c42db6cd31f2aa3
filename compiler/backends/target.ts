// What fusion, lowering and the bundle writer ask of a backend: its
// capabilities, its cost model, its matmul strategy (a kernel IR pass of its
// own) and the hooks its emitter adds to the TypeScript kernels. Nothing
// above compiler/backends/ names a backend; it holds a Target.
import type { ExternWork, Stmt } from "../kernel/kir.js";
import type { CostModel } from "../fusion/fuse.js";
import type { FusedKernel, KernelContext } from "../lower/fusedKernel.js";

/** What the emitter hooks see of a kernel (lower/schedule.ts's Kernel has these and more). */
export interface EmittedKernel {
  readonly name: string;
  readonly extern?: ExternWork;
}

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
  /** Whether its emitter takes fused kernels (several graph nodes per kernel); without, every node is a kernel of its own. */
  readonly fusion: boolean;
}

/** What a target adds to the TypeScript module of a bundle's kernels. */
export interface EmitHooks {
  /** Module-level TypeScript statements the kernels of one file need (run once when the module loads). */
  preamble(ks: readonly EmittedKernel[]): string[];
  /** The JavaScript of a kernel's extern statement. */
  externJs(k: EmittedKernel, s: Stmt & { k: "extern" }): string[];
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
  readonly device: "ts" | "gpu";
  readonly capabilities: Capabilities;
  readonly cost: CostModel;
  /**
   * Columns a reduction over all but the last axis accumulates at once, each
   * in a local of its own, so that it reads rows contiguously (below 2: one
   * accumulator per output, row by row).
   */
  readonly reduceColumns: number;
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
