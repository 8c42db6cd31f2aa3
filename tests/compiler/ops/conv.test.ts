// Convolution and pooling primitives: TensorFlow's sizes and padding split,
// values against naive loops written here, lowered kernels against eval,
// gradients and second derivatives against finite differences, shape errors.
import { describe, expect, it } from "vitest";
import type { GraphBuilder } from "../../../compiler/dsl/graph.js";
import type { Tensor } from "../../../compiler/ir/node.js";
import { windowAxis } from "../../../compiler/ops/conv.js";
import type { Padding, Pair } from "../../../compiler/ir/kinds.js";
import { errorMessage, evalOutputs, expectAllClose, randomArray } from "../../helpers.js";
import { expectGradsMatchFD, expectHvpMatchesFD, expectLoweringMatches } from "./opChecks.js";

type Shape4 = [number, number, number, number];
const HERE = /\(at tests\/compiler\/ops\/conv\.test\.ts:\d+\)$/;
const sizeOf = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);
const iota = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => i + from);
const weights = (g: GraphBuilder, shape: number[], seed: number): Tensor => g.const(randomArray(shape, seed), shape);

// ---- naive references, written from TensorFlow's documented definitions ----

/** Output size and top/left padding: valid ⌈(n − k + 1)/s⌉; same ⌈n/s⌉ with ⌊total/2⌋ before. */
function tfAxis(n: number, k: number, s: number, padding: Padding): { out: number; before: number } {
  if (padding === "valid") return { out: Math.ceil((n - k + 1) / s), before: 0 };
  const out = Math.ceil(n / s);
  return { out, before: Math.floor(Math.max((out - 1) * s + k - n, 0) / 2) };
}

/** One window op's configuration: image, window, strides, padding (and output channels for convs). */
interface Cfg {
  readonly x: Shape4;
  readonly k: Pair;
  readonly s: Pair;
  readonly pad: Padding;
  readonly cout: number;
}

/** Calls `visit` for each (image, window, tap) with the input cell the tap reads, or -1 when it is padding. */
function eachTap(c: Cfg, visit: (n: number, oy: number, ox: number, ky: number, kx: number, cell: number) => void): Shape4 {
  const [N, H, W] = c.x;
  const r = tfAxis(H, c.k[0], c.s[0], c.pad);
  const q = tfAxis(W, c.k[1], c.s[1], c.pad);
  for (let n = 0; n < N; n++) {
    for (let oy = 0; oy < r.out; oy++) {
      for (let ox = 0; ox < q.out; ox++) {
        for (let ky = 0; ky < c.k[0]; ky++) {
          for (let kx = 0; kx < c.k[1]; kx++) {
            const y = oy * c.s[0] + ky - r.before;
            const x = ox * c.s[1] + kx - q.before;
            visit(n, oy, ox, ky, kx, y >= 0 && y < H && x >= 0 && x < W ? (n * H + y) * W + x : -1);
          }
        }
      }
    }
  }
  return [N, r.out, q.out, c.cout];
}

const outOf = (c: Cfg): Shape4 => eachTap(c, () => {});

/** y = conv2d(x, f), dx = backpropInput(dy, f), df = backpropFilter(x, dy), all by direct sums. */
function naiveConv(c: Cfg, x: Float64Array, f: Float64Array, dy: Float64Array) {
  const ci = c.x[3];
  const o = outOf(c);
  const y = new Float64Array(sizeOf(o));
  const dx = new Float64Array(sizeOf(c.x));
  const df = new Float64Array(c.k[0] * c.k[1] * ci * c.cout);
  eachTap(c, (n, oy, ox, ky, kx, cell) => {
    if (cell < 0) return; // zero padding adds nothing
    for (let i = 0; i < ci; i++) {
      for (let j = 0; j < c.cout; j++) {
        const yi = ((n * o[1] + oy) * o[2] + ox) * c.cout + j;
        const fi = ((ky * c.k[1] + kx) * ci + i) * c.cout + j;
        y[yi] += x[cell * ci + i]! * f[fi]!;
        dx[cell * ci + i] += dy[yi]! * f[fi]!;
        df[fi] += x[cell * ci + i]! * dy[yi]!;
      }
    }
  });
  return { y, dx, df };
}

