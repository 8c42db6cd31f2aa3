// Forward values of matmul: 2-D, batched, and with broadcast batch axes,
// against triple loops written out in the test.
import { describe, expect, it } from "vitest";
import { evalOutputs, expectAllClose, errorMessage, randomArray } from "../../helpers.js";

/** C = A·B for one pair of row-major matrices. */
function matmulRef(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number, ao = 0, bo = 0): number[] {
  const c: number[] = [];
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[ao + i * k + p]! * b[bo + p * n + j]!;
      c.push(s);
    }
  }
  return c;
}

describe("matmul", () => {
  it("a worked 2×3 · 3×2 example", () => {
    const out = evalOutputs((g) => ({ y: g.const([[1, 2, 3], [4, 5, 6]]).matmul(g.const([[7, 8], [9, 10], [11, 12]])) }));
    expect(out.y!.shape).toEqual([2, 2]);
    expect(Array.from(out.y!.data)).toEqual([58, 64, 139, 154]);
  });

  it("2-D random matrices", () => {
    const a = randomArray(5 * 7, 21);
    const b = randomArray(7 * 3, 22);
    const out = evalOutputs((g) => ({ y: g.const(a, [5, 7], "f64").matmul(g.const(b, [7, 3], "f64")) }));
    expect(out.y!.shape).toEqual([5, 3]);
    expectAllClose(out.y!, matmulRef(a, b, 5, 7, 3), 1e-12);
  });

  it("batched: [4,2,3] · [4,3,5]", () => {
    const a = randomArray(4 * 6, 23);
    const b = randomArray(4 * 15, 24);
    const out = evalOutputs((g) => ({ y: g.const(a, [4, 2, 3], "f64").matmul(g.const(b, [4, 3, 5], "f64")) }));
    expect(out.y!.shape).toEqual([4, 2, 5]);
    const want = [0, 1, 2, 3].flatMap((t) => matmulRef(a, b, 2, 3, 5, t * 6, t * 15));
    expectAllClose(out.y!, want, 1e-12);
  });

  it("broadcasts the batch: [2,1,2,3] · [3,3,4] → [2,3,2,4]", () => {
    const a = randomArray(2 * 6, 25);
    const b = randomArray(3 * 12, 26);
    const out = evalOutputs((g) => ({ y: g.const(a, [2, 1, 2, 3], "f64").matmul(g.const(b, [3, 3, 4], "f64")) }));
    expect(out.y!.shape).toEqual([2, 3, 2, 4]);
    const want: number[] = [];
    for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) want.push(...matmulRef(a, b, 2, 3, 4, i * 6, j * 12));
    expectAllClose(out.y!, want, 1e-12);
  });

  it("a 2-D operand broadcasts against a batch: [3,2,4] · [4,2]", () => {
    const a = randomArray(24, 27);
    const b = randomArray(8, 28);
    const out = evalOutputs((g) => ({ y: g.const(a, [3, 2, 4], "f64").matmul(g.const(b, [4, 2], "f64")) }));
    expect(out.y!.shape).toEqual([3, 2, 2]);
    expectAllClose(out.y!, [0, 1, 2].flatMap((t) => matmulRef(a, b, 2, 4, 2, t * 8, 0)), 1e-12);
  });

  it("f32 operands round their result to f32 in the interpreter", () => {
    const a = randomArray(4 * 4, 29);
    const b = randomArray(4 * 4, 30);
    const out = evalOutputs((g) => ({ y: g.const(a, [4, 4]).matmul(g.const(b, [4, 4])) }), {}, "f32");
    expect(out.y!.dtype).toBe("f32");
    // inputs are f32 constants too, so the reference uses their rounded values
    const want = matmulRef(a.map(Math.fround), b.map(Math.fround), 4, 4, 4).map(Math.fround);
    expect(Array.from(out.y!.data)).toEqual(want);
  });

  it("refuses mismatched inner sizes, vectors, integer and unbroadcastable batches", () => {
    const inner = errorMessage(() => evalOutputs((g) => ({ y: g.input("a", [4, 2]).matmul(g.input("b", [3, 5])) })));
    expect(inner).toMatch(/^matmul/);
    expect(inner).toMatch(/\[4,2\]/);
    expect(inner).toMatch(/\[3,5\]/);
    expect(errorMessage(() => evalOutputs((g) => ({ y: g.input("a", [3]).matmul(g.input("b", [3, 2])) })))).toMatch(/^matmul.*rank/);
    expect(errorMessage(() => evalOutputs((g) => ({ y: g.input("a", [2, 2], "i32").matmul(g.input("b", [2, 2], "i32")) })))).toMatch(/^matmul.*float/);
    expect(errorMessage(() => evalOutputs((g) => ({ y: g.input("a", [2, 2, 3]).matmul(g.input("b", [3, 3, 1])) })))).toMatch(/^matmul.*batch/);
  });
});
