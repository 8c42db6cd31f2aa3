// exp, log, tanh, sigmoid and gelu on four f32 lanes at once, emitted as
// WebAssembly SIMD instructions: range reduction plus polynomial (Cephes'
// single-precision minimax coefficients), branch-free, special values chosen
// with bitselect. Each function's measured error against the float64
// reference is in SIMD_MATH_ERROR and checked by tests/compiler/backends/wasm/simdMath.test.ts.
//
// Code here is instruction bytes: an expression leaves one v128 on the stack.
// Intermediate values live in v128 locals handed out by a `Locals`.
import { END, I32, V128, get, i32, section, set, simd, str, uleb, v128Load, v128Store, vec } from "./wasm.js";

/** The math functions, named as the graph's ops are. */
export type SimdMathFn = "exp" | "log" | "tanh" | "sigmoid" | "gelu";
export const SIMD_MATH_FNS: readonly SimdMathFn[] = ["exp", "log", "tanh", "sigmoid", "gelu"];

/** How the polynomials multiply and add. */
export interface SimdMathOptions {
  /** f32x4.relaxed_madd (one rounding where the CPU has FMA) instead of mul + add: see runtime/wasmFeatures.ts. */
  readonly fma: boolean;
}

/**
 * Each function's error bound against the float64 reference of the
 * interpreter (rounded to f32 only to size the ulp): at most `ulps` units in
 * the last place of the reference (2^-149 for subnormal results) for x ≥
 * `from`, and at most `absBelow` in absolute terms below it. Checked over
 * every 4099th f32 bit pattern plus a dense sweep of [-12, 12], with and
 * without FMA; the worst measured over every 61st bit pattern is `measured`.
 */
export const SIMD_MATH_ERROR: Readonly<Record<SimdMathFn, {
  readonly ulps: number;
  readonly measured: number;
  readonly from: number;
  readonly absBelow: number;
  readonly over: string;
  readonly special: string;
}>> = {
  exp: {
    ulps: 1.5,
    measured: 1.0,
    from: -Infinity,
    absBelow: 0,
    over: "every finite x: results down to the subnormals are scaled in two steps (2^(n>>1)·2^(n-(n>>1))), so they keep the bound",
    special: "x > 88.7228 gives +inf (overflow), x < -103.97 gives 0 (underflow), -inf → 0, +inf → +inf, NaN → NaN",
  },
  log: {
    ulps: 1,
    measured: 0.81,
    from: -Infinity,
    absBelow: 0,
    over: "every positive finite x, subnormals included (scaled by 2^23 first)",
    special: "±0 → -inf, x < 0 → NaN, +inf → +inf, NaN → NaN",
  },
  tanh: {
    ulps: 1.5,
    measured: 1.3,
    from: -Infinity,
    absBelow: 0,
    over: "every finite x: an odd polynomial for |x| < 0.625, 1 - 2/(e^2|x| + 1) beyond, with x's sign",
    special: "±inf → ±1, ±0 → ±0, NaN → NaN",
  },
  sigmoid: {
    ulps: 3,
    measured: 2.67,
    from: -Infinity,
    absBelow: 0,
    over: "every finite x: t = e^-|x|, 1/(1 + t) for x ≥ 0 and t/(1 + t) below, so no cancellation and no overflow; tiny results reach the subnormals",
    special: "+inf → 1, -inf → 0, NaN → NaN",
  },
  gelu: {
    ulps: 3.5,
    measured: 3.2,
    from: -1,
    absBelow: 2 ** -24,
    over:
      "x ≥ -1. Below, gelu(x) = x·σ(u) with u ≈ 1.6x + 0.07x³, and rounding u to f32 alone moves the result by |u|·2^-24 relatively: " +
      "about 14 ulps at x = -3, 30 at -5, 190 at -10, while |gelu| falls below 1e-20; the absolute error stays under 2^-24 (measured 4.4e-8, near x = -1)",
    special: "+inf → +inf, -inf → NaN (as the interpreter's 0.5x(1 + tanh(…)) gives), NaN → NaN",
  },
};

/** Hands out v128 locals from `first` on. */
export class Locals {
  private used = 0;
  constructor(readonly first: number) {}
  take(): number {
    return this.first + this.used++;
  }
  /** How many were handed out (to declare them). */
  get count(): number {
    return this.used;
  }
}

type Code = readonly number[];

// opcodes after the 0xfd prefix
const OP = {
  v128Const: 0x0c, and: 0x4e, andnot: 0x4f, or: 0x50, bitselect: 0x52,
  f32Eq: 0x41, f32Lt: 0x43, f32Ge: 0x46,
  nearest: 0x6a,
  i32Shl: 0xab, i32ShrS: 0xac, i32ShrU: 0xad, i32Add: 0xae, i32Sub: 0xb1,
  abs: 0xe0, neg: 0xe1, add: 0xe4, sub: 0xe5, mul: 0xe6, div: 0xe7, min: 0xe8, max: 0xe9,
  truncSat: 0xf8, convert: 0xfa, relaxedMadd: 0x105,
} as const;