/** max and mean pools (padding ignored) and their gradients for a given dy. */
function naivePool(c: Cfg, x: Float64Array, dy: Float64Array) {
  const ch = c.x[3];
  const o = outOf(c);
  const cells = new Map<number, number[]>();
  eachTap(c, (n, oy, ox, _ky, _kx, cell) => {
    const w = (n * o[1] + oy) * o[2] + ox;
    if (!cells.has(w)) cells.set(w, []);
    if (cell >= 0) cells.get(w)!.push(cell);
  });
  const max = new Float64Array(sizeOf(o));
  const avg = new Float64Array(sizeOf(o));
  const dmax = new Float64Array(sizeOf(c.x));
  const davg = new Float64Array(sizeOf(c.x));
  for (const [w, list] of cells) {
    for (let k = 0; k < ch; k++) {
      const vals = list.map((cell) => x[cell * ch + k]!);
      const m = Math.max(...vals);
      max[w * ch + k] = m;
      avg[w * ch + k] = vals.reduce((a, b) => a + b, 0) / vals.length;
      // the first maximum in row-major order takes dy
      dmax[list[vals.indexOf(m)]! * ch + k] += dy[w * ch + k]!;
      for (const cell of list) davg[cell * ch + k] += dy[w * ch + k]! / vals.length;
    }
  }
  return { max, avg, dmax, davg };
}

const CONVS: readonly Cfg[] = [
  { x: [1, 5, 5, 2], k: [3, 3], s: [1, 1], pad: "same", cout: 3 },
  { x: [2, 6, 7, 1], k: [2, 3], s: [2, 2], pad: "same", cout: 2 },
  { x: [1, 7, 6, 2], k: [3, 2], s: [2, 3], pad: "valid", cout: 2 },
  { x: [2, 4, 4, 3], k: [1, 1], s: [1, 1], pad: "valid", cout: 2 },
  { x: [1, 5, 6, 1], k: [4, 4], s: [3, 2], pad: "same", cout: 1 },
  { x: [1, 6, 6, 2], k: [2, 2], s: [2, 2], pad: "same", cout: 2 },
];
const POOLS: readonly Cfg[] = [
  { x: [1, 5, 5, 2], k: [2, 2], s: [2, 2], pad: "valid", cout: 2 },
  { x: [2, 5, 4, 1], k: [3, 3], s: [1, 1], pad: "same", cout: 1 },
  { x: [1, 6, 7, 2], k: [2, 3], s: [2, 2], pad: "same", cout: 2 },
  { x: [1, 4, 4, 1], k: [3, 3], s: [2, 2], pad: "same", cout: 1 },
];
const name = (c: Cfg) => `x ${JSON.stringify(c.x)} window ${c.k.join("x")} strides ${c.s.join(",")} ${c.pad}`;
const filterOf = (c: Cfg): Shape4 => [c.k[0], c.k[1], c.x[3], c.cout];
const apply = (t: Tensor, op: "conv2dBackpropInput" | "conv2dBackpropFilter", other: Tensor, c: Cfg): Tensor =>
  op === "conv2dBackpropInput"
    ? t.ctx.apply(op, [t, other], { inputShape: [...c.x], strides: c.s, padding: c.pad })
    : t.ctx.apply(op, [t, other], { filterShape: filterOf(c), strides: c.s, padding: c.pad });
const maxPoolGrad = (x: Tensor, dy: Tensor, c: Cfg): Tensor =>
  x.ctx.apply("maxPool2dGrad", [x, dy], { size: c.k, strides: c.s, padding: c.pad });
const avgPoolGrad = (dy: Tensor, c: Cfg): Tensor =>
  dy.ctx.apply("avgPool2dGrad", [dy], { inputShape: [...c.x], size: c.k, strides: c.s, padding: c.pad });

describe("TensorFlow's output sizes and padding split", () => {
  it("matches worked cases", () => {
    expect(windowAxis(5, 3, 2, "same", "h")).toEqual({ out: 3, padBefore: 1 });
    // odd total padding: the extra cell goes after (bottom/right)
    expect(windowAxis(6, 3, 2, "same", "h")).toEqual({ out: 3, padBefore: 0 });
    expect(windowAxis(4, 2, 2, "same", "h")).toEqual({ out: 2, padBefore: 0 });
    expect(windowAxis(5, 4, 1, "same", "h")).toEqual({ out: 5, padBefore: 1 });
    expect(windowAxis(7, 3, 2, "valid", "h")).toEqual({ out: 3, padBefore: 0 });
    expect(windowAxis(6, 3, 2, "valid", "h")).toEqual({ out: 2, padBefore: 0 });
  });
});

