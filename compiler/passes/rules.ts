// The rewrite rules, as data: constant folding, algebraic identities, movement
// simplifications and matmul layout. Each keeps values bit for bit (NaN and
// ±Inf included), except where its comment says how it rounds; none drops a
// NaN (no x·0 → 0, no x − x → 0).
import type { Tensor } from "../ir/node.js";
import type { Shape } from "../ir/types.js";
import { broadcastShapes, normAxes, shapesEqual, sizeOf } from "../ir/types.js";
import { OPS } from "../ops/index.js";
import type { NDArray, NodeOf, OpKind } from "../ops/index.js";
import { reducedShape } from "../ops/reduce.js";
import { matmulParams } from "../ops/matmul.js";
import { roundTo } from "../interp/interpret.js";
import type { Builder, Match, Rule } from "./rewrite.js";
import { any, lit, op } from "./pattern.js";
import { uniformConst, uniformOf } from "../ir/constants.js";

/** `x` as a value of the matched node's shape: itself, or broadcast when the node broadcast it. */
function fit(b: Builder, x: Tensor, node: Tensor): Tensor {
  return shapesEqual(x.shape, node.shape) ? x : b.apply("broadcastTo", [x], { shape: [...node.shape] });
}

/** `x` reshaped to `shape`, or itself when it has that shape. */
function reshaped(b: Builder, x: Tensor, shape: Shape): Tensor {
  return shapesEqual(x.shape, shape) ? x : b.apply("reshape", [x], { shape: [...shape] });
}

/** A rule `pattern → fit(bind.x)`: the node equals its operand x. */
function identity(name: string, match: Rule["match"]): Rule {
  return { name, match, replace: ({ bind, node, build }) => fit(build, bind.x!, node) };
}

const isIdentityPerm = (p: readonly number[]): boolean => p.every((a, i) => a === i);

/** Whether a transpose swaps the last two axes and keeps the others. */
export function swapsLastTwo(t: Tensor): boolean {
  const p = t.p("transpose").perm;
  const r = p.length;
  return r >= 2 && p[r - 2] === r - 1 && p[r - 1] === r - 2 && p.slice(0, -2).every((a, i) => a === i);
}

/** A shape without its leading 1s. */
function dropLeadingOnes(s: Shape): Shape {
  let i = 0;
  while (i < s.length && s[i] === 1) i++;
  return s.slice(i);
}

/** Whether two shapes differ only by leading 1s. */
function sameUpToLeadingOnes(a: Shape, b: Shape): boolean {
  return shapesEqual(dropLeadingOnes(a), dropLeadingOnes(b));
}

/** The axes a reduction node reduces, normalized. */
const reducedAxes = (t: Tensor): number[] => normAxes(t.p("sum").axes ?? undefined, t.inputs[0]!.rank);

// ---- constant folding ----

/** Results up to this many elements are folded whatever their values; larger ones only when uniform. */
export const FOLD_LIMIT = 64;

/** Whether an op only moves values (its record says): a uniform input gives the same uniform output. */
const movesValues = (op: OpKind): boolean => (OPS[op] as { movesValues?: boolean }).movesValues === true;

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

