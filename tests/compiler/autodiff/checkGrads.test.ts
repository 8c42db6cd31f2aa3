// checkGrads itself: what it reports, that it fails wrong gradients (first and
// second order), how it treats kinks and zero gradients, and its table printer.
import { describe, expect, it } from "vitest";
import { graph } from "../../../compiler/dsl/graph.js";
import { grad } from "../../../compiler/autodiff/grad.js";
import { interpret } from "../../../compiler/interp/interpret.js";
import { checkGrads, formatGradReport, gradProbe } from "../../../compiler/autodiff/checkGrads.js";
import { errorMessage, randomArray } from "../../helpers.js";

/** L = Σ tanh(x·W + b) · c, with a scale on W's gradient given by a custom VJP. */
function model(scaleW = 1) {
  return graph("model", (g) => {
    const x = g.input("x", [3, 2]);
    const W = g.param("W", [2, 4], { init: Array.from(randomArray(8, 3)) });
    const b = g.param("b", [4], { init: [0.1, -0.2, 0.3, 0.05] });
    const scaled = g.customGrad("scaled", (w: typeof W) => w.mul(1), (ct) => [ct.mul(scaleW)]);
    const y = x.matmul(scaled(W)).add(b).tanh();
    return { loss: y.mul(g.const(randomArray(12, 4), [3, 4])).sum(), outputs: { y } };
  });
}
const feeds = { x: randomArray(6, 7) };

