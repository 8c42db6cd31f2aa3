// Shared helpers for elementwise ops: broadcast indexing for the reference
// interpreter and dtype checks for the shape rules.
import type { DType, Shape } from "../ir/types.js";
import { ShapeError, broadcastShapes, isFloat, sizeOf, stridesOf } from "../ir/types.js";
import type { Tensor } from "../ir/node.js";

/**
 * For each flat index of `out`, the flat index into an input of shape `inShape`
 * broadcast to `out` (numpy rules: leading axes added, size-1 axes repeated).
 */
export function broadcastIndex(inShape: Shape, out: Shape): Int32Array {
  const n = sizeOf(out);
  const idx = new Int32Array(n);
  const rank = out.length;
  const inStrides = stridesOf(inShape);
  const offset = rank - inShape.length;
  // stride of each output axis in the input; 0 where broadcast
  const s = out.map((_, ax) => {
    const i = ax - offset;
    return i < 0 || inShape[i] === 1 ? 0 : inStrides[i]!;
  });
  const coord = new Array<number>(rank).fill(0);
  let cur = 0;
  for (let k = 0; k < n; k++) {
    idx[k] = cur;
    // odometer increment over the output's axes
    for (let ax = rank - 1; ax >= 0; ax--) {
      coord[ax]!++;
      cur += s[ax]!;
      if (coord[ax]! < out[ax]!) break;
      cur -= s[ax]! * out[ax]!;
      coord[ax] = 0;
    }
  }
  return idx;
}

/** All inputs share one dtype (scalars were lifted to it by the builder). */
export function sameDtype(inputs: readonly Tensor[]): DType {
  const d = inputs[0]!.dtype;
  for (const t of inputs) {
    if (t.dtype !== d) throw new ShapeError(`dtypes ${inputs.map((x) => x.dtype).join(" and ")} differ; cast one operand`);
  }
  return d;
}

/** The broadcast shape of all inputs. */
export function broadcastAll(inputs: readonly Tensor[]): number[] {
  let s: number[] = [...inputs[0]!.shape];
  for (const t of inputs.slice(1)) s = broadcastShapes(s, t.shape);
  return s;
}

export function requireFloat(t: Tensor): void {
  if (!isFloat(t.dtype)) throw new ShapeError(`needs a float input, got ${t.dtype}`);
}

export function requireNumeric(t: Tensor): void {
  if (t.dtype === "bool") throw new ShapeError(`needs a numeric input, got bool; cast it first`);
}
