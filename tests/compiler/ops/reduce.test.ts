// Forward values of the reductions (sum, max, min, mean, argmax) against a
// reference that walks coordinates, over single, multiple, negative and all axes.
import { describe, expect, it } from "vitest";
import { evalOutputs, expectAllClose, errorMessage, randomArray } from "../../helpers.js";
import type { Tensor } from "../../../compiler/ir/node.js";

/** Reduces `axes` (non-negative) of a row-major array by visiting every coordinate. */
function reduceRef(shape: number[], data: ArrayLike<number>, axes: number[], f: (acc: number, v: number) => number, init: number, keepDims: boolean) {
  const kept = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const out = new Array(kept.reduce((a, b) => a * b, 1)).fill(init);
  const total = shape.reduce((a, b) => a * b, 1);
  for (let k = 0; k < total; k++) {
    let r = k;
    let o = 0;
    let stride = 1;
    for (let i = shape.length - 1; i >= 0; i--) {
      const c = r % shape[i]!;
      r = Math.floor(r / shape[i]!);
      if (!axes.includes(i)) o += c * stride;
      stride *= kept[i]!;
    }
    out[o] = f(out[o], data[k]!);
  }
  return { shape: keepDims ? kept : shape.filter((_, i) => !axes.includes(i)), values: out as number[] };
}

const SHAPE = [2, 3, 4];
const DATA = randomArray(24, 5, -3, 3);

type Red = "sum" | "max" | "min";
const REF: Record<Red, [(a: number, v: number) => number, number]> = {
  sum: [(a, v) => a + v, 0],
  max: [(a, v) => (v > a ? v : a), -Infinity],
  min: [(a, v) => (v < a ? v : a), Infinity],
};

describe("sum, max, min", () => {
  const axesCases: [number | number[] | undefined, number[]][] = [
    [0, [0]],
    [1, [1]],
    [-1, [2]],
    [[0, 2], [0, 2]],
    [[-1, -3], [0, 2]],
    [[1, 2], [1, 2]],
    [undefined, [0, 1, 2]],
  ];
  for (const op of ["sum", "max", "min"] as const) {
    for (const [axes, norm] of axesCases) {
      for (const keepDims of [false, true]) {
        it(`${op} over ${JSON.stringify(axes) ?? "all"}${keepDims ? ", keepDims" : ""}`, () => {
          const out = evalOutputs((g) => ({ y: g.const(DATA, SHAPE, "f64")[op](axes, keepDims) }));
          const [f, init] = REF[op];
          const want = reduceRef(SHAPE, DATA, norm, f, init, keepDims);
          expect(out.y!.shape).toEqual(want.shape);
          expectAllClose(out.y!, want.values, 1e-12);
        });
      }
    }
  }

  it("sum of a worked 2×3 example", () => {
    const out = evalOutputs((g) => {
      const x = g.const([[1, 2, 3], [4, 5, 6]]);
      return { rows: x.sum(1), cols: x.sum(0), all: x.sum(), kept: x.sum(-1, true) };
    });
    expect(Array.from(out.rows!.data)).toEqual([6, 15]);
    expect(Array.from(out.cols!.data)).toEqual([5, 7, 9]);
    expect(out.all!.shape).toEqual([]);
    expect(Array.from(out.all!.data)).toEqual([21]);
    expect(out.kept!.shape).toEqual([2, 1]);
  });

  it("an integer sum stays i32", () => {
    const out = evalOutputs((g) => ({ y: g.const([1, 2, 3, 4], [2, 2], "i32").sum(0) }));
    expect(out.y!.dtype).toBe("i32");
    expect(Array.from(out.y!.data)).toEqual([4, 6]);
  });

  it("max propagates NaN, min of infinities", () => {
    const out = evalOutputs((g) => {
      const x = g.const([1, NaN, 3, -Infinity, 2, 5], [2, 3], "f64");
      return { mx: x.max(1), mn: x.min(1) };
    });
    expectAllClose(out.mx!, [NaN, 5]);
    expectAllClose(out.mn!, [NaN, -Infinity]);
  });

  it("refuses a repeated axis and the max of an empty axis", () => {
    const rep = errorMessage(() => evalOutputs((g) => ({ y: g.input("x", [2, 3]).sum([1, -1]) })));
    expect(rep).toMatch(/^sum/);
    expect(rep).toMatch(/repeated axis/);
    const empty = errorMessage(() => evalOutputs((g) => ({ y: g.input("x", [2, 0]).max(1) })));
    expect(empty).toMatch(/^max/);
    expect(empty).toMatch(/empty axis/);
  });
});

