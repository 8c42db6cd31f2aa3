// Matrix product over the last two axes, with broadcast leading (batch) axes;
// either operand may be read transposed (flags), so no transposed copy is made.
import type { OpDef, NodeOf } from "./def.js";
import type { Tensor } from "../ir/node.js";
import type { OpParams } from "../ir/kinds.js";
import { ShapeError, broadcastShapes, isFloat, shapeStr, sizeOf, stridesOf } from "../ir/types.js";
import { broadcastIndex, sameDtype } from "./broadcast.js";
import type { Expr, Stmt } from "../kernel/kir.js";
import { addE, bin, let_, load, mulE, parallel, reduce, ref, set, store } from "../kernel/kir.js";
import { broadcastStrides, foldRows, stridedLoops } from "../kernel/loops.js";

/** The canonical params: a flag is present only when true, so equal products intern to one node. */
export function matmulParams(transposeA: boolean, transposeB: boolean): OpParams["matmul"] {
  return { ...(transposeA ? { transposeA: true } : {}), ...(transposeB ? { transposeB: true } : {}) };
}

/** op(a)·op(b), where op transposes the last two axes of an operand whose flag is set. */
export function matmulT(a: Tensor, b: Tensor, transposeA: boolean, transposeB: boolean): Tensor {
  return a.ctx.apply("matmul", [a, b], matmulParams(transposeA, transposeB));
}

/** Sizes of one product: C[m, n] = Σ_p A[m, p]·B[p, n] over p < k, and each operand's stored (row, column) strides. */
interface Dims {
  readonly m: number;
  readonly k: number;
  readonly n: number;
  /** A(i, p) = a[i·ai + p·ap]; B(p, j) = b[p·bp + j·bj]. */
  readonly ai: number;
  readonly ap: number;
  readonly bp: number;
  readonly bj: number;
}

/** The product's sizes from its operands' shapes and flags. */
function dims(a: { shape: readonly number[] }, b: { shape: readonly number[] }, p: OpParams["matmul"]): Dims {
  const [ar, ac] = a.shape.slice(-2) as [number, number];
  const [br, bc] = b.shape.slice(-2) as [number, number];
  const [m, k] = p.transposeA ? [ac, ar] : [ar, ac];
  const n = p.transposeB ? br : bc;
  return {
    m,
    k,
    n,
    ai: p.transposeA ? 1 : k,
    ap: p.transposeA ? m : 1,
    bp: p.transposeB ? 1 : n,
    bj: p.transposeB ? k : 1,
  };
}

/**
 * One batch's product as the reference loop nest: each C[i, j] summed over p
 * in order in a local, as the interpreter sums, and stored once. Tiling,
 * packing and loop orders are each backend's (compiler/backends/).
 */
function product(oo: Expr, oa: Expr, ob: Expr, d: Dims): Stmt[] {
  const [i, j, p] = [ref("i"), ref("j"), ref("p")];
  const aAt = addE(oa, addE(mulE(i, d.ai), mulE(p, d.ap)));
  const bAt = addE(ob, addE(mulE(p, d.bp), mulE(j, d.bj)));
  return [
    parallel("i", d.m, [
      parallel("j", d.n, [
        let_("s", 0),
        reduce("p", d.k, [set("s", bin("+", ref("s"), bin("*", load("in0", aAt), load("in1", bAt))))]),
        store("out", addE(oo, addE(mulE(i, d.n), j)), ref("s")),
      ]),
    ]),
  ];
}

/** d(op(A)·op(B)): cotangents of the stored A and B, each one flagged matmul (no transposed copy). */
function matmulVjp(ct: Tensor, node: NodeOf<"matmul">): Tensor[] {
  const [a, b] = node.inputs as [Tensor, Tensor];
  const tA = node.params.transposeA === true;
  const tB = node.params.transposeB === true;
  // with A' = op(A), B' = op(B): dA' = dC·B'ᵀ and dB' = A'ᵀ·dC; a transposed operand takes the transpose
  const da = tA ? matmulT(b, ct, tB, true) : matmulT(ct, b, false, !tB); // dA = B'·dCᵀ  |  dC·B'ᵀ
  const db = tB ? matmulT(ct, a, true, tA) : matmulT(a, ct, !tA, false); // dB = dCᵀ·A'  |  A'ᵀ·dC
  return [da, db];
}

