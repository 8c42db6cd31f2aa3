// Lowers one graph node to one kernel body in the kernel IR: elementwise ops
// through their `expr` with broadcast-aware strides, everything else through
// its record's `lower`. Uniform constants become literals, aliases cost nothing.
import type { Tensor } from "../ir/node.js";
import type { Shape } from "../ir/types.js";
import { GraphError, stridesOf } from "../ir/types.js";
import type { DTypeName } from "../../runtime/manifest.js";
import { OPS } from "../ops/index.js";
import type { NodeOf } from "../ops/def.js";
import type { OpKind } from "../ir/kinds.js";
import type { Expr, Stmt } from "../kernel/kir.js";
import { load, mapExprs, num, store, un } from "../kernel/kir.js";
import { broadcastStrides, stridedLoops } from "../kernel/loops.js";
import { literalValue } from "../ir/constants.js";

/**
 * The arenas: F holds floats, I holds i32 and bool values, and H (mixed
 * precision only) holds f32 temporaries stored as bfloat16, 2 bytes each.
 */
export type ArenaName = "F" | "I" | "H";

/**
 * What a buffer holds, for the arena plan, the manifest and kernels.txt.
 * `node` and `scratch` buffers are temporaries the memory plan may overlap
 * when their lifetimes do not; the others keep their own place.
 */
export type BufferRole = "input" | "param" | "node" | "const" | "state" | "hyper" | "scratch" | "grad" | "output" | "loss" | "block";

/** A flat region of one arena with a static shape. Offsets are the arena plan's. */
export interface Buffer {
  readonly id: number;
  /** A readable label: the printed name of its node, a param name, `m(W1)`, `lr`. */
  readonly label: string;
  readonly role: BufferRole;
  readonly arena: ArenaName;
  readonly shape: Shape;
  /** The element type it is stored as (f32 nodes are f64 in f64 mode); in arena H, the f32 values kernels compute, kept as bfloat16. */
  readonly dtype: DTypeName;
  readonly size: number;
  /** Values `create()` writes once (constants). */
  readonly fill?: readonly number[];
  /** The node whose value it holds, if any. */
  readonly node?: Tensor;
  /** A view at a fixed element offset inside a block (params, gradients, optimizer state laid out alike). */
  readonly within?: { readonly block: Buffer; readonly at: number };
}

/** Whether the memory plan may share a buffer's space with others whose lifetimes do not overlap. */
export function isTemporary(b: Buffer): boolean {
  return (b.role === "node" || b.role === "scratch") && !b.within;
}

/** Float precision of a compile: the F arena's element type, the type kernels compute in. */
export type Precision = "f32" | "f64";

/** Bytes of one element of a buffer in its arena. */
export function elementBytes(b: Pick<Buffer, "arena" | "dtype">): number {
  return b.arena === "H" ? 2 : b.dtype === "f64" ? 8 : 4;
}

/** Ops whose result is their (first) input's buffer: no kernel, no copy. */
export function isAlias(t: Tensor): boolean {
  return OPS[t.op].fusion === "alias";
}

/** The node whose buffer `t` reads, following aliases. */
export function storageNode(t: Tensor): Tensor {
  let s = t;
  while (isAlias(s)) s = s.inputs[0]!;
  return s;
}

/** The arena a dtype lives in. */
export function arenaOf(dtype: DTypeName): "F" | "I" {
  return dtype === "f32" || dtype === "f64" ? "F" : "I";
}

/** The dtype a node is stored as: every float takes the F arena's precision. */
export function storedDtype(dtype: DTypeName, precision: Precision): DTypeName {
  return dtype === "f32" || dtype === "f64" ? precision : dtype;
}

/** A value rounded as the interpreter rounds a node of `dtype`. */
export function roundValue(v: number, dtype: DTypeName, precision: Precision): number {
  switch (dtype) {
    case "f32": return precision === "f64" ? v : Math.fround(v);
    case "f64": return v;
    case "i32": return v | 0;
    case "bool": return v !== 0 ? 1 : 0;
    default: return dtype satisfies never;
  }
}