const op = (name: keyof typeof OP, ...args: Code[]): number[] => [...args.flat(), ...simd(OP[name])];
/** An f32x4 constant, every lane `v` rounded to f32. */
const f = (v: number): number[] => [...simd(OP.v128Const), ...Array.from({ length: 4 }, () => [...new Uint8Array(Float32Array.of(v).buffer)]).flat()];
/** An i32x4 constant. */
const ints = (v: number): number[] => [...simd(OP.v128Const), ...Array.from({ length: 4 }, () => [...new Uint8Array(Int32Array.of(v).buffer)]).flat()];
const tee = (l: number): number[] => [0x22, ...uleb(l)];

/** An emitter for one expression tree over v128 locals. */
class Emit {
  constructor(readonly locals: Locals, readonly options: SimdMathOptions) {}
  /** Computes `value` into a fresh local; returns code that stores it and the local. */
  keep(value: Code): { code: number[]; at: Code } {
    const l = this.locals.take();
    return { code: [...value, ...set(l)], at: get(l) };
  }
  /** a·b + c */
  madd(a: Code, b: Code, c: Code): number[] {
    return this.options.fma ? op("relaxedMadd", a, b, c) : op("add", op("mul", a, b), c);
  }
  /** c[0]·x^(n-1) + … + c[n-1] by Horner's rule. */
  poly(x: Code, c: readonly number[]): number[] {
    let p: number[] = f(c[0]!);
    for (const k of c.slice(1)) p = this.madd(p, x, f(k));
    return p;
  }
}

const LOG2E = 1.4426950408889634;
// ln 2 = LN2_HI + LN2_LO, LN2_HI with 9 significant bits so n·LN2_HI is exact
const LN2_HI = 0.693359375;
const LN2_LO = -2.12194440e-4;
const EXP_P = [1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1];
const LOG_P = [
  7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1, 2.0000714765e-1,
  -2.4999993993e-1, 3.3333331174e-1,
];
const TANH_P = [-5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2, 1.33314422036e-1, -3.33332819422e-1];
// gelu(x) = 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))) = x·σ(x(K1 + K2x²)), as 1 + tanh(u) = 2σ(2u)
const GELU_K1 = 2 * Math.sqrt(2 / Math.PI);
const GELU_K2 = GELU_K1 * 0.044715;

/**
 * e^x = 2^n·e^r, n = round(x·log2 e), r = x - n·ln 2 in [-ln2/2, ln2/2],
 * e^r = 1 + r + r²·P(r); 2^n is applied as 2^(n>>1)·2^(n-(n>>1)) so both
 * factors are normal floats even where the result is subnormal or overflows.
 */
function exp(e: Emit, x: Code): number[] {
  const xc = e.keep(op("max", op("min", x, f(88.8)), f(-104))); // min/max keep NaN
  const n = e.keep(op("nearest", op("mul", xc.at, f(LOG2E))));
  const r = e.keep(e.madd(n.at, f(-LN2_LO), e.madd(n.at, f(-LN2_HI), xc.at)));
  const y = op("add", e.madd(op("mul", e.poly(r.at, EXP_P), r.at), r.at, r.at), f(1));
  const ni = e.keep(op("truncSat", n.at));
  const half = e.keep(op("i32ShrS", ni.at, i32(1)));
  const pow2 = (k: Code) => op("i32Shl", op("i32Add", k, ints(127)), i32(23));
  const scaled = op("mul", op("mul", y, pow2(half.at)), pow2(op("i32Sub", ni.at, half.at)));
  return [...xc.code, ...n.code, ...r.code, ...ni.code, ...half.code, ...scaled];
}

/**
 * log x = e·ln 2 + log m with x = m·2^e, m in [√½, √2): log m = f - f²/2 +
 * f³·P(f), f = m - 1. Subnormal x is first scaled by 2^23.
 */
function log(e: Emit, x: Code): number[] {
  const xv = e.keep(x);
  const tiny = e.keep(op("f32Lt", xv.at, f(2 ** -126)));
  const xs = e.keep(op("bitselect", op("mul", xv.at, f(2 ** 23)), xv.at, tiny.at));
  // the exponent, unbiased so that m = mantissa·2^-1 lies in [0.5, 1)
  const ex = op("i32Sub", op("i32Sub", op("i32ShrU", xs.at, i32(23)), ints(126)), op("and", tiny.at, ints(23)));
  const m0 = e.keep(op("or", op("and", xs.at, ints(0x007fffff)), ints(0x3f000000)));
  const low = e.keep(op("f32Lt", m0.at, f(Math.SQRT1_2)));
  // m < √½: e -= 1 and m = 2m - 1; else m = m - 1 (the mask is -1 where true)
  const fe = e.keep(op("convert", op("i32Add", ex, low.at)));
  const m = e.keep(op("add", op("sub", m0.at, f(1)), op("and", m0.at, low.at)));
  const z = e.keep(op("mul", m.at, m.at));
  let y = op("mul", op("mul", m.at, z.at), e.poly(m.at, LOG_P));
  y = e.madd(fe.at, f(LN2_LO), y);
  y = e.madd(z.at, f(-0.5), y);
  const r = e.madd(fe.at, f(LN2_HI), op("add", m.at, y));
  // +inf stays +inf, ±0 gives -inf, below 0 or NaN gives NaN
  const inf = op("bitselect", f(Infinity), r, op("f32Eq", xv.at, f(Infinity)));
  const zero = op("bitselect", f(-Infinity), inf, op("f32Eq", xv.at, f(0)));
  const nan = op("bitselect", zero, f(NaN), op("f32Ge", xv.at, f(0)));
  return [...xv.code, ...tiny.code, ...xs.code, ...m0.code, ...low.code, ...fe.code, ...m.code, ...z.code, ...nan];
}