/** The folded values of `t` (one value = all elements), or undefined when it is not folded. */
export function foldValues(t: Tensor): number[] | undefined {
  const def = OPS[t.op] as { eval: Eval; expr?: unknown };
  if (t.size > FOLD_LIMIT) {
    // a large result is folded only when it is uniform: elementwise ops and moves of uniform inputs
    const vs = t.inputs.map((x) => uniformConst(x));
    if (vs.some((v) => v === undefined) || !(def.expr || movesValues(t.op))) return undefined;
    if (movesValues(t.op)) return [vs[0]!];
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
  const v = uniformOf(data);
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

// ---- algebra ----

/** The ops whose operands broadcast elementwise (their records say): a uniform constant operand may be a scalar. */
const SCALAR_OPERANDS: readonly OpKind[] = (Object.keys(OPS) as OpKind[]).filter((k) => (OPS[k] as { scalarOperands?: boolean }).scalarOperands);

/** The index of a non-scalar uniform constant operand that a scalar could stand for without changing the result's shape. */
function splatOperand(t: Tensor): number {
  return t.inputs.findIndex((x, i) => {
    if (x.rank === 0 || uniformConst(x) === undefined) return false;
    let s: number[] = [];
    t.inputs.forEach((y, j) => (s = j === i ? s : broadcastShapes(s, y.shape)));
    return shapesEqual(s, t.shape);
  });
}

/** Elementwise identities and sign rules. */
export const ALGEBRA: readonly Rule[] = [
  identity("mulOne", op("mul", [any("x"), lit(1)])),
  identity("oneMul", op("mul", [lit(1), any("x")])),
  // exact but for the sign of a zero: −0 + 0 is +0 (no comparison tells them apart)
  identity("addZero", op("add", [any("x"), lit(0)])),
  identity("zeroAdd", op("add", [lit(0), any("x")])),
  identity("subZero", op("sub", [any("x"), lit(0)])),
  identity("divOne", op("div", [any("x"), lit(1)])),
  identity("negNeg", op("neg", [op("neg", [any("x")])])),
  { name: "mulMinusOne", match: op("mul", [any("x"), lit(-1)]), replace: ({ bind, node, build }) => build.apply("neg", [fit(build, bind.x!, node)], {}) },
  // a + (−b) is a − b by definition of IEEE subtraction
  { name: "addNeg", match: op("add", [any("x"), op("neg", [any("y")])]), replace: ({ bind, build }) => build.apply("sub", [bind.x!, bind.y!], {}) },
  { name: "negAdd", match: op("add", [op("neg", [any("y")]), any("x")]), replace: ({ bind, build }) => build.apply("sub", [bind.x!, bind.y!], {}) },
  { name: "subNeg", match: op("sub", [any("x"), op("neg", [any("y")])]), replace: ({ bind, build }) => build.apply("add", [bind.x!, bind.y!], {}) },
  // a constant condition picks one branch
  {
    name: "whereConst",
    match: op("where", [lit(undefined, "c"), any("x"), any("y")]),
    replace: ({ node, bind, build }) => fit(build, uniformConst(bind.c!) !== 0 ? bind.x! : bind.y!, node),
  },
  identity("castSame", op("cast", [any("x")], { where: (t) => t.p("cast").dtype === t.inputs[0]!.dtype })),
  // a constant operand of one value broadcast along: a scalar says the same
  {
    name: "scalarLiteral",
    match: op(SCALAR_OPERANDS, undefined, { where: (t) => splatOperand(t) >= 0 }),
    replace: ({ node, build }) => {
      const i = splatOperand(node);
      const c = node.inputs[i]!;
      const inputs = node.inputs.map((x, j) => (j === i ? build.constant(uniformConst(c)!, [], c.dtype) : x));
      return build.apply(node.op, inputs, node.params as never);
    },
  },
  // Σ over broadcast axes = the value times their count: n·v for v + v + ... + v (rounds once instead of n
  // times; and Σ of −0, which is +0 since a sum starts from 0, becomes n·(−0) = −0)
  {
    name: "sumBroadcast",
    match: op("sum", [op("broadcastTo", [any("x")], { name: "b" })]),
    replace: ({ node, bind, build }) => {
      const [x, b] = [bind.x!, bind.b!];
      const lead = b.rank - x.rank;
      const aligned = b.shape.map((_, i) => (i < lead ? 1 : x.shape[i - lead]!));
      const axes = reducedAxes(node);
      const count = sizeOf(axes.map((a) => b.shape[a]!));
      // a count of 0 sums nothing (0), which n·v would turn into NaN for v = ±Inf
      if (count === 0 || !axes.every((a) => aligned[a] === 1)) return undefined;
      // x's values on the kept axes: a reshape (free) when they fill the result, else broadcast after the scale
      const kept = reducedShape(aligned, axes, node.p("sum").keepDims);
      const fills = shapesEqual(kept, node.shape);
      let y = reshaped(build, x, fills ? kept : dropLeadingOnes(kept));
      if (count !== 1) y = build.apply("mul", [y, build.constant(count, [], node.dtype)], {});
      return fit(build, y, node);
    },
  },
];

// ---- movement ----

/** Whether a transpose moves only axes of size 1: a reshape then. */
function movesOnlyOnes(t: Tensor): boolean {
  const x = t.inputs[0]!;
  const order = t.p("transpose").perm.filter((a) => x.shape[a] !== 1);
  return order.every((a, i) => i === 0 || order[i - 1]! < a);
}

/** Reshapes, transposes and broadcasts that compose or vanish; reductions over nothing. */
export const MOVEMENT: readonly Rule[] = [
  // y = xᵀ¹, z = yᵀ²: z's axis i is x's axis p1[p2[i]]
  {
    name: "transposeTranspose",
    match: op("transpose", [op("transpose", [any("x")], { name: "inner" })]),
    replace: ({ node, bind, build }) => {
      const p1 = bind.inner!.p("transpose").perm;
      const perm = node.p("transpose").perm.map((a) => p1[a]!);
      return isIdentityPerm(perm) ? bind.x! : build.apply("transpose", [bind.x!], { perm });
    },
  },
  // the identity permutation, or one that only moves axes of size 1, copies nothing
  {
    name: "transposeReshape",
    match: op("transpose", [any("x")], { where: movesOnlyOnes }),
    replace: ({ node, bind, build }) => reshaped(build, bind.x!, node.shape),
  },
  {
    name: "reshapeReshape",
    match: op("reshape", [op("reshape", [any("x")])]),
    replace: ({ node, bind, build }) => reshaped(build, bind.x!, node.shape),
  },
  identity("reshapeSame", op("reshape", [any("x")], { where: (t) => shapesEqual(t.shape, t.inputs[0]!.shape) })),
  identity("broadcastSame", op("broadcastTo", [any("x")], { where: (t) => shapesEqual(t.shape, t.inputs[0]!.shape) })),
  identity("broadcastBroadcast", op("broadcastTo", [op("broadcastTo", [any("x")])])),
  // broadcasting adds leading axes itself: a reshape that only adds or drops leading 1s is not needed
  identity(
    "broadcastReshape",
    op("broadcastTo", [op("reshape", [any("x")], { where: (r) => sameUpToLeadingOnes(r.shape, r.inputs[0]!.shape) })], {
      where: (t) => t.inputs[0]!.inputs[0]!.rank <= t.rank,
    }),
  ),
  // over no axes, or over axes of size 1, a reduction is its input (sum: −0 becomes +0, as with x + 0)
  {
    name: "reduceOnes",
    match: op(["sum", "max", "min"], [any("x")], { where: (t) => reducedAxes(t).every((a) => t.inputs[0]!.shape[a] === 1) }),
    replace: ({ node, bind, build }) => reshaped(build, bind.x!, node.shape),
  },
];

// ---- layout ----

/** matmul(transpose(a), b) where the transpose swaps the last two axes: the matmul reads a transposed itself. */
function flipOperand(k: 0 | 1): (m: Match) => Tensor {
  return ({ node, bind, build }) => {
    const p = node.p("matmul");
    const tA = p.transposeA === true;
    const tB = p.transposeB === true;
    const inputs = k === 0 ? [bind.a!, node.inputs[1]!] : [node.inputs[0]!, bind.b!];
    return build.apply("matmul", inputs, matmulParams(k === 0 ? !tA : tA, k === 1 ? !tB : tB));
  };
}

/**
 * Whether a sum adds up every batch of a matmul[transposeA] whose operands
 * are both batched as the product is (no broadcast batch axis): then the
 * batches' rows lie one after another in each operand, and
 *   Σ_b A_bᵀ·B_b = [A_0; A_1; ...]ᵀ·[B_0; B_1; ...]
 * is one product over the rows of all batches.
 */
function sumsBatchesOfATB(t: Tensor): boolean {
  const mm = t.inputs[0]!;
  const p = mm.p("matmul");
  if (p.transposeA !== true || p.transposeB === true || mm.rank < 3) return false;
  const batch = mm.shape.slice(0, -2);
  const axes = reducedAxes(t);
  const [a, b] = mm.inputs as [Tensor, Tensor];
  return axes.length === batch.length && axes.every((x, i) => x === i) && shapesEqual(a.shape.slice(0, -2), batch) && shapesEqual(b.shape.slice(0, -2), batch);
}

/** Transposes that feed a matmul become its flags: no transposed copy; a weight's batched gradient is one product. */
export const LAYOUT: readonly Rule[] = [
  { name: "matmulTransposeA", match: op("matmul", [op("transpose", [any("a")], { where: swapsLastTwo }), any()]), replace: flipOperand(0) },
  { name: "matmulTransposeB", match: op("matmul", [any(), op("transpose", [any("b")], { where: swapsLastTwo })]), replace: flipOperand(1) },
  // a flag written as false means the same as no flag: one spelling, so equal products intern together
  {
    name: "matmulFlags",
    match: op("matmul", undefined, { where: (t) => Object.values(t.p("matmul")).some((v) => v === false) }),
    replace: ({ node, build }) => {
      const p = node.p("matmul");
      return build.apply("matmul", node.inputs, matmulParams(p.transposeA === true, p.transposeB === true));
    },
  },
  // The weight's gradient of x[B, S, D]·W[D, N]: its VJP gives xᵀ·dC per batch and unbroadcast sums
  // the batches; as one product over K = B·S rows it packs and reads each operand once, with no
  // [B, D, N] temporary and no batch sum. The reshapes only regroup contiguous rows: free on a
  // stored value, while a cotangent fusion would have computed inside the product is stored first.
  // Rounds differently: each dW[i, j] is one sum over the B·S rows in order instead of B sums of S
  // terms added up after.
  {
    name: "sumBatchedMatmul",
    match: op("sum", [op("matmul", [any("a"), any("b")])], { where: sumsBatchesOfATB }),
    replace: ({ node, bind, build }) => {
      const [a, b] = [bind.a!, bind.b!];
      const rows = sizeOf(a.shape.slice(0, -1));
      const flat = (x: Tensor) => reshaped(build, x, [rows, x.shape.at(-1)!]);
      return reshaped(build, build.apply("matmul", [flat(a), flat(b)], matmulParams(true, false)), node.shape);
    },
  },
];
