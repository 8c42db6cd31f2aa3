// --check-numerics: runs a bundle's kernels one at a time and stops at the
// first NaN or infinity one of them writes, naming the kernel, the graph node
// it computes and the line of the user's model it came from.
import type { FusedNode, KernelEntry, Manifest, Slot } from "./manifest.js";
import type { Arenas, FloatArray } from "./arena.js";
import { slotView } from "./arena.js";

/** One emitted kernel: reads and writes the arenas at fixed offsets. */
export type KernelFn = (F: FloatArray, I: Int32Array) => void;

/** What forward.js and step.js export as `KERNELS`: the kernels in execution order, by name. */
export type KernelTable = readonly (readonly [string, KernelFn])[];

/** Where the first non-finite value came from. */
export interface NumericsFault {
  /** What was running: an entry point's kernel, or the check of the inputs and params before any kernel. */
  readonly phase: "forward" | "gradients" | "update" | "input" | "param";
  /** The 1-based step that `step()` was computing, when it was a step. */
  readonly step?: number;
  /** The kernel that wrote the value (absent for inputs and params). */
  readonly kernel?: string;
  /**
   * The graph node that produced it, as printed (`e:f32[3,1] = div 1.0 d`), or
   * what an update does. In a fused kernel, which computes several nodes and
   * stores only some, it is the first node that can turn finite values into
   * NaN or infinity (see `suspectNode`).
   */
  readonly node?: string;
  /** The user's file:line, or `grad of sqrt at file:line` for backward nodes. */
  readonly src?: string;
  /** For a fused kernel: how many nodes it computes. */
  readonly fused?: number;
  /** The value's name (a node's printed name, an input, a param). */
  readonly label: string;
  /** The element's position, e.g. `[1,0]` (`[]` for a scalar). */
  readonly index: string;
  readonly value: number;
}

/** Thrown by a bundle loaded with `checkNumerics`: the first NaN or infinity, and where it came from. */
export class NumericsError extends Error {
  override readonly name = "NumericsError";
  constructor(readonly fault: NumericsFault) {
    super(describeFault(fault));
  }
}

/** One line: the value, the step, the kernel, the user's line and the printed node. */
export function describeFault(f: NumericsFault): string {
  const at = f.step !== undefined ? `step ${f.step}: ` : "";
  const what = String(f.value);
  if (f.phase === "input" || f.phase === "param") {
    return `${at}${f.phase} "${f.label}" holds ${what} at ${f.index} before any kernel ran`;
  }
  const src = f.src ? ` (${f.src})` : "";
  const fused = f.fused
    ? `; of the ${f.fused} nodes this fused kernel computes, this is the first that can turn finite values into NaN or infinity (compile with fusion: false to check node by node)`
    : "";
  return `${at}kernel ${f.kernel} produced ${what} in ${f.label}${f.index}${src}: ${f.node}${fused}`;
}

/** Ops that can make NaN or infinity out of finite inputs (x/0, log 0, sqrt of a negative, overflow). */
export const RISKY_OPS: ReadonlySet<string> = new Set(["div", "log", "sqrt", "rsqrt", "pow", "exp"]);

/**
 * The node of a fused kernel that most likely produced a non-finite value:
 * the first one whose op is in RISKY_OPS, else the last one (the kernel's result).
 */
export function suspectNode(nodes: readonly FusedNode[]): FusedNode | undefined {
  return nodes.find((n) => RISKY_OPS.has(n.op)) ?? nodes.at(-1);
}

/** The index of the first NaN or ±Infinity of `a`, or -1. */
export function firstNonFinite(a: ArrayLike<number>): number {
  for (let i = 0; i < a.length; i++) {
    const v = a[i]!;
    // v - v is NaN exactly for NaN and ±Infinity
    if (v - v !== 0) return i;
  }
  return -1;
}

/** `[i,j,...]` of a flat row-major index into `shape`. */
export function unravelIndex(flat: number, shape: readonly number[]): string {
  const out: number[] = [];
  let rest = flat;
  for (let ax = shape.length - 1; ax >= 0; ax--) {
    const d = shape[ax]!;
    out.push(d > 0 ? rest % d : 0);
    rest = d > 0 ? Math.floor(rest / d) : 0;
  }
  return `[${out.reverse().join(",")}]`;
}

/** A module's `KERNELS`, checked; `file` names it in errors. */
export function kernelTableOf(mod: unknown, file: string): KernelTable {
  const table = (mod as { KERNELS?: unknown }).KERNELS;
  if (!Array.isArray(table)) {
    throw new Error(`${file}: exports no KERNELS list, which --check-numerics needs; recompile the model with this version of gradc`);
  }
  for (const row of table) {
    if (!Array.isArray(row) || typeof row[0] !== "string" || typeof row[1] !== "function") {
      throw new Error(`${file}: KERNELS must list [name, function] pairs`);
    }
  }
  return table as KernelTable;
}

