// The IR's basic helpers: sizes, strides, axes, broadcasting rules and the
// GraphError message format.
import { describe, expect, it } from "vitest";
import {
  GraphError,
  ShapeError,
  broadcastShapes,
  formatLoc,
  isFloat,
  normAxes,
  normAxis,
  shapeStr,
  shapesEqual,
  sizeOf,
  stridesOf,
} from "../../../compiler/ir/types.js";

describe("shapes", () => {
  it("sizes and row-major strides", () => {
    expect(sizeOf([])).toBe(1);
    expect(sizeOf([2, 3, 4])).toBe(24);
    expect(sizeOf([2, 0, 4])).toBe(0);
    expect(stridesOf([2, 3, 4])).toEqual([12, 4, 1]);
    expect(stridesOf([5])).toEqual([1]);
    expect(stridesOf([])).toEqual([]);
  });

  it("printing and equality", () => {
    expect(shapeStr([4, 2])).toBe("[4,2]");
    expect(shapeStr([])).toBe("[]");
    expect(shapesEqual([1, 2], [1, 2])).toBe(true);
    expect(shapesEqual([1, 2], [2, 1])).toBe(false);
    expect(shapesEqual([1], [1, 1])).toBe(false);
    expect(isFloat("f32") && isFloat("f64")).toBe(true);
    expect(isFloat("i32") || isFloat("bool")).toBe(false);
  });
});

describe("axes", () => {
  it("normalize negative axes and refuse out-of-range ones", () => {
    expect(normAxis(-1, 3)).toBe(2);
    expect(normAxis(0, 3)).toBe(0);
    expect(() => normAxis(3, 3)).toThrow(ShapeError);
    expect(() => normAxis(-4, 3)).toThrow(/axis -4 is out of range for rank 3/);
    expect(() => normAxis(0.5, 3)).toThrow(ShapeError);
  });

  it("lists are sorted, undefined means all, repeats are refused", () => {
    expect(normAxes(undefined, 3)).toEqual([0, 1, 2]);
    expect(normAxes(-1, 3)).toEqual([2]);
    expect(normAxes([2, -3], 3)).toEqual([0, 2]);
    expect(normAxes([], 3)).toEqual([]);
    expect(() => normAxes([1, -2], 3)).toThrow(/repeated axis/);
  });
});

describe("broadcasting", () => {
  const ok: [number[], number[], number[]][] = [
    [[2, 1], [3], [2, 3]],
    [[], [4, 5], [4, 5]],
    [[1, 3], [2, 1], [2, 3]],
    [[5, 1, 4], [3, 1], [5, 3, 4]],
    [[0], [1], [0]],
    [[2, 3], [2, 3], [2, 3]],
  ];
  for (const [a, b, out] of ok) {
    it(`${shapeStr(a)} with ${shapeStr(b)} gives ${shapeStr(out)}, both ways`, () => {
      expect(broadcastShapes(a, b)).toEqual(out);
      expect(broadcastShapes(b, a)).toEqual(out);
    });
  }

  it("refuses unequal sizes that are not 1, naming both shapes", () => {
    expect(() => broadcastShapes([4, 2], [3])).toThrow(/\[4,2\] and \[3\].*2 vs 3/);
    expect(() => broadcastShapes([2, 3], [3, 3])).toThrow(ShapeError);
  });
});

describe("GraphError", () => {
  it("reads op: detail (at file:line)", () => {
    const e = new GraphError("matmul", "inner sizes differ", { file: "model.ts", line: 12, column: 3 });
    expect(e.message).toBe("matmul: inner sizes differ (at model.ts:12)");
    expect(e.name).toBe("GraphError");
    expect(e).toBeInstanceOf(Error);
    expect(new GraphError("grad", "no loss").message).toBe("grad: no loss");
    expect(formatLoc(undefined)).toBe("<unknown>");
  });
});
