// Indexing primitives: slice, concat, pad, gather, scatterAdd, oneHot.
import type { NDArray, NodeOf, OpDef } from "./def.js";
import type { Tensor } from "../ir/node.js";
import type { Shape } from "../ir/types.js";
import { GraphError, ShapeError, isFloat, normAxis, shapeStr, shapesEqual, sizeOf, stridesOf } from "../ir/types.js";
import type { Expr } from "../kernel/kir.js";
import { nest } from "../kernel/loops.js";
import { addE, affine, bin, if_, let_, load, mulE, num, parallel, ref, scatterAdd, sel, store, un } from "../kernel/kir.js";

/** Calls `visit(flat, coord)` for every element of `shape` in row-major order. */
export function forEachCoord(shape: Shape, visit: (flat: number, coord: readonly number[]) => void): void {
  const n = sizeOf(shape);
  const coord = new Array<number>(shape.length).fill(0);
  for (let k = 0; k < n; k++) {
    visit(k, coord);
    for (let ax = shape.length - 1; ax >= 0; ax--) {
      if (++coord[ax]! < shape[ax]!) break;
      coord[ax] = 0;
    }
  }
}

const isCount = (v: number): boolean => Number.isInteger(v) && v >= 0;

/** The slice's result shape (size -1 = to the end), checking every range. */
function sliceShape(shape: Shape, begin: readonly number[], size: readonly number[]): number[] {
  if (begin.length !== shape.length || size.length !== shape.length) {
    throw new ShapeError(`begin [${begin.join(",")}] and size [${size.join(",")}] need one entry per axis of ${shapeStr(shape)}`);
  }
  return shape.map((d, ax) => {
    const b = begin[ax]!;
    const s = size[ax] === -1 ? d - b : size[ax]!;
    if (!isCount(b) || !isCount(s) || b + s > d) {
      throw new ShapeError(`begin [${begin.join(",")}] size [${size.join(",")}] is out of range for ${shapeStr(shape)} on axis ${ax} (size ${d})`);
    }
    return s;
  });
}

/** Integer index tensors only: i32. */
function requireIndices(t: Tensor, what: string): void {
  if (t.dtype !== "i32") throw new ShapeError(`${what} must be i32, got ${t.dtype}${shapeStr(t.shape)}`);
}

/** Describes a bad index at flat position `p` of an index array, naming its coordinates. */
function badIndex(op: string, node: Tensor, idx: NDArray, p: number, rows: number): GraphError {
  const coord = stridesOf(idx.shape).map((s, ax) => Math.floor(p / s) % idx.shape[ax]!);
  return new GraphError(op, `index ${idx.data[p]} at indices[${coord.join(",")}] is out of range for ${rows} rows (indices ${shapeStr(idx.shape)})`, node.src);
}

/** Kernel IR: is row `r` one of the table's `rows`? */
function rowInRange(r: Expr, rows: number): Expr {
  return bin("&&", bin(">=", r, 0), bin("<", r, rows));
}

/** Sizes before, at and after `axis` of a shape: a concat works on [outer, axis * inner]. */
function split(shape: Shape, axis: number): { outer: number; inner: number } {
  return { outer: sizeOf(shape.slice(0, axis)), inner: sizeOf(shape.slice(axis)) };
}

/** The normalized axis of a concat node, and each input's offset along it. */
function concatLayout(node: NodeOf<"concat">): { axis: number; offsets: number[] } {
  const axis = normAxis(node.params.axis, node.rank);
  let off = 0;
  const offsets = node.inputs.map((t) => {
    const o = off;
    off += t.shape[axis]!;
    return o;
  });
  return { axis, offsets };
}

