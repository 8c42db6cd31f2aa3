// Frozen params, stopGradient and integer inputs: no gradient, and no
// backward node at all for work that only feeds them.
import { describe, expect, it } from "vitest";
import { graph } from "../../../compiler/dsl/graph.js";
import { grad } from "../../../compiler/autodiff/grad.js";
import { checkGrads, formatGradReport } from "../../../compiler/autodiff/checkGrads.js";
import { interpret } from "../../../compiler/interp/interpret.js";
import type { Tensor } from "../../../compiler/ir/node.js";
import { errorMessage, randomArray } from "../../helpers.js";

/** A frozen feature layer, a trainable head, a head reached only through stopGradient, integer weights. */
function fineTune(withStopped = true) {
  const named: Record<string, Tensor> = {};
  const g = graph("fineTune", (b) => {
    const x = b.input("x", [4, 3]);
    const counts = b.input("counts", [4], "i32");
    const Wf = b.param("Wf", [3, 5], { trainable: false });
    const bf = b.param("bf", [5], { init: 0.1, trainable: false });
    const h = x.matmul(Wf).add(bf).tanh();
    const W = b.param("W", [5, 2]);
    const Ws = b.param("Ws", [5, 2]);
    const stopped = h.matmul(Ws);
    const logits = withStopped ? h.matmul(W).add(stopped.stopGradient()) : h.matmul(W);
    const weight = counts.cast("f32");
    Object.assign(named, { x, h, stopped, weight, first: h.inputs[0]! });
    return { loss: logits.square().mean().add(weight.mul(logits.sum(1)).mean()) };
  });
  return { g, named };
}
const feeds = { x: randomArray(12, 1), counts: [1, 0, 3, 2] };

/** Forward nodes through which a trainable param reaches the loss (stopGradient cuts). */
function liveNodes(roots: readonly Tensor[], trainable: ReadonlySet<Tensor>): Set<Tensor> {
  const memo = new Map<Tensor, boolean>();
  const visit = (t: Tensor): boolean => {
    let v = memo.get(t);
    if (v === undefined) {
      v = trainable.has(t) || (t.op !== "stopGradient" && t.inputs.map(visit).some(Boolean));
      memo.set(t, v);
    }
    return v;
  };
  roots.forEach(visit);
  return new Set([...memo].filter(([, v]) => v).map(([t]) => t));
}

describe("frozen params and stopGradient", () => {
  it("give no gradient output for frozen params; a stopped param's gradient is zero", () => {
    const { g } = fineTune();
    const dg = grad(g);
    expect(Object.keys(dg.grads)).toEqual(["W", "Ws"]);
    const v = interpret(dg, feeds, undefined, { precision: "f64" });
    expect(Array.from(v.grads.Ws!.data)).toEqual(new Array(10).fill(0));
    expect(v.grads.W!.data.some((d) => d !== 0)).toBe(true);
  });

  it("build no backward node for work that only feeds a frozen or stopped param", () => {
    const { g, named } = fineTune();
    const dg = grad(g);
    const forward = new Set(g.nodes);
    const live = liveNodes([g.loss!], new Set(g.params.filter((p) => p.trainable).map((p) => p.node)));
    const backward = dg.nodes.filter((n) => !forward.has(n));
    expect(backward.length).toBeGreaterThan(0);
    for (const n of backward) {
      if (n.origin) expect(live.has(n.origin.of), `${n} differentiates ${n.origin.of}`).toBe(true);
    }
    const origins = new Set(backward.flatMap((n) => (n.origin ? [n.origin.of] : [])));
    // nothing differentiates the frozen layer (its tanh, add, matmul), the stopped head or the integer cast
    for (const k of ["h", "first", "stopped", "weight"]) expect(origins.has(named[k]!), k).toBe(false);
    // in particular, no xᵀ · ct (that would be dLoss/dWf)
    expect(dg.nodes.some((n) => n.op === "transpose" && n.inputs[0] === named.x)).toBe(false);
  });

  it("differentiate through a frozen layer when an input is asked for", () => {
    const { g, named } = fineTune();
    const dg = grad(g, { wrt: ["x"] });
    const origins = new Set(dg.nodes.flatMap((n) => (n.origin ? [n.origin.of] : [])));
    expect(origins.has(named.h!)).toBe(true);
    // finite differences see x move the stopped head too: check without it
    const report = checkGrads(fineTune(false).g, feeds, { wrt: ["x", "W"] });
    expect(report.ok, formatGradReport(report)).toBe(true);
  });

  it("stopGradient passes values but no gradient", () => {
    const g = graph("stop", (b) => {
      const w = b.param("w", [3], { init: [1, 2, 3] });
      return { loss: w.square().stopGradient().sum().add(w.sum()) };
    });
    const v = interpret(grad(g), {}, undefined, { precision: "f64" });
    expect(v.loss).toBe(1 + 4 + 9 + 6);
    // only Σw contributes: d/dw = 1
    expect(Array.from(v.grads.w!.data)).toEqual([1, 1, 1]);
  });

  it("refuses a gradient for a frozen param with a clear error", () => {
    const { g } = fineTune();
    expect(errorMessage(() => grad(g, { wrt: ["Wf"] }))).toMatch(/grad: param "Wf" is frozen \(trainable: false\)/);
  });
});

describe("integer inputs", () => {
  it("have no gradient: grad refuses them by name and dtype", () => {
    const { g } = fineTune();
    expect(errorMessage(() => grad(g, { wrt: ["counts"] }))).toMatch(/"counts" is i32; only float tensors have gradients/);
  });

  it("are never given a cotangent, even when mixed into a float path", () => {
    const { g } = fineTune();
    const dg = grad(g, { wrt: ["x", "W"] });
    const counts = g.input("counts")!.node;
    expect(dg.nodes.some((n) => n.origin && n.origin.of.inputs.includes(counts))).toBe(false);
    expect(dg.nodes.filter((n) => n.origin).every((n) => n.dtype !== "i32")).toBe(true);
  });
});