/** tanh x = x + x³·P(x²) for |x| < 0.625, else sign(x)·(1 - 2/(e^2|x| + 1)). */
function tanh(e: Emit, x: Code): number[] {
  const xv = e.keep(x);
  const a = e.keep(op("abs", xv.at));
  const x2 = e.keep(op("mul", xv.at, xv.at));
  const small = e.madd(op("mul", e.poly(x2.at, TANH_P), x2.at), xv.at, xv.at);
  const ex = e.keep(exp(e, op("add", a.at, a.at)));
  const large = op("sub", f(1), op("div", f(2), op("add", ex.at, f(1))));
  // x's sign on both branches (the polynomial alone would turn -0 into +0)
  const value = op("bitselect", small, large, op("f32Lt", a.at, f(0.625)));
  return [...xv.code, ...a.code, ...x2.code, ...ex.code, ...op("or", value, op("and", xv.at, ints(-0x80000000)))];
}

/** σ(x) with t = e^-|x|: 1/(1 + t) for x ≥ 0, t/(1 + t) otherwise. */
function sigmoid(e: Emit, x: Code): number[] {
  const xv = e.keep(x);
  const t = e.keep(exp(e, op("neg", op("abs", xv.at))));
  const s = e.keep(op("div", f(1), op("add", t.at, f(1))));
  return [...xv.code, ...t.code, ...s.code, ...op("bitselect", s.at, op("mul", t.at, s.at), op("f32Ge", xv.at, f(0)))];
}

/** gelu (tanh form, as the graph's gelu) = x·σ(x(K1 + K2x²)). */
function gelu(e: Emit, x: Code): number[] {
  const xv = e.keep(x);
  const u = op("mul", xv.at, e.madd(op("mul", xv.at, xv.at), f(GELU_K2), f(GELU_K1)));
  return [...xv.code, ...op("mul", xv.at, sigmoid(e, u))];
}

const FNS: { readonly [K in SimdMathFn]: (e: Emit, x: Code) => number[] } = { exp, log, tanh, sigmoid, gelu };

/**
 * Code computing `fn` of the f32x4 that `x` leaves on the stack; it leaves the
 * result there. Takes its v128 locals from `locals` (declare `locals.count`).
 */
export function simdMath(fn: SimdMathFn, x: Code, locals: Locals, options: SimdMathOptions): number[] {
  return FNS[fn](new Emit(locals, options), x);
}

/**
 * A module importing `env.memory` and exporting, per function, `fn(from, to)`
 * that maps the f32s at byte offsets [from, to) in place, four at a time
 * (to - from a multiple of 16). Tests and benchmarks use it; kernels inline
 * `simdMath` into their own loops.
 */
export function simdMathModule(fns: readonly SimdMathFn[], pages: number, options: SimdMathOptions): Uint8Array<ArrayBuffer> {
  const bodies = fns.map((fn) => {
    // params: 0 from, 1 to; v128 locals from 2
    const locals = new Locals(2);
    const value = simdMath(fn, [...get(0), ...v128Load(0)], locals, options);
    const loopBody = [
      ...get(0), ...value, ...v128Store(0),
      ...get(0), ...i32(16), 0x6a, ...tee(0), ...get(1), 0x49, 0x0d, 0, // from += 16; br_if from < to (unsigned)
    ];
    const code = [...get(0), ...get(1), 0x49, 0x04, 0x40, 0x03, 0x40, ...loopBody, END, END, END];
    const body = [...vec([[...uleb(locals.count), V128]]), ...code];
    return [...uleb(body.length), ...body];
  });
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([[0x60, 0x02, I32, I32, 0x00]])),
    ...section(2, vec([[...str("env"), ...str("memory"), 0x02, 0x00, ...uleb(pages)]])),
    ...section(3, vec(fns.map(() => [0x00]))),
    ...section(7, vec(fns.map((fn, i) => [...str(fn), 0x00, ...uleb(i)]))),
    ...section(10, vec(bodies)),
  ]);
}
