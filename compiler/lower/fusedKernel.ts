// What every fused kernel shares: the buffers it names, how it sees stored
// values and members, loop nests laid out once all buffer indexes are known,
// and the in-place pairs the memory plan may use.
import type { Tensor } from "../ir/node.js";
import type { Shape } from "../ir/types.js";
import type { Expr, LoopMark, Stmt } from "../kernel/kir.js";
import { addE, num } from "../kernel/kir.js";
import type { Coord } from "../kernel/coords.js";
import { coalesce, indexOf, nest } from "../kernel/loops.js";
import type { FusionPlan } from "../fusion/fuse.js";
import type { Group } from "../fusion/groups.js";
import type { InlineEnv } from "./inline.js";
import { Forms, formsByBuffer } from "./inline.js";
import type { Precision } from "./lower.js";
import { Namer } from "./names.js";
import type { Value } from "../fusion/program.js";
import type { ExternWork } from "../kernel/kir.js";

/** A fused kernel before it is bound to arena buffers. */
export interface FusedKernel {
  readonly body: readonly Stmt[];
  /** Kernel buffer name → the stored value it holds. */
  readonly buffers: ReadonlyMap<string, Value>;
  /** (read, written) buffer pairs the memory plan may place at one offset: each element is read only where it is then written. */
  readonly inplace: readonly (readonly [string, string])[];
  /** Every value the kernel computes, members and inlined ones (for its comments). */
  readonly computed: ReadonlySet<Value>;
  /** Work the target's own code does, at the body's `extern` statement (see ExternWork). */
  readonly extern?: ExternWork;
}

/** The state of one kernel being built. */
export class KernelContext {
  readonly forms = new Forms();
  readonly buffers = new Map<string, Value>();
  private readonly names = new Map<Value, string>();
  private readonly namer = new Namer();
  /** Members of this group already written to memory by this kernel (so later members may load them). */
  readonly written = new Set<Value>();
  /** Locals of the kernel that hold one value's element: inlined values and accumulators (see `probedKernel`). */
  readonly locals = new Map<string, Value>();

  constructor(
    readonly plan: FusionPlan,
    readonly group: Group,
    readonly precision: Precision,
    readonly nameOf: (t: Tensor) => string,
    /** Mixed precision: comparisons see f32 operands as bfloat16. */
    readonly mixed = false,
  ) {}

  /** The kernel's name for the buffer of a stored value. */
  bufferName(v: Value): string {
    let name = this.names.get(v);
    if (!name) {
      name = this.namer.fresh(`${this.nameOf(v.node)}${v.copy ? "_re" : ""}`);
      this.names.set(v, name);
      this.buffers.set(name, v);
    }
    return name;
  }

  /** Whether this kernel reads `v` from memory: stored and not one of its own members still to be written. */
  readable(v: Value): boolean {
    if (!this.plan.stored.has(v)) return false;
    return this.plan.groupOf.get(v) !== this.group || this.written.has(v);
  }

  /** The inliner's view of this kernel (in a frame of `n` axes with its own forms, for parts with other loops). */
  env(n = this.group.n, forms = this.forms): InlineEnv {
    return {
      n,
      precision: this.precision,
      mixed: this.mixed,
      forms,
      buffer: (v) => (this.readable(v) ? this.bufferName(v) : undefined),
      nameOf: this.nameOf,
      holds: (local, v) => this.locals.set(local, v),
    };
  }

  /**
   * In-place candidates: an input buffer read only at the single form its
   * output is written at (same flat index), in a kernel that computes every
   * value of an element before storing any.
   */
  inplacePairs(body: readonly Stmt[], outputs: readonly string[]): [string, string][] {
    const used = formsByBuffer(body);
    const pairs: [string, string][] = [];
    for (const out of outputs) {
      const wrote = used.get(out);
      if (!wrote || wrote.size !== 1) continue;
      const at = [...wrote][0]!;
      for (const [name, forms] of used) {
        if (name === out || outputs.includes(name)) continue;
        if (forms.size === 1 && forms.has(at)) pairs.push([name, out]);
      }
    }
    return pairs;
  }
}

/** Index expressions of forms over loops laid out for them. */
export interface LaidOut {
  /** Loops around `body`, each marked `mark`. */
  wrap(body: readonly Stmt[], mark: LoopMark): Stmt[];
  /** The part of form `i`'s index that these loops contribute. */
  part(i: number): Expr;
}

/**
 * Loops over the frame axes `axes` (sizes from `shape`), coalesced for the
 * forms' coefficients on those axes; variables `${prefix}0`, ...
 */
export function layOut(shape: Shape, axes: readonly number[], forms: readonly Coord[], prefix: string): LaidOut {
  const sizes = axes.map((a) => shape[a]!);
  if (sizes.some((d) => d === 0)) return { wrap: () => [], part: () => num(0) };
  const c = coalesce(sizes, forms.map((f) => axes.map((a) => f.c[a]!)));
  const vars = c.shape.map((_, i) => `${prefix}${i}`);
  return {
    wrap: (body, mark) => nest(c.shape, prefix, () => body, mark),
    part: (i) => indexOf(vars, c.strides[i] ?? []),
  };
}

/** Form `i`'s full index: the parts from each set of loops plus its constant. */
export function formIndex(forms: readonly Coord[], i: number, parts: readonly LaidOut[]): Expr {
  let e: Expr = num(forms[i]!.k);
  for (const p of parts) e = addE(p.part(i), e);
  return e;
}
