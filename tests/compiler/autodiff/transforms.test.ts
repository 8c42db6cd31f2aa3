// Fan-out, unused params, vjp of non-scalar outputs against the Jacobian, and
// hvp against finite differences of the gradient.
import { describe, expect, it } from "vitest";
import { graph } from "../../../compiler/dsl/graph.js";
import { cotangentName, grad, hvp, tangentName, vjp } from "../../../compiler/autodiff/grad.js";
import { checkGrads, formatGradReport } from "../../../compiler/autodiff/checkGrads.js";
import { interpret } from "../../../compiler/interp/interpret.js";
import type { Feeds } from "../../../compiler/interp/interpret.js";
import { expectAllClose, randomArray } from "../../helpers.js";

const f64 = { precision: "f64" } as const;

describe("fan-out", () => {
  const w0 = [0.3, -1.2, 0.8];
  const c = [1.5, -0.5, 2];
  // h = sin(w) feeds three ops: L = Σ (h·c + e^h + tanh h)
  const g = graph("fanOut", (b) => {
    const w = b.param("w", [3], { init: w0 });
    const h = w.sin();
    return { loss: h.mul(b.const(c)).add(h.exp()).add(h.tanh()).sum() };
  });

  it("sums the cotangents of a node used three times", () => {
    const v = interpret(grad(g), {}, undefined, f64);
    // dL/dw = cos w · (c + e^h + 1 − tanh² h)
    const expected = w0.map((w, i) => {
      const h = Math.sin(w);
      return Math.cos(w) * (c[i]! + Math.exp(h) + 1 - Math.tanh(h) ** 2);
    });
    expectAllClose(v.grads.w!, expected, 1e-14);
    const report = checkGrads(g, {});
    expect(report.ok, formatGradReport(report)).toBe(true);
  });

  it("adds the three cotangents with two adds, at the fanned-out node", () => {
    const dg = grad(g);
    const h = g.nodes.find((n) => n.op === "sin")!;
    const sums = dg.nodes.filter((n) => n.op === "add" && n.origin?.of === h && n.origin.input === -1);
    expect(sums.length).toBe(2);
  });

  it("counts every use, also within one op: d(x·x·x)/dx = 3x²", () => {
    const cube = graph("cube", (b) => {
      const x = b.param("x", [2], { init: [0.5, -2] });
      return { loss: x.mul(x).mul(x).sum() };
    });
    expectAllClose(interpret(grad(cube), {}, undefined, f64).grads.x!, [0.75, 12], 1e-15);
  });
});

describe("a param the loss does not use", () => {
  const g = graph("unused", (b) => {
    const w = b.param("w", [2], { init: [1, 2] });
    b.param("idle", [2, 3], { init: 0.5 });
    return { loss: w.square().sum() };
  });

  it("gets a zero gradient of its shape and no backward nodes", () => {
    const dg = grad(g);
    const v = interpret(dg, {}, undefined, f64);
    expect(v.grads.idle!.shape).toEqual([2, 3]);
    expect(Array.from(v.grads.idle!.data)).toEqual([0, 0, 0, 0, 0, 0]);
    expectAllClose(v.grads.w!, [2, 4], 1e-15);
    const idle = g.param("idle")!.node;
    expect(dg.nodes.some((n) => n.origin?.of === idle)).toBe(false);
  });

  it("passes checkGrads with zero error", () => {
    const report = checkGrads(g, {});
    expect(report.ok).toBe(true);
    expect(report.params.find((p) => p.name === "idle")!.error).toBe(0);
  });
});