/**
 * The literal value of `t` when it is (an alias of) a constant with one value
 * repeated: such operands are inlined, never given a buffer.
 */
export function uniformValue(t: Tensor, precision: Precision): number | undefined {
  const s = storageNode(t);
  const value = literalValue(s);
  return value === undefined ? undefined : roundValue(value, s.dtype, precision);
}

/**
 * The operands of a comparison in a mixed-precision kernel: every f32 operand
 * but a literal rounded to bfloat16. A value stored in arena H was rounded so,
 * and the same value loaded from F or recomputed inline must compare alike
 * (`a == max(a)` picks the max wherever `a` lives); the rounding is monotonic,
 * so orderings agree too.
 */
export function comparableMixed(t: Tensor, args: readonly Expr[]): readonly Expr[] {
  if (t.dtype !== "bool") return args;
  return args.map((a, i) => (t.inputs[i]!.dtype === "f32" && a.k !== "num" ? un("bf16", a) : a));
}

/** A kernel body over named buffers: `in0`, `in1`, ... for operands and `out`. */
export interface LoweredBody {
  readonly body: readonly Stmt[];
  /** Operand indexes the body reads from a buffer (the others were inlined). */
  readonly reads: readonly number[];
}

/** Replaces loads of the listed buffers by literals (any index: the value is uniform). */
function inlineLoads(stmts: readonly Stmt[], literals: ReadonlyMap<string, number>): Stmt[] {
  return mapExprs(stmts, (e) => {
    const v = e.k === "load" ? literals.get(e.buf) : undefined;
    return v === undefined ? e : num(v);
  });
}

/**
 * One elementwise kernel from the op's `expr`: loop over the output, each
 * buffer operand indexed with stride 0 on its broadcast axes, literals inline.
 */
function lowerElementwise(t: Tensor, expr: (args: readonly Expr[], node: NodeOf<OpKind>) => Expr, precision: Precision, mixed: boolean): LoweredBody {
  const reads: number[] = [];
  const strides: number[][] = [stridesOf(t.shape)];
  t.inputs.forEach((x, k) => {
    if (uniformValue(x, precision) !== undefined) return;
    reads.push(k);
    strides.push(broadcastStrides(x.shape, t.shape));
  });
  const body = stridedLoops(t.shape, strides, (index) => {
    const args = t.inputs.map((x, k) => {
      const lit = uniformValue(x, precision);
      return lit !== undefined ? num(lit) : load(`in${k}`, index[1 + reads.indexOf(k)]!);
    });
    return [store("out", index[0]!, expr(mixed ? comparableMixed(t, args) : args, t as NodeOf<OpKind>))];
  });
  return { body, reads };
}

/** The kernel body that computes node `t` into `out` from its operands (`mixed`: comparisons as in mixed precision). */
export function lowerNode(t: Tensor, precision: Precision, mixed = false): LoweredBody {
  const def = OPS[t.op] as { expr?: (args: readonly Expr[], n: NodeOf<OpKind>) => Expr; lower?: (n: NodeOf<OpKind>) => readonly Stmt[] };
  if (def.expr) return lowerElementwise(t, def.expr, precision, mixed);
  if (!def.lower) {
    throw new GraphError(t.op, `has no kernel lowering yet (no \`expr\` or \`lower\` in its record)`, t.src);
  }
  const literals = new Map<string, number>();
  const reads: number[] = [];
  t.inputs.forEach((x, k) => {
    const lit = uniformValue(x, precision);
    if (lit === undefined) reads.push(k);
    else literals.set(`in${k}`, lit);
  });
  const body = def.lower(t as NodeOf<OpKind>);
  return { body: literals.size ? inlineLoads(body, literals) : body, reads };
}
