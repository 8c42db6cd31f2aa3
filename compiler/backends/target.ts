// What the pipeline asks of a backend: its capabilities and cost model
// (fusion), what lowering needs of it (LoweringTarget: its reduction width
// and reserved names), its kernel IR → kernel IR passes (the
// "backend passes" stage of compile.ts) and its kernel files (the emit
// stage). Nothing above compiler/backends/ names a backend; it holds a Target.
import type { CostModel } from "../fusion/fuse.js";
import type { LoweringTarget } from "../lower/kernelBuild.js";
import type { Kernel, Schedule } from "../lower/schedule.js";
import type { ArenaPlan } from "../plan/arena.js";
import type { Precision } from "../lower/lower.js";

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
  /** Whether its kernels can keep f32 temporaries as bfloat16 in an arena of their own (precision "mixed"); absent: no. */
  readonly bf16?: boolean;
}

/** What a backend pass knows besides the kernel. */
export interface PassContext {
  readonly precision: Precision;
}

/**
 * A kernel IR → kernel IR rewrite of a backend, run on every kernel after
 * lowering, in the order the target lists its passes. It returns the kernel
 * rewritten (`k` itself where it does not apply); the result must still pass
 * the kernel IR verifier (kernel/verify.ts), which the tests run after each pass.
 */
export interface KernelPass {
  readonly name: string;
  run(k: Kernel, cx: PassContext): Kernel;
}

/** One kernel's code as emitted, and the bundle file that holds it (`gradc inspect --kernel` shows it). */
export interface KernelSource {
  readonly file: string;
  readonly text: string;
}

/** What a backend's emitter hands the bundle writer. */
export interface EmittedKernels {
  /**
   * The backend's files, by path relative to the bundle: its kernel modules,
   * which the manifest names in `files.forward` and `files.step` (the runtime
   * device of `Target.device` loads them).
   */
  readonly files: ReadonlyMap<string, string>;
  /** Each kernel's code by kernel name (a kernel two files hold: the step's). */
  readonly functions: ReadonlyMap<string, KernelSource>;
  /** Files besides `forward` and `step` the backend's device loads, as manifest `files` entries (name → path in `files`). */
  readonly manifestFiles?: Readonly<Record<string, string>>;
  /** Milliseconds of the emit spent turning source into what runs (report.json's compileMs.transpile). */
  readonly transpileMs?: number;
}

/** A kernel backend, as the compiler's stages see it. */
export interface Target extends LoweringTarget {
  /** Its name, as `compile({ backend })` and the CLI's `--backend` take it. */
  readonly name: string;
  /** The runtime device its bundles run on: manifest.backend (runtime/devices.ts maps it to a Device). */
  readonly device: string;
  readonly capabilities: Capabilities;
  /** What a web page running its bundles must allow scripts besides their own files (CSP script-src sources; `gradc serve`). */
  readonly pageScriptSources?: readonly string[];
  /** The cost model fusion weighs. */
  readonly cost: CostModel;
  /** Its kernel IR passes, in order (the "backend passes" stage). */
  readonly passes: readonly KernelPass[];
  /** Its kernel files for a lowered, planned schedule (the "emit" stage). */
  emitKernels(s: Schedule, plan: ArenaPlan): EmittedKernels;
}
