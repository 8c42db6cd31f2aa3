// Reductions over any set of axes, with keepDims: sum, max, min, argmax.
import type { NodeOf, OpDef } from "./def.js";
import type { Tensor } from "../ir/node.js";
import type { Shape } from "../ir/types.js";
import { ShapeError, normAxes, normAxis, sizeOf, stridesOf } from "../ir/types.js";
import { requireNumeric } from "./broadcast.js";
import type { Expr, Stmt } from "../kernel/kir.js";
import { addE, bin, if_, let_, load, mulE, num, reduce, ref, set, store } from "../kernel/kir.js";
import { stridedLoops, stridesAt } from "../kernel/loops.js";

/** Shape after reducing `axes`, with the reduced axes kept as 1 or dropped. */
export function reducedShape(shape: Shape, axes: readonly number[], keepDims: boolean): number[] {
  return keepDims ? shape.map((d, i) => (axes.includes(i) ? 1 : d)) : shape.filter((_, i) => !axes.includes(i));
}

/** Calls `visit(outIndex, inIndex)` for every input element; outIndex is its reduced slot. */
export function forEachReduced(shape: Shape, axes: readonly number[], visit: (o: number, i: number) => void): void {
  const kept = reducedShape(shape, axes, true);
  const ks = stridesOf(kept);
  const rank = shape.length;
  const coord = new Array<number>(rank).fill(0);
  const n = sizeOf(shape);
  for (let i = 0; i < n; i++) {
    let o = 0;
    for (let ax = 0; ax < rank; ax++) if (!axes.includes(ax)) o += coord[ax]! * ks[ax]!;
    visit(o, i);
    for (let ax = rank - 1; ax >= 0; ax--) {
      if (++coord[ax]! < shape[ax]!) break;
      coord[ax] = 0;
    }
  }
}

type Red = "sum" | "max" | "min";

/**
 * Kept axes outer, reduced axes inner: each output element is accumulated in
 * a local (full precision), visiting inputs in the interpreter's order.
 */
function lowerReduction(x: Tensor, axes: readonly number[], init: number, combine: (acc: Expr, v: Expr) => Expr): Stmt[] {
  const kept = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const keptShape = kept.map((a) => x.shape[a]!);
  return stridedLoops(keptShape, [stridesOf(keptShape), stridesAt(x.shape, kept)], ([o, base]) => [
    let_("acc", init),
    ...stridedLoops(axes.map((a) => x.shape[a]!), [stridesAt(x.shape, axes)], ([r]) => [
      set("acc", combine(ref("acc"), load("in0", addE(base!, r!)))),
    ], "r", "reduce"),
    store("out", o!, ref("acc")),
  ]);
}

function reduction<K extends Red>(
  init: number,
  combine: (acc: number, v: number) => number,
  vjp: OpDef<K>["vjp"],
  combineExpr: (acc: Expr, v: Expr) => Expr,
): OpDef<K> {
  return {
    fusion: "reduce",
    // one combine per input element
    flops: (n) => n.inputs[0]!.size,
    infer: ([x], p) => {
      requireNumeric(x!);
      const axes = normAxes(p.axes ?? undefined, x!.rank);
      if (init !== 0) {
        for (const a of axes) if (x!.shape[a] === 0) throw new ShapeError(`cannot take the max/min over the empty axis ${a}`);
      }
      return { shape: reducedShape(x!.shape, axes, p.keepDims), dtype: x!.dtype };
    },
    eval: (node, [x]) => {
      const axes = normAxes(node.params.axes ?? undefined, x!.shape.length);
      const out = new Float64Array(sizeOf(node.shape)).fill(init);
      forEachReduced(x!.shape, axes, (o, i) => {
        out[o] = combine(out[o]!, x!.data[i]!);
      });
      return out;
    },
    ...(vjp ? { vjp } : {}),
    lower: (node) => lowerReduction(node.inputs[0]!, axesOf(node), init, combineExpr),
  };
}

