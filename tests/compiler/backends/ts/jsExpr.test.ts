// Kernel IR → JS text: every expression parses and computes what it says,
// negative literals under a prefix operator included; the bfloat16
// conversions of arena H against their definition.
import { describe, expect, it } from "vitest";
import { bf16Helpers, exprJs } from "../../../../compiler/backends/ts/jsExpr.js";
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

/** bfloat16 by its definition: the f32 value's two neighbours with 8 significant bits, the nearer one, ties to the even one. */
function bf16Reference(x: number): number {
  const f = Math.fround(x);
  if (Number.isNaN(f) || !Number.isFinite(f) || f === 0) return f;
  const view = new DataView(new ArrayBuffer(4));
  view.setFloat32(0, f);
  const lowBits = view.getUint32(0) & 0xffff0000;
  const at = (bits: number): number => (view.setUint32(0, bits >>> 0), view.getFloat32(0));
  const down = at(lowBits);
  // the next bfloat16 away from zero; past the largest it is infinity, at the distance 2^128 would be (IEEE overflow)
  const up = at(lowBits + 0x10000);
  const dDown = Math.abs(f - down);
  const dUp = Number.isFinite(up) ? Math.abs(up - f) : 2 ** 128 - Math.abs(f);
  if (dDown !== dUp) return dDown < dUp ? down : up;
  return ((lowBits >>> 16) & 1) === 0 ? down : up;
}

describe("bfloat16 conversions (arena H)", () => {
  const helpers = new Function(`${bf16Helpers(false)}\nreturn { bf16Bits, bf16Value, bf16Round };`)() as {
    bf16Bits: (x: number) => number;
    bf16Value: (h: number) => number;
    bf16Round: (x: number) => number;
  };
  const roundJs = (x: number): number => new Function("bf16Round", `return ${exprJs(un("bf16", num(x)), () => ({ array: "A", offset: 0 }))};`)(helpers.bf16Round) as number;

  it("round to the nearest bfloat16, ties to even, as the definition says", () => {
    const cases = [
      1, -1, 0.1, 1 / 3, Math.PI, 1e-3, 65504, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20, -(1 + 2 ** -8),
      2 ** -130, 2 ** -126 * 1.5, 3.3895313892515355e38, 3.4e38, -3.4e38, 1e-45,
    ];
    for (let i = 0; i < 2000; i++) cases.push(Math.sinh((i - 1000) / 11) * (1 + i / 7919));
    for (const x of cases) {
      expect(helpers.bf16Round(x), `bf16(${x})`).toBe(bf16Reference(x));
      expect(roundJs(x)).toBe(bf16Reference(x));
    }
    // exact ties: 1 + 2^-8 is halfway between 1 and 1 + 2^-7, and goes to 1 (even); 1 + 3·2^-8 goes up to 1 + 2^-6
    expect(helpers.bf16Round(1 + 2 ** -8)).toBe(1);
    expect(helpers.bf16Round(1 + 3 * 2 ** -8)).toBe(1 + 2 ** -6);
    // past the largest bfloat16 (≈ 3.39e38) by more than half a step: infinity
    expect(helpers.bf16Round(3.4e38)).toBe(Infinity);
  });

  it("keep signed zeros, infinities and NaN; widening is exact", () => {
    expect(Object.is(helpers.bf16Round(-0), -0)).toBe(true);
    expect(helpers.bf16Round(Infinity)).toBe(Infinity);
    expect(helpers.bf16Round(-Infinity)).toBe(-Infinity);
    expect(helpers.bf16Round(NaN)).toBeNaN();
    expect(helpers.bf16Bits(1)).toBe(0x3f80);
    expect(helpers.bf16Bits(-2)).toBe(0xc000);
    for (let h = 0; h < 0x10000; h += 37) {
      const v = helpers.bf16Value(h);
      if (!Number.isNaN(v)) expect(helpers.bf16Bits(v)).toBe(h);
    }
  });
});
