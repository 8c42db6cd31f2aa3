// customGrad: the user's VJP replaces the derivative of the wrapped ops
// (straight-through estimators, gradient clipping inside the graph).
import { describe, expect, it } from "vitest";
import { graph } from "../../../compiler/dsl/graph.js";
import type { Tensor } from "../../../compiler/ir/node.js";
import { reachable } from "../../../compiler/ir/graph.js";
import { grad } from "../../../compiler/autodiff/grad.js";
import { checkGrads, formatGradReport } from "../../../compiler/autodiff/checkGrads.js";
import { interpret } from "../../../compiler/interp/interpret.js";
import { errorMessage } from "../../helpers.js";

const f64 = { precision: "f64" } as const;
const w0 = [-1.5, -0.2, 0.4, 2];
const c = [-3, -0.25, 0.5, 2];

/** L = Σ f(w) · c for a wrapped f. */
function around(f: (w: Tensor, b: Parameters<Parameters<typeof graph>[1]>[0]) => Tensor) {
  return graph("custom", (b) => {
    const w = b.param("w", [4], { init: w0 });
    const y = f(w, b);
    return { loss: y.mul(b.const(c)).sum(), outputs: { y } };
  });
}

describe("straight-through estimator", () => {
  const ste = around((w, b) => b.customGrad("ste", (x: Tensor) => x.sign(), (ct) => [ct])(w));

  it("is sign(x) forward and the identity backward", () => {
    const v = interpret(grad(ste), {}, undefined, f64);
    expect(Array.from(v.outputs.y!.data)).toEqual(w0.map(Math.sign));
    // sign's own derivative is 0; the estimator passes c straight through
    expect(Array.from(v.grads.w!.data)).toEqual(c);
  });

  it("does not differentiate the wrapped sign at all", () => {
    const dg = grad(ste);
    expect(dg.nodes.some((n) => n.origin?.of.op === "sign")).toBe(false);
    // the identity backward makes dL/dw the constant c: it does not read w
    expect(reachable([dg.grads.w!]).some((n) => n.op === "param")).toBe(false);
  });

  it("matches the stopGradient trick x + stop(sign(x) − x)", () => {
    const trick = around((w) => w.add(w.sign().sub(w).stopGradient()));
    const a = interpret(grad(ste), {}, undefined, f64);
    const b = interpret(grad(trick), {}, undefined, f64);
    expect(Array.from(b.outputs.y!.data)).toEqual(Array.from(a.outputs.y!.data));
    expect(Array.from(b.grads.w!.data)).toEqual(Array.from(a.grads.w!.data));
  });
});

describe("gradient clipping inside the graph", () => {
  it("clips each cotangent element to [-1, 1] and leaves the forward value alone", () => {
    const g = around((w, b) => b.customGrad("clip", (x: Tensor) => x.mul(1), (ct) => [ct.maximum(-1).minimum(1)])(w.tanh()));
    const v = interpret(grad(g), {}, undefined, f64);
    expect(Array.from(v.outputs.y!.data)).toEqual(w0.map(Math.tanh));
    // chain rule after the clip: clip(c) · (1 − tanh²(w))
    const expected = c.map((ci, i) => Math.max(-1, Math.min(1, ci)) * (1 - Math.tanh(w0[i]!) ** 2));
    v.grads.w!.data.forEach((d, i) => expect(d).toBeCloseTo(expected[i]!, 14));
  });

  it("rescales the cotangent to a norm of at most 1", () => {
    const clipNorm = (ct: Tensor): Tensor => ct.div(ct.square().sum().sqrt().maximum(1));
    const g = around((w, b) => b.customGrad("clipNorm", (x: Tensor) => x.mul(1), (ct) => [clipNorm(ct)])(w));
    const v = interpret(grad(g), {}, undefined, f64);
    const norm = Math.hypot(...c);
    expect(norm).toBeGreaterThan(1);
    v.grads.w!.data.forEach((d, i) => expect(d).toBeCloseTo(c[i]! / norm, 14));
  });
});

describe("customGrad", () => {
  it("a correct hand-written VJP of several inputs passes checkGrads (and the output is available to it)", () => {
    const g = graph("mulExp", (b) => {
      const p = b.param("p", [3], { init: [0.5, -1, 0.25] });
      const q = b.param("q", [3], { init: [1.5, 0.3, -0.7] });
      // y = exp(p·q): dy/dp = y·q, dy/dq = y·p
      const f = b.customGrad("mulExp", (x: Tensor, y: Tensor) => x.mul(y).exp(), (ct, [x, y], out) => [ct.mul(out).mul(y!), ct.mul(out).mul(x!)]);
      return { loss: f(p, q).mul(b.const([1, -2, 0.5])).sum() };
    });
    const report = checkGrads(g, {});
    expect(report.ok, formatGradReport(report)).toBe(true);
  });

  it("a VJP that returns the wrong number of cotangents is an error naming it", () => {
    const g = around((w, b) => b.customGrad("twoForOne", (x: Tensor) => x.mul(2), (ct) => [ct, ct])(w));
    expect(errorMessage(() => grad(g))).toMatch(/custom gradient "twoForOne" returned 2 cotangents for 1 inputs/);
  });
});
