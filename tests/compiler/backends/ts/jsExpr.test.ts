// Kernel IR → JS text: every expression parses and computes what it says,
// negative literals under a prefix operator included.
import { describe, expect, it } from "vitest";
import { exprJs } from "../../../../compiler/backends/ts/jsExpr.js";
import { bin, num, un } from "../../../../compiler/kernel/kir.js";
import type { Expr } from "../../../../compiler/kernel/kir.js";

const run = (e: Expr): number => new Function(`return ${exprJs(e, () => ({ array: "A", offset: 0 }))};`)() as number;

describe("exprJs", () => {
  it("negates and exponentiates negative literals and signed zeros", () => {
    expect(run(un("neg", num(-1)))).toBe(1);
    expect(run(un("neg", num(-Infinity)))).toBe(Infinity);
    expect(Object.is(run(un("neg", num(-0))), 0)).toBe(true);
    expect(run(un("sigmoid", num(-2)))).toBeCloseTo(1 / (1 + Math.exp(2)), 15);
    expect(run(bin("-", num(3), num(-2)))).toBe(5);
    expect(run(bin("*", num(-2), num(-3)))).toBe(6);
  });

  it("keeps NaN and infinities as literals", () => {
    expect(run(num(NaN))).toBeNaN();
    expect(run(bin("+", num(Infinity), num(1)))).toBe(Infinity);
  });
});
