// Loop-nest helpers shared by the lowerings in the op records and in lower/:
// nested loops over a shape, strides of broadcast operands, and axis
// coalescing so that a same-shape elementwise op becomes one flat loop.
import type { Shape } from "../ir/types.js";
import { stridesOf } from "../ir/types.js";
import type { Expr, LoopMark, Stmt } from "./kir.js";
import { addE, loop, mulE, num, ref } from "./kir.js";

/**
 * Stride of each axis of `outShape` in an operand of shape `inShape`
 * broadcast to it (numpy rules): 0 on added leading axes and on size-1 axes.
 */
export function broadcastStrides(inShape: Shape, outShape: Shape): number[] {
  const inStrides = stridesOf(inShape);
  const lead = outShape.length - inShape.length;
  return outShape.map((_, ax) => {
    const i = ax - lead;
    return i < 0 || inShape[i] === 1 ? 0 : inStrides[i]!;
  });
}

/** A loop nest after coalescing: sizes of the kept axes and each operand's strides on them. */
export interface Coalesced {
  readonly shape: number[];
  readonly strides: number[][];
}

/**
 * Drops size-1 axes and merges neighbouring axes that are contiguous in every
 * operand (stride[a] = stride[b]·size[b]), so fewer loops cover the same elements.
 */
export function coalesce(shape: Shape, strides: readonly (readonly number[])[]): Coalesced {
  const axes = shape.map((_, i) => i).filter((i) => shape[i] !== 1);
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (const ax of axes) {
    const last = outShape.length - 1;
    const size = shape[ax]!;
    // merge ax into the previous kept axis when every operand walks them as one run
    const mergeable = last >= 0 && strides.every((s, k) => outStrides[k]![last] === s[ax]! * size);
    if (mergeable) {
      outShape[last] = outShape[last]! * size;
      strides.forEach((s, k) => (outStrides[k]![last] = s[ax]!));
    } else {
      outShape.push(size);
      strides.forEach((s, k) => outStrides[k]!.push(s[ax]!));
    }
  }
  return { shape: outShape, strides: outStrides };
}

/**
 * The trailing batch axes of a product that fold into its rows: batch axis t
 * folds when every operand's stride on t is its stride on the rows times the
 * rows below t (m times the sizes of the batch axes already folded), so that
 * one row loop over the product of those sizes reaches each element the batch
 * loops and the row loop reached (x[B, S, D]·W[D, N]: W's strides on both are
 * 0, x's and C's walk the batches' rows as one run). Operand k has stride
 * `batchStrides[k][t]` on batch axis t and `rowStrides[k]` on the rows.
 * Returns how many leading batch axes stay loops, and the folded rows.
 */
export function foldRows(batch: Shape, m: number, batchStrides: readonly (readonly number[])[], rowStrides: readonly number[]): { kept: number; rows: number } {
  let kept = batch.length;
  let rows = m;
  while (kept > 0 && batchStrides.every((s, k) => s[kept - 1] === rowStrides[k]! * rows)) {
    kept--;
    rows *= batch[kept]!;
  }
  return { kept, rows };
}

/**
 * Nested loops over `shape` (outermost first) with variables `${prefix}0`,
 * `${prefix}1`, ..., each marked `mark` (parallel: one iteration per element).
 */
export function nest(shape: Shape, prefix: string, body: (vars: string[]) => readonly Stmt[], mark: LoopMark = "parallel"): Stmt[] {
  const vars = shape.map((_, i) => `${prefix}${i}`);
  let stmts: Stmt[] = [...body(vars)];
  for (let ax = shape.length - 1; ax >= 0; ax--) stmts = [loop(vars[ax]!, shape[ax]!, stmts, 0, mark)];
  return stmts;
}

/** Σ vars[i]·strides[i] + base, folded. */
export function indexOf(vars: readonly string[], strides: readonly number[], base: Expr | number = 0): Expr {
  let e: Expr = typeof base === "number" ? num(base) : base;
  vars.forEach((v, i) => {
    e = addE(e, mulE(ref(v), strides[i]!));
  });
  return e;
}

/**
 * Loops over every element of `shape`; operand k is addressed with
 * `strides[k]`, and `body` receives one index expression per operand.
 * Axes are coalesced first, so contiguous operands share one flat loop. The
 * loops are marked `mark`; parallel innermost loops whose operands all step
 * by 0 or 1 are marked vectorizable too.
 */
export function stridedLoops(
  shape: Shape,
  strides: readonly (readonly number[])[],
  body: (index: Expr[]) => readonly Stmt[],
  prefix = "i",
  mark: LoopMark = "parallel",
): Stmt[] {
  if (shape.some((d) => d === 0)) return [];
  const c = coalesce(shape, strides);
  const stmts = nest(c.shape, prefix, (vars) => body(c.strides.map((s) => indexOf(vars, s))), mark);
  const last = c.shape.length - 1;
  const unit = last >= 0 && mark === "parallel" && c.strides.every((s) => s[last] === 0 || s[last] === 1);
  return unit ? markInnermost(stmts) : stmts;
}

/** `stmts` with their innermost loop (the first loop's chain of single loops) marked vectorizable. */
function markInnermost(stmts: readonly Stmt[]): Stmt[] {
  return stmts.map((s) => {
    if (s.k !== "for") return s;
    const inner = s.body.length === 1 && s.body[0]!.k === "for";
    return inner ? { ...s, body: markInnermost(s.body) } : { ...s, vectorizable: true };
  });
}

/** Strides of `shape`'s axes listed in `axes`, in that order. */
export function stridesAt(shape: Shape, axes: readonly number[]): number[] {
  const s = stridesOf(shape);
  return axes.map((a) => s[a]!);
}
