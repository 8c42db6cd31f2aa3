// Movement primitives that only re-index: reshape, transpose, broadcastTo.
import type { OpDef } from "./def.js";
import type { Shape } from "../ir/types.js";
import { ShapeError, broadcastShapes, shapeStr, shapesEqual, sizeOf, stridesOf } from "../ir/types.js";
import { broadcastIndex } from "./broadcast.js";
import type { Stmt } from "../kernel/kir.js";
import { load, store } from "../kernel/kir.js";
import { broadcastStrides, stridedLoops } from "../kernel/loops.js";
import type { Coord } from "../kernel/coords.js";
import { broadcastCoords, unitReshapeCoords } from "../kernel/coords.js";

/** out[i] = in0[j] over `outShape`, with the input addressed by `inStrides` per output axis. */
function lowerCopy(outShape: Shape, inStrides: readonly number[]): Stmt[] {
  return stridedLoops(outShape, [stridesOf(outShape), inStrides], ([o, i]) => [store("out", o!, load("in0", i!))]);
}

/** For each flat index of the transposed result, the flat index into the input. */
export function transposeIndex(inShape: Shape, perm: readonly number[]): Int32Array {
  const outShape = perm.map((p) => inShape[p]!);
  const inStrides = stridesOf(inShape);
  const s = perm.map((p) => inStrides[p]!);
  const n = sizeOf(inShape);
  const idx = new Int32Array(n);
  const coord = new Array<number>(perm.length).fill(0);
  let cur = 0;
  for (let k = 0; k < n; k++) {
    idx[k] = cur;
    for (let ax = perm.length - 1; ax >= 0; ax--) {
      coord[ax]!++;
      cur += s[ax]!;
      if (coord[ax]! < outShape[ax]!) break;
      cur -= s[ax]! * outShape[ax]!;
      coord[ax] = 0;
    }
  }
  return idx;
}

export function inversePerm(perm: readonly number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return inv;
}

export const MOVEMENT = {
  reshape: {
    fusion: "alias",
    movesValues: true,
    math: "through",
    flops: () => 0,
    // followed through coordinates when it only adds or drops axes of size 1; else its input is read flat, from memory
    indexMap: (n, out, k) => {
      const c = unitReshapeCoords(n.inputs[0]!.shape, n.shape, out, k);
      return c ? [c] : undefined;
    },
    infer: ([x], p) => {
      if (sizeOf(p.shape) !== x!.size) throw new ShapeError(`cannot reshape ${shapeStr(x!.shape)} to ${shapeStr(p.shape)}`);
      return { shape: p.shape, dtype: x!.dtype };
    },
    eval: (_n, [x]) => Float64Array.from(x!.data),
    vjp: (ct, n) => [ct.reshape([...n.inputs[0]!.shape])],
  } satisfies OpDef<"reshape">,
  transpose: {
    fusion: "index",
    movesValues: true,
    flops: () => 0,
    // out axis d is input axis perm[d]
    indexMap: (n, out) => {
      const c = new Array<Coord>(n.params.perm.length);
      n.params.perm.forEach((p, d) => (c[p] = out[d]!));
      return [c];
    },
    infer: ([x], p) => {
      const ok = p.perm.length === x!.rank && [...p.perm].sort((a, b) => a - b).every((v, i) => v === i);
      if (!ok) throw new ShapeError(`perm [${p.perm.join(",")}] is not a permutation of the ${x!.rank} axes`);
      return { shape: p.perm.map((a) => x!.shape[a]!), dtype: x!.dtype };
    },
    eval: (n, [x]) => {
      const idx = transposeIndex(x!.shape, n.params.perm);
      return Float64Array.from(idx, (i) => x!.data[i]!);
    },
    vjp: (ct, n) => [ct.transpose(inversePerm(n.params.perm))],
    // walk the output in order; the input's strides are permuted
    lower: (n) => {
      const inStrides = stridesOf(n.inputs[0]!.shape);
      return lowerCopy(n.shape, n.params.perm.map((p) => inStrides[p]!));
    },
  } satisfies OpDef<"transpose">,
  broadcastTo: {
    fusion: "index",
    movesValues: true,
    math: "through",
    flops: () => 0,
    indexMap: (n, out, k) => [broadcastCoords(n.inputs[0]!.shape, out, k)],
    infer: ([x], p) => {
      if (p.shape.length < x!.rank || !shapesEqual(broadcastShapes(x!.shape, p.shape), p.shape)) {
        throw new ShapeError(`cannot broadcast ${shapeStr(x!.shape)} to ${shapeStr(p.shape)}`);
      }
      return { shape: p.shape, dtype: x!.dtype };
    },
    eval: (n, [x]) => Float64Array.from(broadcastIndex(x!.shape, n.shape), (i) => x!.data[i]!),
    // the cotangent has the broadcast shape; autodiff sums it back to x's shape
    vjp: (ct) => [ct],
    lower: (n) => lowerCopy(n.shape, broadcastStrides(n.inputs[0]!.shape, n.shape)),
  } satisfies OpDef<"broadcastTo">,
} as const;