describe("conv2d forward", () => {
  it("sums 2x2 windows by hand, valid and same", () => {
    const out = evalOutputs((g) => {
      const x = g.const(iota(9, 1), [1, 3, 3, 1]);
      const f = g.const([1, 1, 1, 1], [2, 2, 1, 1]);
      return { valid: x.conv2d(f), same: x.conv2d(f, 1, "same"), strided: x.conv2d(f, 2, "same") };
    });
    expect(out.valid!.shape).toEqual([1, 2, 2, 1]);
    expect(Array.from(out.valid!.data)).toEqual([12, 16, 24, 28]);
    // total padding 1 per axis, all of it after
    expect(Array.from(out.same!.data)).toEqual([12, 16, 9, 24, 28, 15, 15, 17, 9]);
    expect(Array.from(out.strided!.data)).toEqual([12, 9, 15, 9]);
  });

  for (const c of CONVS) {
    it(`agrees with direct sums and their transposes: ${name(c)}`, () => {
      const x = randomArray(c.x, 1);
      const f = randomArray(filterOf(c), 2);
      const dy = randomArray(outOf(c), 3);
      const want = naiveConv(c, x, f, dy);
      const out = evalOutputs(
        (g) => {
          const [xt, ft, dyt] = [g.input("x", c.x), g.input("f", filterOf(c)), g.input("dy", outOf(c))];
          return { y: xt.conv2d(ft, c.s, c.pad), dx: apply(dyt, "conv2dBackpropInput", ft, c), df: apply(xt, "conv2dBackpropFilter", dyt, c) };
        },
        { x, f, dy },
      );
      expect(out.y!.shape).toEqual(outOf(c));
      expectAllClose(out.y!, want.y, 1e-12);
      expectAllClose(out.dx!, want.dx, 1e-12);
      expectAllClose(out.df!, want.df, 1e-12);
    });
  }
});

describe("pooling forward", () => {
  it("never lets padding win or count", () => {
    const out = evalOutputs((g) => {
      const x = g.const(iota(9, 1).map((v) => -v), [1, 3, 3, 1]);
      return { max: x.maxPool2d(2, 2, "same"), avg: x.avgPool2d(2, 2, "same") };
    });
    expect(Array.from(out.max!.data)).toEqual([-1, -3, -7, -9]);
    expect(Array.from(out.avg!.data)).toEqual([-3, -4.5, -7.5, -9]);
  });

  it("sends each window's gradient to its first maximum, ties and overlaps included", () => {
    const out = evalOutputs((g) => {
      const tie = g.const([5, 5, 5, 5], [1, 2, 2, 1]);
      const row = g.const([2, 5, 5, 1], [1, 1, 4, 1]);
      return {
        tie: tie.ctx.apply("maxPool2dGrad", [tie, g.const([3], [1, 1, 1, 1])], { size: [2, 2], strides: [2, 2], padding: "valid" }),
        row: row.ctx.apply("maxPool2dGrad", [row, g.const([1, 10, 100], [1, 1, 3, 1])], { size: [1, 2], strides: [1, 1], padding: "valid" }),
      };
    });
    expect(Array.from(out.tie!.data)).toEqual([3, 0, 0, 0]);
    expect(Array.from(out.row!.data)).toEqual([0, 11, 100, 0]);
  });

  for (const c of POOLS) {
    it(`agrees with direct loops: ${name(c)}`, () => {
      const x = randomArray(c.x, 4);
      const dy = randomArray(outOf(c), 5);
      const want = naivePool(c, x, dy);
      const out = evalOutputs(
        (g) => {
          const [xt, dyt] = [g.input("x", c.x), g.input("dy", outOf(c))];
          return {
            max: xt.maxPool2d(c.k, c.s, c.pad),
            avg: xt.avgPool2d(c.k, c.s, c.pad),
            dmax: maxPoolGrad(xt, dyt, c),
            davg: avgPoolGrad(dyt, c),
          };
        },
        { x, dy },
      );
      expectAllClose(out.max!, want.max, 0);
      expectAllClose(out.avg!, want.avg, 1e-12);
      expectAllClose(out.dmax!, want.dmax, 0);
      expectAllClose(out.davg!, want.davg, 1e-12);
    });
  }
});

