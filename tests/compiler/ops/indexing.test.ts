// Indexing primitives (slice, concat, pad, gather, scatterAdd, oneHot): values
// worked by hand, lowered kernels against eval, gradients and second
// derivatives against finite differences, and shape errors.
import { describe, expect, it } from "vitest";
import { concat, stack } from "../../../compiler/dsl/functions.js";
import * as api from "../../../index.js";
import { OPS } from "../../../compiler/ops/index.js";
import { graph } from "../../../compiler/dsl/graph.js";
import type { GraphBuilder } from "../../../compiler/dsl/graph.js";
import { kernelFunction } from "../../../compiler/backends/ts/jsExpr.js";
import type { Tensor } from "../../../compiler/ir/node.js";
import { errorMessage, evalOutputs, expectAllClose, randomArray, randomInts } from "../../helpers.js";
import { expectGradsMatchFD, expectHvpMatchesFD, expectLoweringMatches } from "./opChecks.js";

const iota = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => i + from);
const scatterAdd = (values: Tensor, indices: Tensor, rows: number): Tensor => values.ctx.apply("scatterAdd", [values, indices], { rows });
/** A fixed random weighting, so that a loss Σ y·w sees every element of y differently. */
const weights = (g: GraphBuilder, shape: number[], seed: number): Tensor => g.const(randomArray(shape, seed), shape);
const HERE = /\(at tests\/compiler\/ops\/indexing\.test\.ts:\d+\)$/;

describe("slice", () => {
  it("takes a block; size -1 runs to the end", () => {
    const { y } = evalOutputs((g) => ({ y: g.const(iota(12), [3, 4]).slice([1, 1], [2, -1]) }));
    expect(y!.shape).toEqual([2, 3]);
    expect(Array.from(y!.data)).toEqual([5, 6, 7, 9, 10, 11]);
  });

  it("keeps size-1 axes and defaults size to the end", () => {
    const out = evalOutputs((g) => {
      const x = g.const(iota(24), [2, 3, 4]);
      return { a: x.slice([1, 2, 0], [1, 1, -1]), b: x.slice([1, 2, 3]) };
    });
    expect(out.a!.shape).toEqual([1, 1, 4]);
    expect(Array.from(out.a!.data)).toEqual([20, 21, 22, 23]);
    expect(out.b!.shape).toEqual([1, 1, 1]);
    expect(Array.from(out.b!.data)).toEqual([23]);
  });

  it("gives empty slices and slices scalars", () => {
    const out = evalOutputs((g) => {
      const x = g.const(iota(12), [3, 4]);
      return { a: x.slice([0, 4], [3, 0]), b: x.slice([3, 0]), s: g.const(7).slice([], []) };
    });
    expect(out.a!.shape).toEqual([3, 0]);
    expect(out.b!.shape).toEqual([0, 4]);
    expect(out.a!.data.length + out.b!.data.length).toBe(0);
    expect(Array.from(out.s!.data)).toEqual([7]);
  });

  it("rejects ranges outside the input, naming the shapes and the line", () => {
    const over = errorMessage(() => evalOutputs((g) => ({ y: g.input("x", [3, 4]).slice([0, 3], [1, 2]) })));
    expect(over).toMatch(/^slice: begin \[0,3\] size \[1,2\] is out of range for \[3,4\] on axis 1/);
    expect(over).toMatch(HERE);
    expect(errorMessage(() => evalOutputs((g) => ({ y: g.input("x", [3, 4]).slice([-1, 0]) })))).toMatch(/^slice: .*out of range for \[3,4\] on axis 0/);
    expect(errorMessage(() => evalOutputs((g) => ({ y: g.input("x", [3, 4]).slice([0], [1]) })))).toMatch(/^slice: .*one entry per axis of \[3,4\]/);
  });
});

