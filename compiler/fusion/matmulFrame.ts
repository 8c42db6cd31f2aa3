// The iteration frame of a matmul kernel: batch axes, then i (rows of C),
// j (columns of C) and p (the summed axis). Each operand, transposed or not,
// is addressed through coordinates in this frame, so no transposed copy exists.
import type { Shape } from "../ir/types.js";
import type { Coord } from "../kernel/coords.js";
import { axisOf, broadcastCoords } from "../kernel/coords.js";
import type { Value } from "./program.js";

/** Sizes of one product C[m, n] = Σ_p op(A)[m, p]·op(B)[p, n]. */
export interface MatmulDims {
  readonly batch: Shape;
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly transposeA: boolean;
  readonly transposeB: boolean;
}

/** The dims of a matmul value. */
export function matmulDims(v: Value): MatmulDims {
  const p = v.node.p("matmul");
  const a = v.inputs[0]!.node.shape;
  const out = v.node.shape;
  const transposeA = p.transposeA === true;
  const k = transposeA ? a.at(-2)! : a.at(-1)!;
  return { batch: out.slice(0, -2), m: out.at(-2)!, n: out.at(-1)!, k, transposeA, transposeB: p.transposeB === true };
}

/** Frame axes of a matmul of output rank r: batch 0..r-3, i = r-2, j = r-1, p = r. */
export function frameAxes(v: Value): { readonly n: number; readonly i: number; readonly j: number; readonly p: number } {
  const r = v.node.rank;
  return { n: r + 1, i: r - 2, j: r - 1, p: r };
}

/** Coordinates at which A and B are read: (batch, i, p) and (batch, p, j), swapped for a transposed operand. */
export function matmulOperandCoords(v: Value, n: number): [Coord[], Coord[]] {
  const d = matmulDims(v);
  const f = frameAxes(v);
  const batch = d.batch.map((_, a) => axisOf(n, a));
  const [i, j, p] = [axisOf(n, f.i), axisOf(n, f.j), axisOf(n, f.p)];
  const operand = (x: Value, rows: Coord, cols: Coord): Coord[] => {
    const lead = broadcastCoords(x.node.shape.slice(0, -2), batch, n);
    return [...lead, rows, cols];
  };
  const a = v.inputs[0]!;
  const b = v.inputs[1]!;
  return [d.transposeA ? operand(a, p, i) : operand(a, i, p), d.transposeB ? operand(b, j, p) : operand(b, p, j)];
}
