// Constant folding as a rule: a node whose inputs are all constants is
// evaluated with its op's reference `eval` and becomes a constant itself.
import type { Tensor } from "../ir/node.js";
import { sizeOf } from "../ir/types.js";
import { OPS } from "../ops/index.js";
import type { NDArray, NodeOf, OpKind } from "../ops/index.js";
import { roundTo } from "../interp/interpret.js";
import type { Rule } from "./rewrite.js";
import { op, uniformConst } from "./pattern.js";

/** Results up to this many elements are folded whatever their values; larger ones only when uniform. */
export const FOLD_LIMIT = 64;

/** Ops that only move values: a uniform input gives the same uniform output. */
const MOVES: ReadonlySet<OpKind> = new Set(["reshape", "broadcastTo", "transpose", "stopGradient", "customGrad"]);

type Eval = (n: NodeOf<OpKind>, inputs: readonly NDArray[]) => Float64Array;

/**
 * Values are kept as the interpreter keeps them before rounding: floats at
 * float64 (a bundle compiled to f32 rounds a constant once, as it would have
 * rounded the folded node; one compiled to f64 loses nothing), integers and
 * booleans rounded to their dtype.
 */
function valuesOf(t: Tensor): NDArray {
  const data = (OPS.const.eval as Eval)(t as NodeOf<OpKind>, []);
  return { shape: t.shape, dtype: t.dtype, data: roundTo(data, t.dtype, "f64") };
}

/** One value for every element, when all are the same (NaN included; +0 and −0 differ). */
function uniform(data: Float64Array): number | undefined {
  const first = data[0];
  if (first === undefined) return undefined;
  for (let i = 1; i < data.length; i++) if (!Object.is(data[i], first)) return undefined;
  return first;
}

/** The folded values of `t` (one value = all elements), or undefined when it is not folded. */
export function foldValues(t: Tensor): number[] | undefined {
  const def = OPS[t.op] as { eval: Eval; expr?: unknown };
  if (t.size > FOLD_LIMIT) {
    // a large result is folded only when it is uniform: elementwise ops and moves of uniform inputs
    const vs = t.inputs.map((x) => uniformConst(x));
    if (vs.some((v) => v === undefined) || !(def.expr || MOVES.has(t.op))) return undefined;
    if (MOVES.has(t.op)) return [vs[0]!];
    // evaluate one element: the same node seen as a scalar, its inputs as scalars
    const scalar = Object.create(t, { shape: { value: [] } }) as NodeOf<OpKind>;
    const ins = t.inputs.map((x, i) => ({ shape: [], dtype: x.dtype, data: roundTo(Float64Array.of(vs[i]!), x.dtype, "f64") }));
    return [roundTo(def.eval(scalar, ins), t.dtype, "f64")[0]!];
  }
  let data: Float64Array;
  try {
    data = roundTo(def.eval(t as NodeOf<OpKind>, t.inputs.map(valuesOf)), t.dtype, "f64");
  } catch {
    // an op that rejects these values (an index out of range): left for run time to report
    return undefined;
  }
  if (data.length !== sizeOf(t.shape)) return undefined;
  const v = uniform(data);
  return v !== undefined ? [v] : Array.from(data);
}

/** Whether a node computes from constants only. */
const fromConstants = (t: Tensor): boolean => t.inputs.length > 0 && t.inputs.every((x) => x.op === "const");

/**
 * `op(c1, c2, ...)` → the constant it computes:
 *   j:f32[] = div 1.0 4.0   →   0.25
 */
export const FOLD: readonly Rule[] = [
  {
    name: "foldConstants",
    match: op(Object.keys(OPS) as OpKind[], undefined, { where: fromConstants }),
    replace: ({ node, build }) => {
      const values = foldValues(node);
      return values && build.constant(values, node.shape, node.dtype);
    },
  },
];
