// The finite-difference core that checkGrads and `gradc check` share, on
// functions whose derivatives are known by hand.
import { describe, expect, it } from "vitest";
import { checkDerivative, maxAbs, quotientNoise, relativeError, reportTable } from "../../runtime/finiteDiff.js";

describe("checkDerivative", () => {
  it("matches a smooth derivative to rounding, and measures a wrong one", () => {
    // L(t) = (3 + t)³: L'(0) = 27; Richardson cancels the h² term of the central difference exactly here
    const cube = (t: number) => (3 + t) ** 3;
    const right = checkDerivative(27, cube, { h: 1e-3, loss0: 27, scale: 0 });
    expect(right.numeric).toBeCloseTo(27, 9);
    expect(right.error).toBeLessThan(1e-9);
    expect(right.kink).toBe(false);
    const wrong = checkDerivative(27.27, cube, { h: 1e-3, loss0: 27, scale: 0 });
    // |27.27 − 27| / 27.27, less at most the quotient's noise
    expect(wrong.error).toBeCloseTo(0.27 / 27.27, 8);
  });

  it("accepts a value between the one-sided derivatives only when asked to look for a kink", () => {
    // L(t) = |t| + 0.5·t: one-sided derivatives −0.5 and 1.5 at 0; the symbolic 0.5 (relu-like subgradient) lies between
    const kinked = (t: number) => Math.abs(t) + 0.5 * t;
    const plain = checkDerivative(1, kinked, { h: 1e-3, loss0: 0, scale: 0 });
    // the central difference sees only the smooth part: 0.5, against the symbolic 1
    expect(plain.numeric).toBeCloseTo(0.5, 12);
    expect(plain.error).toBeCloseTo(0.5, 9);
    const kink = checkDerivative(1, kinked, { h: 1e-3, loss0: 0, scale: 0, kinkTolerance: 1e-6 });
    expect(kink).toEqual({ numeric: expect.any(Number), error: 0, kink: true });
    // outside the one-sided derivatives it still fails
    const outside = checkDerivative(2, kinked, { h: 1e-3, loss0: 0, scale: 0, kinkTolerance: 1e-6 });
    expect(outside.kink).toBe(false);
    expect(outside.error).toBeGreaterThan(0.5);
  });

  it("does not fail zero gradients on rounding noise, and NaN stays a failure", () => {
    expect(relativeError(0, 1e-20, quotientNoise(1e-3, 1), 0)).toBe(0);
    expect(quotientNoise(1e-3, 2, -4)).toBeCloseTo((32 * 2 ** -52 * 4) / 1e-3, 25);
    expect(relativeError(1, NaN, 0, 0)).toBeNaN();
    expect(relativeError(1e-9, 2e-9, 0, 1e-4)).toBeCloseTo(1e-9 / 1e-4, 15);
    expect(maxAbs([1, -3, 2])).toBe(3);
    expect(maxAbs([])).toBe(0);
  });

  it("lays report rows out in padded columns", () => {
    expect(reportTable([["param", "error"], ["W1", "1.00e-7"]])).toEqual(["  param  error", "  W1     1.00e-7"]);
  });
});