export const INDEXING = {
  /** x[begin : begin + size] on every axis. */
  slice: {
    flops: () => 0,
    infer: ([x], p) => ({ shape: sliceShape(x!.shape, p.begin, p.size), dtype: x!.dtype }),
    eval: (node, [x]) => {
      const xs = stridesOf(x!.shape);
      const base = node.params.begin.reduce((a, b, ax) => a + b * xs[ax]!, 0);
      const out = new Float64Array(sizeOf(node.shape));
      forEachCoord(node.shape, (k, c) => {
        let i = base;
        for (let ax = 0; ax < c.length; ax++) i += c[ax]! * xs[ax]!;
        out[k] = x!.data[i]!;
      });
      return out;
    },
    // the cotangent sits where the slice came from; zeros elsewhere
    vjp: (ct, node) => {
      const x = node.inputs[0]!;
      const b = node.params.begin;
      return [ct.pad(x.shape.map((d, ax) => [b[ax]!, d - b[ax]! - node.shape[ax]!] as [number, number]))];
    },
    lower: (node) => {
      const x = node.inputs[0]!;
      const xs = stridesOf(x.shape);
      const base = node.params.begin.reduce((a, b, ax) => a + b * xs[ax]!, 0);
      return nest(node.shape, "i", (v) => [store("out", affine(v, stridesOf(node.shape)), load("in0", affine(v, xs, base)))]);
    },
  } satisfies OpDef<"slice">,

  /** Joins tensors along one axis; all other sizes must agree. */
  concat: {
    flops: () => 0,
    infer: (inputs, p) => {
      if (inputs.length === 0) throw new ShapeError("needs at least one tensor");
      const first = inputs[0]!;
      const axis = normAxis(p.axis, first.rank);
      const list = inputs.map((t) => shapeStr(t.shape)).join(", ");
      let total = 0;
      for (const t of inputs) {
        if (t.dtype !== first.dtype) throw new ShapeError(`dtypes differ: ${inputs.map((u) => u.dtype).join(", ")}`);
        const same = t.rank === first.rank && t.shape.every((d, ax) => ax === axis || d === first.shape[ax]);
        if (!same) throw new ShapeError(`shapes ${list} differ on an axis other than the concat axis ${axis}`);
        total += t.shape[axis]!;
      }
      return { shape: first.shape.map((d, ax) => (ax === axis ? total : d)), dtype: first.dtype };
    },
    eval: (node, inputs) => {
      const { axis, offsets } = concatLayout(node);
      const { outer, inner: outInner } = split(node.shape, axis);
      // elements per unit of the concat axis
      const unit = sizeOf(node.shape.slice(axis + 1));
      const out = new Float64Array(sizeOf(node.shape));
      inputs.forEach((x, k) => {
        const { inner } = split(x.shape, axis);
        const at = offsets[k]! * unit;
        for (let o = 0; o < outer; o++) out.set(x.data.subarray(o * inner, (o + 1) * inner), o * outInner + at);
      });
      return out;
    },
    // each input gets its own stretch of the cotangent back
    vjp: (ct, node) => {
      const { axis, offsets } = concatLayout(node);
      return node.inputs.map((t, k) => {
        if (!isFloat(t.dtype)) return null;
        const begin = t.shape.map((_, ax) => (ax === axis ? offsets[k]! : 0));
        return ct.slice(begin, [...t.shape]);
      });
    },
    lower: (node) => {
      const { axis, offsets } = concatLayout(node);
      const { outer, inner: outInner } = split(node.shape, axis);
      // elements per unit of the concat axis
      const unit = sizeOf(node.shape.slice(axis + 1));
      return node.inputs.flatMap((x, k) => {
        const { inner } = split(x.shape, axis);
        const body = [store("out", affine(["o", "j"], [outInner, 1], offsets[k]! * unit), load(`in${k}`, affine(["o", "j"], [inner, 1])))];
        return [parallel("o", outer, [parallel("j", inner, body)])];
      });
    },
  } satisfies OpDef<"concat">,

  /** Surrounds x with `value`: paddings[ax] = [before, after]. */
  pad: {
    flops: () => 0,
    infer: ([x], p) => {
      const ok = p.paddings.length === x!.rank && p.paddings.every((q) => q.length === 2 && isCount(q[0]) && isCount(q[1]));
      if (!ok) {
        throw new ShapeError(`paddings ${JSON.stringify(p.paddings)} need one [before, after] pair of non-negative integers per axis of ${shapeStr(x!.shape)}`);
      }
      if (typeof p.value !== "number") throw new ShapeError(`the pad value must be a number, got ${String(p.value)}`);
      return { shape: x!.shape.map((d, ax) => d + p.paddings[ax]![0] + p.paddings[ax]![1]), dtype: x!.dtype };
    },
    eval: (node, [x]) => {
      const os = stridesOf(node.shape);
      const base = node.params.paddings.reduce((a, [b], ax) => a + b * os[ax]!, 0);
      const out = new Float64Array(sizeOf(node.shape)).fill(node.params.value);
      forEachCoord(x!.shape, (k, c) => {
        let i = base;
        for (let ax = 0; ax < c.length; ax++) i += c[ax]! * os[ax]!;
        out[i] = x!.data[k]!;
      });
      return out;
    },
    // the padding is constant: only the interior gets a cotangent
    vjp: (ct, node) => [ct.slice(node.params.paddings.map(([b]) => b), [...node.inputs[0]!.shape])],
    lower: (node) => {
      const x = node.inputs[0]!;
      const os = stridesOf(node.shape);
      const base = node.params.paddings.reduce((a, [b], ax) => a + b * os[ax]!, 0);
      // fill with the pad value, then copy the interior
      const fill = parallel("i", sizeOf(node.shape), [store("out", ref("i"), num(node.params.value))]);
      const copy = nest(x.shape, "j", (v) => [store("out", affine(v, os, base), load("in0", affine(v, stridesOf(x.shape))))]);
      return [fill, ...copy];
    },
  } satisfies OpDef<"pad">,

  /** Rows of a table picked by indices: table [V, ...d], indices [...i] → [...i, ...d]. */
  gather: {
    flops: () => 0,
    infer: ([table, indices]) => {
      requireIndices(indices!, "indices");
      if (table!.rank < 1) throw new ShapeError(`the table must have rank >= 1, got ${shapeStr(table!.shape)}`);
      return { shape: [...indices!.shape, ...table!.shape.slice(1)], dtype: table!.dtype };
    },
    eval: (node, [table, indices]) => {
      const rows = table!.shape[0]!;
      const d = sizeOf(table!.shape.slice(1));
      const out = new Float64Array(sizeOf(node.shape));
      for (let p = 0; p < indices!.data.length; p++) {
        const r = indices!.data[p]!;
        if (!Number.isInteger(r) || r < 0 || r >= rows) throw badIndex("gather", node, indices!, p, rows);
        out.set(table!.data.subarray(r * d, (r + 1) * d), p * d);
      }
      return out;
    },
    // d table = the cotangent rows summed back into the rows they came from
    vjp: (ct, node) => {
      const [table, indices] = node.inputs as [Tensor, Tensor];
      return [ct.ctx.apply("scatterAdd", [ct, indices], { rows: table.shape[0]! }), null];
    },
    // the kernel cannot throw: an out-of-range index gives a zero row, and scatterAdd
    // (the VJP) skips it, so forward and backward agree, as oneHot does
    lower: (node) => {
      const [table, indices] = node.inputs as [Tensor, Tensor];
      const d = sizeOf(table.shape.slice(1));
      const at = affine(["p", "j"], [d, 1]);
      const copy = parallel("j", d, [store("out", at, load("in0", addE(mulE(ref("r"), d), ref("j"))))]);
      const zero = parallel("j", d, [store("out", at, num(0))]);
      const row = let_("r", un("toInt", load("in1", ref("p"))));
      return [parallel("p", indices.size, [row, if_(rowInRange(ref("r"), table.shape[0]!), [copy], [zero])])];
    },
  } satisfies OpDef<"gather">,

  /** values [...i, ...d] summed into rows: out[indices[p]] += values[p]; duplicates add up. */
  scatterAdd: {
    infer: ([values, indices], p) => {
      requireIndices(indices!, "indices");
      if (values!.dtype === "bool") throw new ShapeError("needs numeric values, got bool");
      if (!isCount(p.rows)) throw new ShapeError(`rows must be a non-negative integer, got ${p.rows}`);
      const lead = values!.shape.slice(0, indices!.rank);
      if (!shapesEqual(lead, indices!.shape)) {
        throw new ShapeError(`values ${shapeStr(values!.shape)} must start with the indices' shape ${shapeStr(indices!.shape)}`);
      }
      return { shape: [p.rows, ...values!.shape.slice(indices!.rank)], dtype: values!.dtype };
    },
    eval: (node, [values, indices]) => {
      const rows = node.params.rows;
      const d = sizeOf(node.shape.slice(1));
      const out = new Float64Array(sizeOf(node.shape));
      for (let p = 0; p < indices!.data.length; p++) {
        const r = indices!.data[p]!;
        if (!Number.isInteger(r) || r < 0 || r >= rows) throw badIndex("scatterAdd", node, indices!, p, rows);
        for (let j = 0; j < d; j++) out[r * d + j]! += values!.data[p * d + j]!;
      }
      return out;
    },
    // linear in values: the transpose of a scatter is a gather
    vjp: (ct, node) => [ct.gather(node.inputs[1]!), null],
    // zero, then accumulate; the kernel skips out-of-range rows
    lower: (node) => {
      const indices = node.inputs[1]!;
      const rows = node.params.rows;
      const d = sizeOf(node.shape.slice(1));
      const zero = parallel("i", sizeOf(node.shape), [store("out", ref("i"), num(0))]);
      const add = parallel("j", d, [scatterAdd("out", affine(["r", "j"], [d, 1]), load("in0", affine(["p", "j"], [d, 1])))]);
      return [zero, parallel("p", indices.size, [let_("r", un("toInt", load("in1", ref("p")))), if_(rowInRange(ref("r"), rows), [add])])];
    },
  } satisfies OpDef<"scatterAdd">,

  /** i32 labels [...] → f32 [..., depth]; an out-of-range label gives a zero row. */
  oneHot: {
    fusion: "index",
    // one comparison per element
    cost: 1,
    // the last coordinate is a value, not an operand index: the labels are read at the leading ones
    indexMap: (_n, out) => [out.slice(0, -1)],
    infer: ([x], p) => {
      requireIndices(x!, "labels");
      if (!isCount(p.depth)) throw new ShapeError(`depth must be a non-negative integer, got ${p.depth}`);
      return { shape: [...x!.shape, p.depth], dtype: "f32" };
    },
    eval: (node, [x]) => {
      const depth = node.params.depth;
      const out = new Float64Array(sizeOf(node.shape));
      x!.data.forEach((v, p) => {
        if (Number.isInteger(v) && v >= 0 && v < depth) out[p * depth + v] = 1;
      });
      return out;
    },
    lower: (node) => {
      const depth = node.params.depth;
      const body = store("out", affine(["p", "k"], [depth, 1]), sel(bin("==", ref("v"), ref("k")), 1, 0));
      return [parallel("p", node.inputs[0]!.size, [let_("v", load("in0", ref("p"))), parallel("k", depth, [body])])];
    },
  } satisfies OpDef<"oneHot">,
} as const;