/** The reduced axes of a reduction node, normalized. */
export function axesOf(node: NodeOf<Red>): number[] {
  return normAxes(node.params.axes ?? undefined, node.inputs[0]!.rank);
}

/** Puts back reduced axes as size 1 so a reduced value broadcasts against the input. */
export function keepDimsOf(t: Tensor, node: NodeOf<Red | "argmax">, axes: readonly number[]): Tensor {
  const inShape = node.inputs[0]!.shape;
  return node.params.keepDims ? t : t.reshape(reducedShape(inShape, axes, true));
}

/** max/min: the cotangent goes to every element equal to the extremum. */
function extremumVjp(ct: Tensor, node: NodeOf<"max" | "min">): (Tensor | null)[] {
  const axes = axesOf(node);
  const x = node.inputs[0]!;
  const hit = x.equal(keepDimsOf(node, node, axes)).cast(x.dtype);
  // ties split the cotangent evenly, as in JAX
  const count = hit.sum(axes, true);
  return [hit.div(count).mul(keepDimsOf(ct, node, axes))];
}

export const REDUCE = {
  sum: reduction<"sum">(0, (a, v) => a + v, (ct, node) => {
    const axes = axesOf(node);
    return [keepDimsOf(ct, node, axes).broadcastTo([...node.inputs[0]!.shape])];
  }, (acc, v) => bin("+", acc, v)),
  max: reduction<"max">(-Infinity, Math.max, extremumVjp, (acc, v) => bin("max", acc, v)),
  min: reduction<"min">(Infinity, Math.min, extremumVjp, (acc, v) => bin("min", acc, v)),
  argmax: {
    flops: (n) => n.inputs[0]!.size,
    infer: ([x], p) => {
      requireNumeric(x!);
      const ax = normAxis(p.axis, x!.rank);
      if (x!.shape[ax] === 0) throw new ShapeError(`cannot take the argmax over the empty axis ${ax}`);
      return { shape: reducedShape(x!.shape, [ax], p.keepDims), dtype: "i32" };
    },
    eval: (node, [x]) => {
      const ax = normAxis(node.params.axis, x!.shape.length);
      const n = sizeOf(node.shape);
      const best = new Float64Array(n).fill(-Infinity);
      const arg = new Float64Array(n).fill(-1);
      const axStride = stridesOf(x!.shape)[ax]!;
      const len = x!.shape[ax]!;
      forEachReduced(x!.shape, [ax], (o, i) => {
        const k = Math.floor(i / axStride) % len;
        const v = x!.data[i]!;
        // first maximum wins; NaN counts as the maximum, as in numpy
        if (arg[o] === -1 || v > best[o]! || (Number.isNaN(v) && !Number.isNaN(best[o]!))) {
          best[o] = v;
          arg[o] = k;
        }
      });
      return arg;
    },
    // the first maximum wins; a NaN beats any number, and the first NaN stays
    lower: (node) => {
      const x = node.inputs[0]!;
      const ax = normAxis(node.params.axis, x.rank);
      const kept = x.shape.map((_, i) => i).filter((i) => i !== ax);
      const keptShape = kept.map((a) => x.shape[a]!);
      const step = stridesOf(x.shape)[ax]!;
      const v = ref("v");
      const best = ref("best");
      const better = bin("||", bin(">", v, best), bin("&&", bin("!=", v, v), bin("==", best, best)));
      return stridedLoops(keptShape, [stridesOf(keptShape), stridesAt(x.shape, kept)], ([o, base]) => [
        let_("best", load("in0", base!)),
        let_("arg", num(0)),
        reduce("r", x.shape[ax]!, [
          let_("v", load("in0", addE(base!, mulE(ref("r"), step)))),
          if_(better, [set("best", v), set("arg", ref("r"))]),
        ], 1),
        store("out", o!, ref("arg")),
      ]);
    },
  } satisfies OpDef<"argmax">,
} as const;