export const MATMUL = {
  matmul: {
    fusion: "matmul",
    math: "layer",
    // a multiply and an add per term of every dot product
    flops: (n) => {
      const a = n.inputs[0]!.shape;
      return 2 * n.size * (n.params.transposeA ? a.at(-2)! : a.at(-1)!);
    },
    infer: ([a, b], p) => {
      const dtype = sameDtype([a!, b!]);
      if (!isFloat(dtype)) throw new ShapeError(`needs float operands, got ${dtype}`);
      if (a!.rank < 2 || b!.rank < 2) throw new ShapeError(`needs operands of rank >= 2, got ${shapeStr(a!.shape)} and ${shapeStr(b!.shape)}`);
      const d = dims(a!, b!, p);
      const k2 = p.transposeB ? b!.shape.at(-1)! : b!.shape.at(-2)!;
      const flags = `${p.transposeA ? "ᵀ" : ""} · ${shapeStr(b!.shape)}${p.transposeB ? "ᵀ" : ""}`;
      if (d.k !== k2) throw new ShapeError(`inner sizes differ: ${shapeStr(a!.shape)}${flags} (${d.k} vs ${k2})`);
      let batch: number[];
      try {
        batch = broadcastShapes(a!.shape.slice(0, -2), b!.shape.slice(0, -2));
      } catch {
        throw new ShapeError(`batch axes do not broadcast: ${shapeStr(a!.shape)}${flags}`);
      }
      return { shape: [...batch, d.m, d.n], dtype };
    },
    eval: (node, [a, b]) => {
      const d = dims(a!, b!, node.params);
      const batch = node.shape.slice(0, -2);
      // index of each batch's first element in a and b
      const ia = broadcastIndex(a!.shape.slice(0, -2), batch);
      const ib = broadcastIndex(b!.shape.slice(0, -2), batch);
      const out = new Float64Array(sizeOf(node.shape));
      for (let t = 0; t < ia.length; t++) {
        const oa = ia[t]! * d.m * d.k;
        const ob = ib[t]! * d.k * d.n;
        const oo = t * d.m * d.n;
        for (let i = 0; i < d.m; i++) {
          for (let j = 0; j < d.n; j++) {
            let s = 0;
            for (let p = 0; p < d.k; p++) s += a!.data[oa + i * d.ai + p * d.ap]! * b!.data[ob + p * d.bp + j * d.bj]!;
            out[oo + i * d.n + j] = s;
          }
        }
      }
      return out;
    },
    // batch axes summed back by autodiff
    vjp: matmulVjp,
    // every output sums over p in order, as the interpreter does; batch axes
    // that the operands walk as one run with the rows (an unbatched B) are rows
    lower: (node) => {
      const [a, b] = node.inputs as [Tensor, Tensor];
      const d = dims(a, b, node.params);
      const batch = node.shape.slice(0, -2);
      const so = stridesOf(batch).map((s) => s * d.m * d.n);
      const sa = broadcastStrides(a.shape.slice(0, -2), batch).map((s) => s * d.m * d.k);
      const sb = broadcastStrides(b.shape.slice(0, -2), batch).map((s) => s * d.k * d.n);
      const { kept, rows } = foldRows(batch, d.m, [so, sa, sb], [d.n, d.ai, 0]);
      const strides = [so, sa, sb].map((s) => s.slice(0, kept));
      return stridedLoops(batch.slice(0, kept), strides, ([oo, oa, ob]) => product(oo!, oa!, ob!, { ...d, m: rows }), "t");
    },
  } satisfies OpDef<"matmul">,
} as const;
