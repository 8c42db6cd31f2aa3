// The kernel IR verifier: accepts the loop nests ops and fusion build, and
// rejects each kind of mistake it claims to catch, naming it.
import { describe, expect, it } from "vitest";
import type { Stmt } from "../../../compiler/kernel/kir.js";
import { addE, bin, formRef, if_, let_, load, loop, mulE, num, parallel, reduce, ref, scatterAdd, set, store, un } from "../../../compiler/kernel/kir.js";
import { KirError, kirProblems, verifyKernel } from "../../../compiler/kernel/verify.js";

const sizes = (entries: Record<string, number>) => new Map(Object.entries(entries));

/** out[i] = Σ_j in0[i·4 + j] over a 3×4 input. */
const rowSums: Stmt[] = [
  parallel("i", 3, [let_("s", 0), reduce("j", 4, [set("s", bin("+", ref("s"), load("in0", addE(mulE(ref("i"), 4), ref("j")))))]), store("out", ref("i"), ref("s"))]),
];

describe("verifyKernel", () => {
  it("accepts a marked reduction within bounds", () => {
    expect(kirProblems(rowSums, sizes({ out: 3, in0: 12 }))).toEqual([]);
  });

  it("reports indexes outside their buffer, with the range it proved", () => {
    expect(kirProblems(rowSums, sizes({ out: 3, in0: 11 }))).toEqual(["load in0[i * 4 + j]: index in [0, 11], outside in0[0..10]"]);
    expect(() => verifyKernel("rows", rowSums, sizes({ out: 2, in0: 12 }))).toThrow(/kernel rows: 1 problem:\n {2}store out\[i\]: index in \[0, 2\], outside out\[0\.\.1\]/);
  });

  it("reports a reduction in a loop marked parallel", () => {
    const wrong: Stmt[] = [parallel("i", 3, [let_("s", 0), parallel("j", 4, [set("s", bin("+", ref("s"), load("in0", addE(mulE(ref("i"), 4), ref("j")))))]), store("out", ref("i"), ref("s"))])];
    expect(kirProblems(wrong, sizes({ out: 3, in0: 12 }))).toEqual(["s is declared outside parallel loop j and set inside it: a reduction (mark j reduce)"]);
  });

  it("reports parallel iterations writing one element, and accepts them marked reduce", () => {
    const acc = (mark: typeof parallel) => [mark("p", 4, [store("out", num(0), load("in0", ref("p")), true)])];
    expect(kirProblems(acc(parallel), sizes({ out: 1, in0: 4 }))).toEqual(["accumulating store out[0]: every iteration of parallel loop p writes the same element"]);
    expect(kirProblems(acc(reduce), sizes({ out: 1, in0: 4 }))).toEqual([]);
  });

  it("reports unbound variables, unknown buffers and placeholders left behind", () => {
    const bad: Stmt[] = [store("out", ref("k"), load("nope", 0)), store("out", formRef(2), num(1))];
    expect(kirProblems(bad, sizes({ out: 4 })).sort()).toEqual([
      "form placeholder form2 left in a finished kernel",
      "k is used but not bound",
      "load nope[0]: no buffer nope in this kernel",
      "store out[form2]: the index is data-dependent and not guarded by an if on its range",
      "store out[k]: the index is data-dependent and not guarded by an if on its range",
    ]);
  });

  it("needs a data-dependent index guarded by an if on its range", () => {
    const scatter = (guarded: boolean): Stmt[] => {
      const add = scatterAdd("out", ref("r"), load("in0", ref("p")));
      return [parallel("p", 6, [let_("r", un("toInt", load("in1", ref("p")))), guarded ? if_(bin("&&", bin(">=", ref("r"), 0), bin("<", ref("r"), 5)), [add]) : add])];
    };
    expect(kirProblems(scatter(true), sizes({ out: 5, in0: 6, in1: 6 }))).toEqual([]);
    expect(kirProblems(scatter(false), sizes({ out: 5, in0: 6, in1: 6 }))).toEqual([
      "scatter-add out[r]: index in [-2147483648, 2147483647], outside out[0..4]",
    ]);
  });

  it("follows a pointer advanced by a constant per iteration", () => {
    const walk = (n: number): Stmt[] => [let_("q", 0), reduce("p", n, [let_("a", load("in0", ref("q"))), set("q", bin("+", ref("q"), num(3))), store("out", 0, ref("a"), true)])];
    expect(kirProblems(walk(4), sizes({ out: 1, in0: 10 }))).toEqual([]);
    expect(kirProblems(walk(5), sizes({ out: 1, in0: 10 }))).toEqual(["load in0[q]: index in [0, 12], outside in0[0..9]"]);
  });

  it("throws a KirError listing every problem", () => {
    const err = (() => {
      try {
        verifyKernel("k", [loop("i", 2, [store("out", ref("i"), ref("x"))])], sizes({ out: 1 }));
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(KirError);
    expect((err as KirError).problems).toEqual(["store out[i]: index in [0, 1], outside out[0..0]", "x is used but not bound"]);
  });
});