describe("vjp of non-scalar outputs", () => {
  // y = tanh(x·W) [3,2] and z = Σ₀ W² [2]: both depend on W, y also on x
  const g = graph("twoOutputs", (b) => {
    const x = b.input("x", [3, 2]);
    const W = b.param("W", [2, 2], { init: [0.4, -0.7, 1.1, 0.2] });
    return { outputs: { y: x.matmul(W).tanh(), z: W.square().sum(0) } };
  });
  const x0 = randomArray(6, 11);
  const W0 = [0.4, -0.7, 1.1, 0.2];
  const cts = { y: randomArray(6, 12), z: randomArray(2, 13) };

  /** ctᵀ·J for the named tensor, with J's columns by central differences of the outputs. */
  function ctTimesJacobian(name: "W" | "x", base: number[]): number[] {
    const h = 1e-5;
    const outputsAt = (v: number[]): Float64Array[] => {
      const feeds: Feeds = name === "x" ? { x: v } : { x: x0 };
      const out = interpret(g, feeds, name === "W" ? { W: v } : { W: W0 }, f64).outputs;
      return [out.y!.data, out.z!.data];
    };
    return base.map((_, i) => {
      const plus = outputsAt(base.map((v, k) => (k === i ? v + h : v)));
      const minus = outputsAt(base.map((v, k) => (k === i ? v - h : v)));
      let s = 0;
      [cts.y, cts.z].forEach((ct, o) => ct.forEach((cj, j) => (s += (cj * (plus[o]![j]! - minus[o]![j]!)) / (2 * h))));
      return s;
    });
  }

  it("adds one cotangent input per output and matches ctᵀ·J by finite differences", () => {
    const vg = vjp(g, ["y", "z"], { wrt: ["W", "x"] });
    expect(vg.inputs.map((i) => [i.name, i.shape])).toEqual([["x", [3, 2]], [cotangentName("y"), [3, 2]], [cotangentName("z"), [2]]]);
    const v = interpret(vg, { x: x0, [cotangentName("y")]: cts.y, [cotangentName("z")]: cts.z }, undefined, f64);
    expectAllClose(v.grads.W!, ctTimesJacobian("W", W0), { rtol: 1e-8, atol: 1e-9 });
    expectAllClose(v.grads.x!, ctTimesJacobian("x", Array.from(x0)), { rtol: 1e-8, atol: 1e-9 });
  });

  it("of one output ignores the other", () => {
    const vg = vjp(g, ["z"]);
    const v = interpret(vg, { x: x0, [cotangentName("z")]: cts.z }, undefined, f64);
    // dz_j/dW_ij = 2 W_ij
    expectAllClose(v.grads.W!, W0.map((w, k) => 2 * w * cts.z[k % 2]!), 1e-14);
  });
});

describe("hvp", () => {
  const g = graph("hvp", (b) => {
    const x = b.input("x", [4, 3]);
    const W = b.param("W", [3, 2], { init: Array.from(randomArray(6, 21)) });
    const c = b.param("c", [2], { init: [0.3, -0.4] });
    return { loss: x.matmul(W).add(c).tanh().square().sum().add(W.pow(4).sum()) };
  });
  const feeds = { x: randomArray(12, 22) };
  const params0 = { W: Array.from(randomArray(6, 21)), c: [0.3, -0.4] };
  const dirs = { W: Array.from(randomArray(6, 23)), c: [0.7, 0.2] };

  it("matches finite differences of the gradient along v", () => {
    const hv = interpret(hvp(g), { ...feeds, [tangentName("W")]: dirs.W, [tangentName("c")]: dirs.c }, undefined, f64).grads;
    const h = 1e-5;
    const gradAt = (t: number) => {
      const moved = {
        W: params0.W.map((w, i) => w + t * dirs.W[i]!),
        c: params0.c.map((v, i) => v + t * dirs.c[i]!),
      };
      return interpret(grad(g), feeds, moved, f64).grads;
    };
    const plus = gradAt(h);
    const minus = gradAt(-h);
    for (const name of ["W", "c"] as const) {
      const fd = Array.from(plus[name]!.data, (p, i) => (p - minus[name]!.data[i]!) / (2 * h));
      expectAllClose(hv[name]!, fd, { rtol: 1e-7, atol: 1e-8 });
    }
  });

  it("is symmetric: ⟨u, H v⟩ = ⟨v, H u⟩", () => {
    const u = { W: Array.from(randomArray(6, 31)), c: [-0.5, 0.9] };
    const hvpAt = (d: typeof u) => interpret(hvp(g), { ...feeds, [tangentName("W")]: d.W, [tangentName("c")]: d.c }, undefined, f64).grads;
    const dot = (a: typeof u, hb: ReturnType<typeof hvpAt>) =>
      a.W.reduce((s, v, i) => s + v * hb.W!.data[i]!, 0) + a.c.reduce((s, v, i) => s + v * hb.c!.data[i]!, 0);
    expect(dot(u, hvpAt(dirs))).toBeCloseTo(dot(dirs, hvpAt(u)), 12);
  });
});
