// The WebAssembly SIMD exp, log, tanh, sigmoid and gelu against the
// interpreter's float64 definition of the same ops: the error in ulps stays
// within what SIMD_MATH_ERROR documents over a sweep of all f32 bit patterns
// and a dense sweep of the range where the values change, special values
// come out as documented, with and without relaxed-SIMD FMA.
import { describe, expect, it } from "vitest";
import { SIMD_MATH_ERROR, SIMD_MATH_FNS, simdMathModule } from "../../../../compiler/backends/wasm/simdMath.js";
import type { SimdMathFn } from "../../../../compiler/backends/wasm/simdMath.js";
import { pagesFor } from "../../../../compiler/backends/wasm/wasm.js";
import { relaxedSimd } from "../../../../runtime/wasmFeatures.js";
import { evalOutputs } from "../../../helpers.js";

/** The inputs: every 4099th bit pattern, a dense sweep of [-12, 12], and edges (a multiple of 4 in all). */
function inputs(): Float32Array {
  const xs: number[] = [];
  const bits = new Uint32Array(1);
  const asFloat = new Float32Array(bits.buffer);
  for (let b = 0; b < 2 ** 32; b += 4099) {
    bits[0] = b;
    xs.push(asFloat[0]!);
  }
  for (let i = 0; i <= 240_000; i++) xs.push(-12 + i / 10_000);
  const edges = [
    0, -0, Infinity, -Infinity, NaN, 2 ** -149, -(2 ** -149), 2 ** -126, 3.4028234663852886e38, -3.4028234663852886e38,
    88.72283, 88.72284, 88.8, 89, -87.33654, -87.34, -103.2, -103.97, -104, -105, 0.625, 0.62499994, -0.625, 9, -9, 1e-8, -1e-8,
  ];
  xs.push(...edges);
  while (xs.length % 4 !== 0) xs.push(1);
  return Float32Array.from(xs);
}

/** The interpreter's float64 value of `fn` at each x (a graph of the one op, as the DSL builds it). */
function reference(fn: SimdMathFn, xs: Float32Array): Float64Array {
  const out = evalOutputs((g) => ({ y: g.input("x", [xs.length], "f64")[fn]() }), { x: Float64Array.from(xs) });
  return Float64Array.from(out["y"]!.data);
}

/** Units in the last place of `y` rounded to f32 (2^-149 below the normals). */
function ulp(y: number): number {
  const e = (new Uint32Array(Float32Array.of(Math.abs(y)).buffer)[0]! >>> 23) & 0xff;
  return e === 0 ? 2 ** -149 : 2 ** (e - 150);
}

/** Runs `fn` of the module over `xs`. */
function run(fn: SimdMathFn, xs: Float32Array, fma: boolean): Float32Array {
  const pages = pagesFor(4 * xs.length);
  const memory = new WebAssembly.Memory({ initial: pages });
  const bytes = simdMathModule([fn], pages, { fma });
  expect(WebAssembly.validate(bytes)).toBe(true);
  const map = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports[fn] as (from: number, to: number) => void;
  const W = new Float32Array(memory.buffer, 0, xs.length);
  W.set(xs);
  map(0, 4 * xs.length);
  return Float32Array.from(W);
}

const xs = inputs();
const fmaModes = relaxedSimd() ? [false, true] : [false];

describe.each(fmaModes)("SIMD math (fma %s)", (fma) => {
  it.each(SIMD_MATH_FNS)("%s: within its documented ulps of the interpreter, specials as documented", (fn) => {
    const want = reference(fn, xs);
    const got = run(fn, xs, fma);
    const doc = SIMD_MATH_ERROR[fn];
    let worst = 0;
    let worstAt = 0;
    let worstAbs = 0;
    for (let i = 0; i < xs.length; i++) {
      const x = xs[i]!;
      const r = want[i]!;
      const rf = Math.fround(r);
      const y = got[i]!;
      if (Number.isNaN(r) || !Number.isFinite(rf)) {
        // NaN and ±inf (after rounding to f32) must come out exactly
        if (!Object.is(y, rf)) expect.fail(`${fn}(${x}) = ${y}, want ${rf}`);
        continue;
      }
      if (x < doc.from) {
        worstAbs = Math.max(worstAbs, Math.abs(y - r));
        continue;
      }
      const e = Math.abs(y - r) / ulp(r);
      if (!(e <= worst)) [worst, worstAt] = [e, x];
    }
    expect(worst, `${fn}: worst ${worst.toFixed(2)} ulps at x = ${worstAt}`).toBeLessThanOrEqual(doc.ulps);
    expect(worstAbs, `${fn}: absolute error below x = ${doc.from}`).toBeLessThanOrEqual(doc.absBelow);
  }, 180_000);
});

describe("SIMD math special values", () => {
  const cases: readonly [SimdMathFn, number, number][] = [
    ["exp", -Infinity, 0], ["exp", Infinity, Infinity], ["exp", 89, Infinity], ["exp", -104, 0], ["exp", -0, 1],
    ["log", 0, -Infinity], ["log", -0, -Infinity], ["log", -1, NaN], ["log", -Infinity, NaN], ["log", Infinity, Infinity], ["log", 1, 0],
    ["tanh", Infinity, 1], ["tanh", -Infinity, -1], ["tanh", -0, -0], ["tanh", 0, 0],
    ["sigmoid", Infinity, 1], ["sigmoid", -Infinity, 0], ["sigmoid", 0, 0.5],
    ["gelu", Infinity, Infinity], ["gelu", -Infinity, NaN], ["gelu", 0, 0],
  ];
  it.each(fmaModes)("exact at ±inf, ±0 and outside the domain, NaN everywhere gives NaN (fma %s)", (fma) => {
    for (const fn of SIMD_MATH_FNS) {
      const rows = cases.filter((c) => c[0] === fn);
      const got = run(fn, Float32Array.from([...rows.map((c) => c[1]), NaN, -NaN, NaN, NaN].slice(0, Math.ceil((rows.length + 1) / 4) * 4)), fma);
      rows.forEach(([, x, want], i) => expect(Object.is(got[i], want) || (got[i] === 0 && want === 0 && fn !== "tanh"), `${fn}(${x}) = ${got[i]}`).toBe(true));
      for (let i = rows.length; i < got.length; i++) expect(got[i], `${fn}(NaN)`).toBeNaN();
    }
  });
});