describe("lowered kernels agree with eval", () => {
  for (const c of CONVS) {
    it(`convolutions: ${name(c)}`, () => {
      const feeds = { x: randomArray(c.x, 6), f: randomArray(filterOf(c), 7), dy: randomArray(outOf(c), 8) };
      expectLoweringMatches((g) => g.input("x", c.x).conv2d(g.input("f", filterOf(c)), c.s, c.pad), feeds);
      expectLoweringMatches((g) => apply(g.input("dy", outOf(c)), "conv2dBackpropInput", g.input("f", filterOf(c)), c), feeds);
      expectLoweringMatches((g) => apply(g.input("x", c.x), "conv2dBackpropFilter", g.input("dy", outOf(c)), c), feeds);
    });
  }
  for (const c of POOLS) {
    it(`pools: ${name(c)}`, () => {
      // a coarse grid of values, so that windows have ties
      const feeds = { x: randomArray(c.x, 9).map((v) => Math.round(v * 2)), dy: randomArray(outOf(c), 10) };
      expectLoweringMatches((g) => g.input("x", c.x).maxPool2d(c.k, c.s, c.pad), feeds);
      expectLoweringMatches((g) => g.input("x", c.x).avgPool2d(c.k, c.s, c.pad), feeds);
      expectLoweringMatches((g) => maxPoolGrad(g.input("x", c.x), g.input("dy", outOf(c)), c), feeds);
      expectLoweringMatches((g) => avgPoolGrad(g.input("dy", outOf(c)), c), feeds);
    });
  }
});

describe("gradients against finite differences", () => {
  for (const c of [CONVS[0]!, CONVS[1]!, CONVS[2]!]) {
    it(`conv2d and its backprop primitives: ${name(c)}`, () => {
      const o = outOf(c);
      const f = filterOf(c);
      expectGradsMatchFD((g) => g.param("x", c.x).conv2d(g.param("f", f), c.s, c.pad).mul(weights(g, o, 41)).sum());
      expectGradsMatchFD((g) => apply(g.param("dy", o), "conv2dBackpropInput", g.param("f", f), c).mul(weights(g, c.x, 42)).sum());
      expectGradsMatchFD((g) => apply(g.param("x", c.x), "conv2dBackpropFilter", g.param("dy", o), c).mul(weights(g, f, 43)).sum());
    });
  }

  for (const c of POOLS) {
    it(`pools and their gradient primitives: ${name(c)}`, () => {
      const o = outOf(c);
      expectGradsMatchFD((g) => g.param("x", c.x).maxPool2d(c.k, c.s, c.pad).mul(weights(g, o, 44)).sum());
      expectGradsMatchFD((g) => g.param("x", c.x).avgPool2d(c.k, c.s, c.pad).mul(weights(g, o, 45)).sum());
      expectGradsMatchFD((g) => avgPoolGrad(g.param("dy", o), c).mul(weights(g, c.x, 46)).sum());
      // linear in dy; piecewise constant in x, whose gradient is zero
      const grads = expectGradsMatchFD((g) => maxPoolGrad(g.param("x", c.x), g.param("dy", o), c).mul(weights(g, c.x, 47)).sum());
      expect(grads.x!.data.every((v) => v === 0)).toBe(true);
    });
  }

  it("maxPool2dGrad's cotangent is read at each window's first maximum", () => {
    // overlapping windows with ties and zero-valued cells next to the padding
    const c: Cfg = { x: [2, 4, 3, 2], k: [3, 3], s: [1, 1], pad: "same", cout: 2 };
    const x = randomArray(c.x, 48).map((v) => Math.round(v * 2) / 2);
    const w = randomArray(c.x, 49);
    const grads = expectGradsMatchFD((g) => maxPoolGrad(g.input("x", c.x), g.param("dy", outOf(c)), c).mul(g.const(w, c.x)).sum(), { feeds: { x } });
    // d/d dy[window] Σ w · dx = w at the cell that takes the window's dy
    const want = new Float64Array(sizeOf(outOf(c))).map((_, i) => {
      const onehot = new Float64Array(sizeOf(outOf(c)));
      onehot[i] = 1;
      const { dmax } = naivePool(c, x, onehot);
      return dmax.reduce((a, v, j) => a + v * w[j]!, 0);
    });
    expectAllClose(grads.dy!, want, 1e-12);
  });

  it("second order: conv2d and its backprop primitives", () => {
    const c = CONVS[1]!;
    const o = outOf(c);
    const f = filterOf(c);
    expectHvpMatchesFD((g) => g.param("x", c.x).conv2d(g.param("f", f), c.s, c.pad).tanh().mul(weights(g, o, 51)).sum());
    expectHvpMatchesFD((g) => apply(g.param("dy", o), "conv2dBackpropInput", g.param("f", f), c).tanh().mul(weights(g, c.x, 52)).sum());
    expectHvpMatchesFD((g) => apply(g.param("x", c.x), "conv2dBackpropFilter", g.param("dy", o), c).tanh().mul(weights(g, f, 53)).sum());
  });

  it("second order: pools", () => {
    for (const c of [POOLS[1]!, POOLS[2]!]) {
      const o = outOf(c);
      expectHvpMatchesFD((g) => g.param("x", c.x).maxPool2d(c.k, c.s, c.pad).square().mul(weights(g, o, 54)).sum());
      expectHvpMatchesFD((g) => g.param("x", c.x).avgPool2d(c.k, c.s, c.pad).tanh().mul(weights(g, o, 55)).sum());
      expectHvpMatchesFD((g) => maxPoolGrad(g.input("x", c.x), g.param("dy", o), c).tanh().mul(weights(g, c.x, 56)).sum(), {
        feeds: { x: randomArray(c.x, 57) },
      });
    }
  });
});