describe("mean", () => {
  const cases: [number | number[] | undefined, number[]][] = [[1, [1]], [[0, 2], [0, 2]], [undefined, [0, 1, 2]]];
  for (const [axes, norm] of cases) {
    it(`mean over ${JSON.stringify(axes) ?? "all"} is the sum divided by the count`, () => {
      const out = evalOutputs((g) => ({ y: g.const(DATA, SHAPE, "f64").mean(axes) }));
      const n = norm.reduce((a, i) => a * SHAPE[i]!, 1);
      const want = reduceRef(SHAPE, DATA, [...norm], (a, v) => a + v, 0, false);
      expect(out.y!.shape).toEqual(want.shape);
      expectAllClose(out.y!, want.values.map((v) => v / n), 1e-12);
    });
  }

  it("keepDims keeps the reduced axes as 1", () => {
    const out = evalOutputs((g) => ({ y: g.const([[1, 2], [3, 6]]).mean(-1, true) }));
    expect(out.y!.shape).toEqual([2, 1]);
    expect(Array.from(out.y!.data)).toEqual([1.5, 4.5]);
  });
});

describe("argmax", () => {
  /** Index of the first maximum along `axis` of a 2-D array, by hand. */
  function argmax2d(rows: number[][], axis: 0 | 1): number[] {
    if (axis === 1) return rows.map((r) => r.indexOf(Math.max(...r)));
    return rows[0]!.map((_, j) => {
      const col = rows.map((r) => r[j]!);
      return col.indexOf(Math.max(...col));
    });
  }
  const M = [
    [3, 1, 4, 1],
    [5, 9, 2, 6],
    [5, 3, 5, 8],
  ];

  it("over the last axis (default) and axis 0, as i32", () => {
    const out = evalOutputs((g) => {
      const x = g.const(M);
      return { last: x.argmax(), first: x.argmax(0), neg: x.argmax(-2) };
    });
    expect(out.last!.dtype).toBe("i32");
    expect(out.last!.shape).toEqual([3]);
    expect(Array.from(out.last!.data)).toEqual(argmax2d(M, 1));
    expect(Array.from(out.first!.data)).toEqual(argmax2d(M, 0));
    expect(Array.from(out.neg!.data)).toEqual(argmax2d(M, 0));
  });

  it("ties go to the first maximum", () => {
    const out = evalOutputs((g) => ({ y: g.const([[2, 7, 7, 1], [0, 0, 0, 0]]).argmax(1) }));
    expect(Array.from(out.y!.data)).toEqual([1, 0]);
  });

  it("keepDims, a middle axis of a 3-D tensor", () => {
    const out = evalOutputs((g) => ({ y: (g.const(DATA, SHAPE, "f64") as Tensor).argmax(1, true) }));
    expect(out.y!.shape).toEqual([2, 1, 4]);
    const want: number[] = [];
    for (let i = 0; i < 2; i++) {
      for (let k = 0; k < 4; k++) {
        const col = [0, 1, 2].map((j) => DATA[i * 12 + j * 4 + k]!);
        want.push(col.indexOf(Math.max(...col)));
      }
    }
    expect(Array.from(out.y!.data)).toEqual(want);
  });

  it("NaN counts as the maximum; -Infinity rows pick index 0", () => {
    const out = evalOutputs((g) => ({ y: g.const([1, NaN, 3, -Infinity, -Infinity, -Infinity], [2, 3], "f64").argmax(1) }));
    expect(Array.from(out.y!.data)).toEqual([1, 0]);
  });
});