describe("checkGrads", () => {
  it("reports every trainable param with its shape, the number of comparisons and ok", () => {
    const report = checkGrads(model(), feeds);
    expect(report.graph).toBe("model");
    expect(report.order).toBe(1);
    expect(report.params.map((p) => [p.name, p.shape])).toEqual([["W", [2, 4]], ["b", [4]]]);
    // 3 random directions + one per element (both have at most 16 elements)
    expect(report.params.map((p) => p.checks)).toEqual([3 + 8, 3 + 4]);
    expect(report.ok).toBe(true);
    for (const p of report.params) expect(p.error).toBeLessThan(1e-8);
  });

  it("takes params from their initializers unless given, and the loss is the interpreter's", () => {
    const g = model();
    const atInit = checkGrads(g, feeds);
    expect(atInit.loss).toBeCloseTo(interpret(g, feeds, undefined, { precision: "f64" }).loss!, 12);
    const b = [1, 2, 3, 4];
    const moved = checkGrads(g, feeds, { params: { b } });
    expect(moved.loss).toBeCloseTo(interpret(g, feeds, { b }, { precision: "f64" }).loss!, 12);
    expect(moved.loss).not.toBeCloseTo(atInit.loss, 3);
  });

  it("fails a gradient that is off by a factor, naming the worst comparison", () => {
    const report = checkGrads(model(2), feeds);
    expect(report.ok).toBe(false);
    const W = report.params.find((p) => p.name === "W")!;
    const b = report.params.find((p) => p.name === "b")!;
    expect(W.ok).toBe(false);
    expect(b.ok).toBe(true);
    // symbolic = 2 · numeric: |2n − n| / |2n| = 1/2
    expect(W.error).toBeCloseTo(0.5, 6);
    expect(W.symbolic).toBeCloseTo(2 * W.numeric, 6);
    expect(W.where).toMatch(/^(direction #\d|element \[\d,\d\])$/);
  });

  it("fails a gradient that is off by 0.1%", () => {
    expect(checkGrads(model(1.001), feeds).ok).toBe(false);
  });

  it("compares per element only for small tensors (maxElements)", () => {
    const none = checkGrads(model(), feeds, { maxElements: 0, directions: 5 });
    expect(none.params.map((p) => p.checks)).toEqual([5, 5]);
    const some = checkGrads(model(), feeds, { maxElements: 4, directions: 1 });
    expect(some.params.map((p) => p.checks)).toEqual([1, 1 + 4]);
  });

  it("checks inputs named in wrt", () => {
    const report = checkGrads(model(), feeds, { wrt: ["x", "b"] });
    expect(report.params.map((p) => p.name)).toEqual(["x", "b"]);
    expect(report.ok).toBe(true);
  });

  it("gives exact zero error for a zero gradient, and rejects frozen params in wrt", () => {
    const g = graph("unused", (b) => {
      const w = b.param("w", [3], { init: [1, 2, 3] });
      b.param("idle", [2], { init: [5, 6] });
      const frozen = b.param("frozen", [3], { init: [1, 1, 1], trainable: false });
      return { loss: w.mul(frozen).square().sum() };
    });
    const report = checkGrads(g, {});
    expect(report.params.map((p) => p.name)).toEqual(["w", "idle"]);
    const idle = report.params[1]!;
    expect([idle.error, idle.symbolic, idle.numeric]).toEqual([0, 0, 0]);
    expect(errorMessage(() => checkGrads(g, {}, { wrt: ["frozen"] }))).toMatch(/frozen/);
  });

  it("finds a kink: relu exactly at 0 has one-sided slopes the symbolic gradient cannot match", () => {
    const g = graph("kink", (b) => {
      const w = b.param("w", [3], { init: [0.5, 0, -0.5] });
      return { loss: w.relu().sum() };
    });
    const report = checkGrads(g, {});
    expect(report.ok).toBe(false);
    expect(report.params[0]!.where).toBe("element [1]");
    // the central difference averages the slopes 0 and 1
    expect(report.params[0]!.numeric).toBeCloseTo(0.5, 9);
  });
});

describe("checkGrads, order 2", () => {
  it("passes where the first gradient is itself differentiable and correct", () => {
    const report = checkGrads(model(), feeds, { order: 2 });
    expect(report.order).toBe(2);
    expect(report.ok).toBe(true);
  });

  it("fails a VJP that is right to first order but hides its dependence on x", () => {
    const g = graph("sinStopped", (b) => {
      const w = b.param("w", [4], { init: [0.3, -1.1, 0.7, 2.0] });
      const sin = b.customGrad("sin", (x: typeof w) => x.sin(), (ct, [x]) => [ct.mul(x!.stopGradient().cos())]);
      return { loss: sin(w).sum() };
    });
    expect(checkGrads(g, {}).ok).toBe(true);
    const second = checkGrads(g, {}, { order: 2 });
    expect(second.ok).toBe(false);
    // the stopped cos has no derivative: the symbolic Hessian is 0
    expect(second.params[0]!.symbolic).toBe(0);
  });

  it("gradProbe's loss is Σ⟨∇L, c⟩, and its gradient is H·c", () => {
    // L = x³ at x = 0.7: ∇L = 3x², H = 6x, so probe = 3x²·c and ∇probe = 6x·c
    const g = graph("cube", (b) => ({ loss: b.param("x", [1], { init: 0.7 }).pow(3).sum() }));
    const probe = gradProbe(g);
    expect(probe.name).toBe("cube.probe");
    const values = interpret(grad(probe), {}, undefined, { precision: "f64" });
    const c = values.loss! / (3 * 0.7 ** 2);
    expect(Math.abs(c)).toBeGreaterThan(0);
    expect(values.grads.x!.data[0]).toBeCloseTo(6 * 0.7 * c, 12);
  });
});

describe("formatGradReport", () => {
  it("prints a header and one row per param with its worst error", () => {
    const good = formatGradReport(checkGrads(model(), feeds));
    const lines = good.split("\n");
    expect(lines[0]).toMatch(/^gradient check of "model": ok \(loss -?\d/);
    expect(lines[1]).toMatch(/param\s+shape\s+checks\s+rel\. error\s+at\s+symbolic\s+numeric/);
    expect(lines[2]).toMatch(/^\s+W\s+\[2,4\]\s+11\s/);
    expect(lines[3]).toMatch(/^\s+b\s+\[4\]\s+7\s.*ok$/);
    const bad = formatGradReport(checkGrads(model(3), feeds, { order: 2 }));
    expect(bad.split("\n")[0]).toMatch(/\(order 2\): FAILED/);
    expect(bad).toMatch(/W\s+\[2,4\].*FAIL$/m);
  });
});