describe("shape errors name the op, the shapes and the line", () => {
  const conv2d = (x: number[], f: number[], s: Pair = [1, 1], pad: Padding = "valid") =>
    errorMessage(() => evalOutputs((g) => ({ y: g.input("x", x).conv2d(g.input("f", f), s, pad) })));

  it("conv2d", () => {
    const rank = conv2d([5, 5, 3], [3, 3, 3, 8]);
    expect(rank).toMatch(/^conv2d: the input must be an NHWC image of rank 4, got \[5,5,3\]; inputs: f32\[5,5,3\], f32\[3,3,3,8\]/);
    expect(rank).toMatch(HERE);
    expect(conv2d([1, 5, 5, 3], [3, 3, 4, 8])).toMatch(/^conv2d: the filter \[3,3,4,8\] expects 4 input channels but the input \[1,5,5,3\] has 3/);
    expect(conv2d([1, 5, 5, 3], [3, 3, 3])).toMatch(/^conv2d: the filter must be \[fh, fw, cin, cout\], got \[3,3,3\]/);
    expect(conv2d([1, 2, 5, 1], [3, 3, 1, 1])).toMatch(/^conv2d: the window \(3\) is larger than the input \(2\) along the height with "valid" padding/);
    expect(conv2d([1, 5, 5, 1], [3, 3, 1, 1], [0, 1])).toMatch(/^conv2d: strides must be two positive integers, got \[0,1\]/);
    const dt = errorMessage(() => evalOutputs((g) => ({ y: g.input("x", [1, 3, 3, 1]).conv2d(g.input("f", [1, 1, 1, 1], "f64")) })));
    expect(dt).toMatch(/^conv2d: needs float operands of one dtype, got f32 and f64/);
  });

  it("pools and backprop primitives", () => {
    const pool = errorMessage(() => evalOutputs((g) => ({ y: g.input("x", [4, 4]).maxPool2d(2) })));
    expect(pool).toMatch(/^maxPool2d: the input must be an NHWC image of rank 4, got \[4,4\]/);
    expect(pool).toMatch(HERE);
    expect(errorMessage(() => evalOutputs((g) => ({ y: g.input("x", [1, 4, 4, 1], "i32").avgPool2d(2) })))).toMatch(/^avgPool2d: needs a float input, got i32/);
    const c: Cfg = { x: [1, 5, 5, 2], k: [3, 3], s: [2, 2], pad: "same", cout: 4 };
    const bi = errorMessage(() => evalOutputs((g) => ({ y: apply(g.input("dy", [1, 5, 5, 4]), "conv2dBackpropInput", g.input("f", filterOf(c)), c) })));
    expect(bi).toMatch(/^conv2dBackpropInput: the output gradient is \[1,5,5,4\] but the forward output is \[1,3,3,4\]/);
    expect(bi).toMatch(HERE);
    const bf = errorMessage(() => evalOutputs((g) => ({ y: apply(g.input("x", [1, 5, 5, 3]), "conv2dBackpropFilter", g.input("dy", [1, 3, 3, 4]), c) })));
    expect(bf).toMatch(/^conv2dBackpropFilter: the filter \[3,3,2,4\] expects 2 input channels but the input \[1,5,5,3\] has 3/);
    const mg = errorMessage(() => evalOutputs((g) => ({ y: maxPoolGrad(g.input("x", [1, 4, 4, 1]), g.input("dy", [1, 4, 4, 1]), c) })));
    expect(mg).toMatch(/^maxPool2dGrad: the output gradient is \[1,4,4,1\] but the forward output is \[1,2,2,1\]/);
  });
});