describe("concat and stack", () => {
  it("joins along a negative axis", () => {
    const { y } = evalOutputs((g) => ({ y: concat([g.const([[1, 2], [3, 4]]), g.const([[5], [6]])], -1) }));
    expect(y!.shape).toEqual([2, 3]);
    expect(Array.from(y!.data)).toEqual([1, 2, 5, 3, 4, 6]);
  });

  it("joins a middle axis, with an empty operand", () => {
    const { y } = evalOutputs((g) => ({
      y: concat([g.const(iota(4), [2, 1, 2]), g.const([], [2, 0, 2]), g.const(iota(12, 100), [2, 3, 2])], 1),
    }));
    expect(y!.shape).toEqual([2, 4, 2]);
    const want: number[] = [];
    for (let i = 0; i < 2; i++) {
      for (let j = 0; j < 4; j++) {
        for (let k = 0; k < 2; k++) want.push(j < 1 ? i * 2 + k : 100 + (i * 3 + j - 1) * 2 + k);
      }
    }
    expect(Array.from(y!.data)).toEqual(want);
  });

  it("passes one operand through and stacks on new axes", () => {
    const out = evalOutputs((g) => {
      const a = g.const([1, 2, 3]);
      const b = g.const([4, 5, 6]);
      return { one: concat([a]), s0: stack([a, b]), s1: stack([a, b], -1) };
    });
    expect(Array.from(out.one!.data)).toEqual([1, 2, 3]);
    expect(out.s0!.shape).toEqual([2, 3]);
    expect(Array.from(out.s0!.data)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(out.s1!.shape).toEqual([3, 2]);
    expect(Array.from(out.s1!.data)).toEqual([1, 4, 2, 5, 3, 6]);
  });

  it("is exported from the package entry", () => {
    expect(api.concat).toBe(concat);
    expect(api.stack).toBe(stack);
  });

  it("rejects mismatched shapes and dtypes, bad axes and empty lists", () => {
    const shapes = errorMessage(() => evalOutputs((g) => ({ y: concat([g.input("a", [2, 3]), g.input("b", [3, 3])], 1) })));
    expect(shapes).toMatch(/^concat: shapes \[2,3\], \[3,3\] differ on an axis other than the concat axis 1; inputs: f32\[2,3\], f32\[3,3\]/);
    expect(shapes).toMatch(HERE);
    const rank = errorMessage(() => evalOutputs((g) => ({ y: concat([g.input("a", [2, 3]), g.input("b", [2, 3, 1])], 0) })));
    expect(rank).toMatch(/^concat: shapes \[2,3\], \[2,3,1\] differ/);
    expect(errorMessage(() => evalOutputs((g) => ({ y: concat([g.input("a", [2]), g.input("b", [2], "i32")]) })))).toMatch(/^concat: dtypes differ: f32, i32/);
    expect(errorMessage(() => evalOutputs((g) => ({ y: concat([g.input("a", [2, 3])], 2) })))).toMatch(/^concat: axis 2 is out of range for rank 2/);
    expect(errorMessage(() => concat([], 0))).toMatch(/^concat: needs a non-empty list of tensors/);
    expect(errorMessage(() => evalOutputs((g) => ({ y: stack([g.input("a", [2]), g.input("b", [3])]) })))).toMatch(/^stack: all tensors must have one shape, got \[2\], \[3\] \(at .*indexing\.test\.ts/);
  });
});

describe("pad", () => {
  it("surrounds with a constant", () => {
    const out = evalOutputs((g) => ({
      a: g.const([[1, 2], [3, 4]]).pad([[1, 0], [0, 2]], 9),
      b: g.const([1, 2, 3]).pad([[2, 1]]),
      e: g.const([], [0, 2]).pad([[1, 1], [0, 0]], 5),
    }));
    expect(out.a!.shape).toEqual([3, 4]);
    expect(Array.from(out.a!.data)).toEqual([9, 9, 9, 9, 1, 2, 9, 9, 3, 4, 9, 9]);
    expect(Array.from(out.b!.data)).toEqual([0, 0, 1, 2, 3, 0]);
    expect(out.e!.shape).toEqual([2, 2]);
    expect(Array.from(out.e!.data)).toEqual([5, 5, 5, 5]);
  });

  it("keeps pads with different non-finite values apart", () => {
    const out = evalOutputs((g) => {
      const x = g.const([1]);
      return { a: x.pad([[1, 0]], Infinity), b: x.pad([[1, 0]], -Infinity), c: x.pad([[0, 1]], NaN) };
    });
    expect(Array.from(out.a!.data)).toEqual([Infinity, 1]);
    expect(Array.from(out.b!.data)).toEqual([-Infinity, 1]);
    expect(Array.from(out.c!.data)).toEqual([1, NaN]);
  });

  it("rejects negative or missing paddings", () => {
    const neg = errorMessage(() => evalOutputs((g) => ({ y: g.input("x", [2, 2]).pad([[0, -1], [0, 0]]) })));
    expect(neg).toMatch(/^pad: paddings \[\[0,-1\],\[0,0\]\] need one \[before, after\] pair of non-negative integers per axis of \[2,2\]/);
    expect(neg).toMatch(HERE);
    expect(errorMessage(() => evalOutputs((g) => ({ y: g.input("x", [2, 2]).pad([[1, 1]]) })))).toMatch(/^pad: .*per axis of \[2,2\]/);
  });
});

describe("gather, scatterAdd, oneHot", () => {
  it("gathers rows, repeated indices included", () => {
    const out = evalOutputs((g) => {
      const table = g.const(iota(8), [4, 2]);
      return { y: table.gather(g.const([[3, 0], [3, 3]], [2, 2], "i32")), s: g.const([10, 11, 12]).gather(g.const(2, [], "i32")) };
    });
    expect(out.y!.shape).toEqual([2, 2, 2]);
    expect(Array.from(out.y!.data)).toEqual([6, 7, 0, 1, 6, 7, 6, 7]);
    expect(out.s!.shape).toEqual([]);
    expect(Array.from(out.s!.data)).toEqual([12]);
  });

  it("throws on an out-of-range index, naming it", () => {
    const msg = errorMessage(() => evalOutputs((g) => ({ y: g.const(iota(8), [4, 2]).gather(g.const([[0, 1], [4, 2]], [2, 2], "i32")) })));
    expect(msg).toMatch(/^gather: index 4 at indices\[1,0\] is out of range for 4 rows \(indices \[2,2\]\)/);
    expect(msg).toMatch(HERE);
  });

  it("scatter-adds rows, summing duplicates", () => {
    const { y } = evalOutputs((g) => ({
      y: scatterAdd(g.const([[1, 2], [3, 4], [5, 6], [7, 8]]), g.const([1, 0, 1, 3], [4], "i32"), 4),
    }));
    expect(y!.shape).toEqual([4, 2]);
    expect(Array.from(y!.data)).toEqual([3, 4, 6, 8, 0, 0, 7, 8]);
  });

  it("one-hot encodes; out-of-range labels give zero rows", () => {
    const out = evalOutputs((g) => ({ a: g.const([2, -1, 0, 5], [4], "i32").oneHot(3), b: g.const([[1, 0], [0, 1]], [2, 2], "i32").oneHot(2) }));
    expect(out.a!.dtype).toBe("f32");
    expect(out.a!.shape).toEqual([4, 3]);
    expect(Array.from(out.a!.data)).toEqual([0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
    expect(out.b!.shape).toEqual([2, 2, 2]);
    expect(Array.from(out.b!.data)).toEqual([0, 1, 1, 0, 1, 0, 0, 1]);
    expect(OPS.oneHot.vjp).toBeUndefined();
  });

  it("rejects float indices, scalar tables and mismatched values", () => {
    expect(errorMessage(() => evalOutputs((g) => ({ y: g.input("t", [4, 2]).gather(g.input("i", [3])) })))).toMatch(/^gather: indices must be i32, got f32\[3\]/);
    expect(errorMessage(() => evalOutputs((g) => ({ y: g.input("t", []).gather(g.input("i", [3], "i32")) })))).toMatch(/^gather: the table must have rank >= 1, got \[\]/);
    const sc = errorMessage(() => evalOutputs((g) => ({ y: scatterAdd(g.input("v", [3, 2]), g.input("i", [4], "i32"), 5) })));
    expect(sc).toMatch(/^scatterAdd: values \[3,2\] must start with the indices' shape \[4\]/);
    expect(sc).toMatch(HERE);
    expect(errorMessage(() => evalOutputs((g) => ({ y: g.input("l", [3]).oneHot(4) })))).toMatch(/^oneHot: labels must be i32, got f32\[3\]/);
  });
});

describe("lowered kernels agree with eval", () => {
  const x234 = { x: randomArray([2, 3, 4], 3) };
  it("slice", () => {
    expectLoweringMatches((g) => g.input("x", [2, 3, 4]).slice([1, 0, 1], [1, -1, 2]), x234);
    expectLoweringMatches((g) => g.input("x", [2, 3, 4]).slice([0, 3, 0], [2, 0, 4]), x234);
    expectLoweringMatches((g) => g.input("s", []).slice([], []), { s: [4] });
  });
  it("concat", () => {
    const feeds = { a: randomArray([2, 1, 4], 4), b: randomArray([2, 3, 4], 5), c: randomArray([2, 2, 4], 6) };
    expectLoweringMatches((g) => concat([g.input("a", [2, 1, 4]), g.input("b", [2, 3, 4]), g.input("c", [2, 2, 4])], -2), feeds);
    expectLoweringMatches((g) => concat([g.input("b", [2, 3, 4]), g.input("b2", [2, 3, 4])], 0), { b: feeds.b, b2: randomArray(24, 9) });
  });
  it("pad", () => {
    expectLoweringMatches((g) => g.input("x", [2, 3, 4]).pad([[1, 0], [0, 2], [3, 1]], -0.5), x234);
  });
  it("gather, scatterAdd, oneHot", () => {
    const idx = randomInts(6, 5, 11);
    expectLoweringMatches((g) => g.input("t", [5, 2, 3]).gather(g.input("i", [2, 3], "i32")), { t: randomArray(30, 12), i: idx });
    expectLoweringMatches((g) => g.input("t", [5]).gather(g.input("i", [6], "i32")), { t: randomArray(5, 13), i: idx });
    expectLoweringMatches((g) => scatterAdd(g.input("v", [2, 3, 4]), g.input("i", [2, 3], "i32"), 5), { v: randomArray(24, 14), i: idx });
    expectLoweringMatches((g) => g.input("l", [2, 3], "i32").oneHot(4), { l: [0, 3, 4, -1, 2, 2] });
  });
  it("out-of-range indices: gather's kernel gives a zero row and scatterAdd's skips it, so they agree", () => {
    let node: Tensor | undefined;
    graph("oob", (g) => {
      node = g.input("t", [3, 2]).gather(g.input("i", [4], "i32"));
      return {};
    });
    const gather = node!;
    const run = (n: Tensor, ins: Float64Array[]) => {
      const out = new Float64Array(n.size).fill(NaN);
      kernelFunction(OPS[n.op].lower!(n as never), ins.length)(out, ...ins);
      return out;
    };
    const table = Float64Array.from([1, 2, 3, 4, 5, 6]);
    const indices = Float64Array.from([2, -1, 3, 0]);
    expect(Array.from(run(gather, [table, indices]))).toEqual([5, 6, 0, 0, 0, 0, 1, 2]);
    // the VJP: each row's cotangent goes back to its in-range row only
    const back = gather.ctx.apply("scatterAdd", [gather, gather.inputs[1]!], { rows: 3 });
    const ct = Float64Array.from([1, 1, 10, 10, 100, 100, 1000, 1000]);
    expect(Array.from(run(back, [ct, indices]))).toEqual([1000, 1000, 0, 0, 1, 1]);
  });
});

describe("gradients against finite differences", () => {
  it("slice: the cotangent padded back", () => {
    expectGradsMatchFD((g) => g.param("x", [3, 4, 2]).slice([1, 1, 0], [2, -1, 1]).mul(weights(g, [2, 3, 1], 21)).sum());
  });
  it("concat and stack: the cotangent sliced apart", () => {
    expectGradsMatchFD((g) => {
      const y = concat([g.param("a", [2, 1, 3]), g.param("b", [2, 2, 3]), g.param("c", [2, 3, 3])], -2);
      return y.mul(weights(g, [2, 6, 3], 22)).sum();
    });
    expectGradsMatchFD((g) => stack([g.param("a", [2, 3]), g.param("b", [2, 3])], 1).mul(weights(g, [2, 2, 3], 23)).sum());
  });
  it("pad: the interior of the cotangent", () => {
    expectGradsMatchFD((g) => g.param("x", [2, 3]).pad([[1, 2], [0, 1]], 0.7).mul(weights(g, [5, 4], 24)).sum());
  });
  it("gather and scatterAdd, repeated indices included", () => {
    const idx = { i: [3, 0, 3, 3, 1, 0] };
    expectGradsMatchFD((g) => g.param("t", [4, 2]).gather(g.input("i", [2, 3], "i32")).mul(weights(g, [2, 3, 2], 25)).sum(), { feeds: idx });
    expectGradsMatchFD(
      (g) => scatterAdd(g.param("v", [2, 3, 2]), g.input("i", [2, 3], "i32"), 5).mul(weights(g, [5, 2], 26)).sum(),
      { feeds: idx },
    );
  });

  it("second order: pad, slice, concat, gather, scatterAdd", () => {
    const idx = { i: [2, 0, 2, 1] };
    expectHvpMatchesFD((g) => g.param("x", [2, 3]).pad([[1, 0], [2, 1]], 0.3).tanh().mul(weights(g, [3, 6], 31)).sum());
    expectHvpMatchesFD((g) => g.param("x", [4, 3]).slice([1, 1], [3, 2]).square().mul(weights(g, [3, 2], 32)).sum());
    expectHvpMatchesFD((g) => concat([g.param("a", [2, 2]), g.param("b", [2, 1])], 1).tanh().mul(weights(g, [2, 3], 33)).sum());
    expectHvpMatchesFD((g) => g.param("t", [3, 2]).gather(g.input("i", [4], "i32")).tanh().mul(weights(g, [4, 2], 34)).sum(), { feeds: idx });
    expectHvpMatchesFD(
      (g) => scatterAdd(g.param("v", [4, 2]), g.input("i", [4], "i32"), 3).tanh().mul(weights(g, [3, 2], 35)).sum(),
      { feeds: idx },
    );
  });

  it("gives a gather's table gradient the summed cotangent of each row", () => {
    const grads = expectGradsMatchFD((g) => g.param("t", [3, 2]).gather(g.input("i", [4], "i32")).mul(g.const(iota(8, 1), [4, 2])).sum(), {
      feeds: { i: [2, 0, 2, 2] },
    });
    // row 0 gets weights row 1; row 2 gets rows 0, 2, 3 summed; row 1 none
    expectAllClose(grads.t!.data, [3, 4, 0, 0, 1 + 5 + 7, 2 + 6 + 8], 0);
  });
});
