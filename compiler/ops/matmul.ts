// Matrix product over the last two axes, with broadcast leading (batch) axes.
import type { OpDef } from "./def.js";
import type { Tensor } from "../ir/node.js";
import { ShapeError, broadcastShapes, isFloat, shapeStr, sizeOf, stridesOf } from "../ir/types.js";
import { broadcastIndex, sameDtype } from "./broadcast.js";
import type { Expr, Stmt } from "../codegen/kir.js";
import { addE, bin, let_, load, loop, mulE, num, ref, store } from "../codegen/kir.js";
import { broadcastStrides, stridedLoops } from "../codegen/loops.js";

/** Rows of A (and C) that one pass over a row of B updates. */
const ROWS = 4;

/** C[i..i+3, :] = A[i..i+3, :]·B for each block of four rows; offsets oo, oa, ob of this batch. */
function rowBlocks(oo: Expr, oa: Expr, ob: Expr, blocks: number, k: number, n: number): Stmt {
  const rows = Array.from({ length: ROWS }, (_, r) => r);
  const j = ref("j");
  const b = ref("b");
  return loop("ib", blocks, [
    let_("r0", addE(oo, mulE(ref("ib"), ROWS * n))),
    loop("j", ROWS * n, [store("out", addE(ref("r0"), j), num(0))]),
    loop("p", k, [
      let_("q", addE(oa, addE(mulE(ref("ib"), ROWS * k), ref("p")))),
      ...rows.map((r) => let_(`a${r}`, load("in0", addE(ref("q"), r * k)))),
      let_("rb", addE(ob, mulE(ref("p"), n))),
      loop("j", n, [
        let_("b", load("in1", addE(ref("rb"), j))),
        ...rows.map((r) => store("out", addE(ref("r0"), addE(j, r * n)), bin("*", ref(`a${r}`), b), true)),
      ]),
    ]),
  ]);
}

/** C[i, :] = A[i, :]·B for the rows from `from` to `to`, one at a time. */
function singleRows(oo: Expr, oa: Expr, ob: Expr, from: number, to: number, k: number, n: number): Stmt {
  const [i, p, j] = [ref("i"), ref("p"), ref("j")];
  return loop("i", to, [
    let_("ro", addE(oo, mulE(i, n))),
    loop("j", n, [store("out", addE(ref("ro"), j), num(0))]),
    loop("p", k, [
      let_("av", load("in0", addE(oa, addE(mulE(i, k), p)))),
      let_("rb", addE(ob, mulE(p, n))),
      loop("j", n, [store("out", addE(ref("ro"), j), bin("*", ref("av"), load("in1", addE(ref("rb"), j))), true)]),
    ]),
  ], from);
}

/** Swaps the last two axes. */
export function mT(t: Tensor): Tensor {
  const perm = t.shape.map((_, i) => i);
  const r = t.rank;
  [perm[r - 2], perm[r - 1]] = [perm[r - 1]!, perm[r - 2]!];
  return t.transpose(perm);
}

export const MATMUL = {
  matmul: {
    infer: ([a, b]) => {
      const dtype = sameDtype([a!, b!]);
      if (!isFloat(dtype)) throw new ShapeError(`needs float operands, got ${dtype}`);
      if (a!.rank < 2 || b!.rank < 2) throw new ShapeError(`needs operands of rank >= 2, got ${shapeStr(a!.shape)} and ${shapeStr(b!.shape)}`);
      const [m, k] = a!.shape.slice(-2) as [number, number];
      const [k2, n] = b!.shape.slice(-2) as [number, number];
      if (k !== k2) throw new ShapeError(`inner sizes differ: ${shapeStr(a!.shape)} · ${shapeStr(b!.shape)} (${k} vs ${k2})`);
      let batch: number[];
      try {
        batch = broadcastShapes(a!.shape.slice(0, -2), b!.shape.slice(0, -2));
      } catch {
        throw new ShapeError(`batch axes do not broadcast: ${shapeStr(a!.shape)} · ${shapeStr(b!.shape)}`);
      }
      return { shape: [...batch, m, n], dtype };
    },
    eval: (node, [a, b]) => {
      const [m, k] = a!.shape.slice(-2) as [number, number];
      const n = b!.shape.at(-1)!;
      const batch = node.shape.slice(0, -2);
      // index of each batch's first element in a and b
      const ia = broadcastIndex(a!.shape.slice(0, -2), batch);
      const ib = broadcastIndex(b!.shape.slice(0, -2), batch);
      const out = new Float64Array(sizeOf(node.shape));
      for (let t = 0; t < ia.length; t++) {
        const oa = ia[t]! * m * k;
        const ob = ib[t]! * k * n;
        const oo = t * m * n;
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            let s = 0;
            for (let p = 0; p < k; p++) s += a!.data[oa + i * k + p]! * b!.data[ob + p * n + j]!;
            out[oo + i * n + j] = s;
          }
        }
      }
      return out;
    },
    // dA = dC · Bᵀ, dB = Aᵀ · dC (batch axes summed back by autodiff)
    vjp: (ct, node) => {
      const [a, b] = node.inputs as [Tensor, Tensor];
      return [ct.matmul(mT(b)), mT(a).matmul(ct)];
    },
    // i-k-j order: the innermost loop walks a row of B and rows of C contiguously.
    // Rows of A go four at a time, so each element of B loaded serves four
    // products; every output still sums over p in order, as the interpreter does.
    lower: (node) => {
      const [a, b] = node.inputs as [Tensor, Tensor];
      const [m, k] = a.shape.slice(-2) as [number, number];
      const n = b.shape.at(-1)!;
      const batch = node.shape.slice(0, -2);
      const so = stridesOf(batch).map((s) => s * m * n);
      const sa = broadcastStrides(a.shape.slice(0, -2), batch).map((s) => s * m * k);
      const sb = broadcastStrides(b.shape.slice(0, -2), batch).map((s) => s * k * n);
      const blocks = Math.floor(m / ROWS);
      return stridedLoops(batch, [so, sa, sb], ([oo, oa, ob]) => [
        ...(blocks > 0 ? [rowBlocks(oo!, oa!, ob!, blocks, k, n)] : []),
        ...(blocks * ROWS < m ? [singleRows(oo!, oa!, ob!, blocks * ROWS, m, k, n)] : []),
      ], "t");
    },
  } satisfies OpDef<"matmul">,
} as const;