/** A float slot to scan and the name it goes by in messages. */
interface Watched {
  readonly view: FloatArray;
  readonly label: string;
  readonly shape: readonly number[];
}

/** One kernel with the float slots it writes. */
interface CheckedKernel {
  readonly fn: KernelFn;
  readonly entry: KernelEntry;
  readonly writes: readonly Watched[];
}

const floatView = (arenas: Arenas, slot: Slot): FloatArray => slotView(arenas, slot) as FloatArray;

/**
 * The kernels of a bundle run one at a time, each followed by a scan of the
 * float slots it wrote: a drop-in for the `{ forward() }` and
 * `{ gradients(); step() }` objects of forward.js and step.js that throws a
 * NumericsError at the first NaN or infinity. Inputs and params are scanned
 * before the first kernel, so bad data is told apart from a bad kernel.
 */
export class CheckedKernels {
  private readonly forwardKernels: CheckedKernel[];
  private readonly gradientKernels: CheckedKernel[];
  private readonly updateKernels: CheckedKernel[];
  private readonly trainInputs: Watched[];
  private readonly forwardInputs: Watched[];
  private readonly params: Watched[];
  private readonly stepView: Int32Array | undefined;

  constructor(manifest: Manifest, private readonly arenas: Arenas, forward: KernelTable, step: KernelTable) {
    const byName = new Map(manifest.kernels.map((k) => [k.name, k]));
    const bind = (table: KernelTable, file: string): CheckedKernel[] =>
      table.map(([name, fn]) => {
        const entry = byName.get(name);
        if (!entry) throw new Error(`${file}: kernel ${name} is not in the manifest's kernel list`);
        if (!entry.writes) throw new Error(`manifest.json: kernel ${name} lists no written slots, which --check-numerics needs; recompile the model with this version of gradc`);
        const writes = entry.writes.filter((w) => w.arena === "F").map((w) => ({ view: floatView(arenas, w), label: w.label ?? name, shape: w.shape }));
        return { fn, entry, writes };
      });
    this.forwardKernels = bind(forward, manifest.files.forward);
    const stepKernels = bind(step, manifest.files.step);
    this.gradientKernels = stepKernels.filter((k) => k.entry.entry.includes("gradients"));
    this.updateKernels = stepKernels.filter((k) => k.entry.entry.includes("update"));
    const watch = (s: Slot & { readonly name: string }): Watched => ({ view: floatView(arenas, s), label: s.name, shape: s.shape });
    const floats = manifest.inputs.filter((i) => i.arena === "F");
    this.trainInputs = floats.filter((i) => i.usedBy.includes("train")).map(watch);
    this.forwardInputs = floats.filter((i) => i.usedBy.includes("forward")).map(watch);
    this.params = manifest.params.filter((p) => p.arena === "F").map(watch);
    this.stepView = manifest.hyper.step.arena === "I" ? (slotView(arenas, manifest.hyper.step) as Int32Array) : undefined;
  }

  forward(): void {
    this.scanSources(this.forwardInputs, undefined);
    this.run(this.forwardKernels, "forward", undefined);
  }

  gradients(): void {
    this.scanSources(this.trainInputs, undefined);
    this.run(this.gradientKernels, "gradients", undefined);
  }

  update(): void {
    this.run(this.updateKernels, "update", this.stepView ? this.stepView[0] : undefined);
  }

  step(): void {
    // the runtime writes the 1-based step count before each step()
    const step = this.stepView ? this.stepView[0] : undefined;
    this.scanSources(this.trainInputs, step);
    this.run(this.gradientKernels, "gradients", step);
    this.run(this.updateKernels, "update", step);
  }

  private scanSources(inputs: readonly Watched[], step: number | undefined): void {
    for (const [phase, list] of [["input", inputs], ["param", this.params]] as const) {
      for (const w of list) {
        const i = firstNonFinite(w.view);
        if (i >= 0) {
          throw new NumericsError({ phase, ...(step !== undefined ? { step } : {}), label: w.label, index: unravelIndex(i, w.shape), value: w.view[i]! });
        }
      }
    }
  }

  private run(kernels: readonly CheckedKernel[], phase: "forward" | "gradients" | "update", step: number | undefined): void {
    for (const k of kernels) {
      k.fn(this.arenas.F, this.arenas.I);
      for (const w of k.writes) {
        const i = firstNonFinite(w.view);
        if (i < 0) continue;
        const suspect = k.entry.nodes && k.entry.nodes.length > 1 ? suspectNode(k.entry.nodes) : undefined;
        const src = suspect ? suspect.src : k.entry.src;
        throw new NumericsError({
          phase,
          ...(step !== undefined ? { step } : {}),
          kernel: k.entry.name,
          node: suspect ? suspect.node : k.entry.node,
          ...(src ? { src } : {}),
          ...(suspect ? { fused: k.entry.nodes!.length } : {}),
          label: w.label,
          index: unravelIndex(i, w.shape),
          value: w.view[i]!,
        });
      }
    }
  }
}
