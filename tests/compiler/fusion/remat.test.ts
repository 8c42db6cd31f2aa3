// Rematerialization: with `remat` the backward recomputes elementwise forward
// values instead of keeping them, with `g.checkpoint` it recomputes
// everything but the checkpoints; gradients stay the interpreter's, fewer
// activations are saved, the MNIST step's peak arena is lower, and the extra
// arithmetic is bounded. The compile summary reports all of it.
import { describe, expect, it } from "vitest";
import mnist from "../../../examples/mnist/model.js";
import { graph } from "../../../compiler/dsl/graph.js";
import * as nn from "../../../compiler/dsl/nn.js";
import type { Tensor } from "../../../compiler/ir/node.js";
import { grad } from "../../../compiler/autodiff/grad.js";
import { interpret } from "../../../compiler/interp/interpret.js";
import { lowerGraph } from "../../../compiler/compile.js";
import { kernelsOf } from "../../../compiler/lower/schedule.js";
import { summarize } from "../../../compiler/bundle/summary.js";
import { expectAllClose, randomArray, randomInts } from "../../helpers.js";
import { execute } from "../harness/harness.js";

/** Four tanh layers; the second one's output is a checkpoint. */
const deep = graph("deep", (g) => {
  const x = g.input("x", [16, 12]);
  const y = g.input("y", [16], "i32");
  let h: Tensor = x;
  for (let i = 0; i < 4; i++) {
    const W = g.param(`W${i}`, [h.shape[1]!, 20], { init: "heNormal" });
    const b = g.param(`b${i}`, [20], { init: { name: "uniform", min: -0.1, max: 0.1 } });
    h = h.matmul(W).add(b).tanh();
    if (i === 1) h = g.checkpoint(h);
  }
  return { loss: nn.softmaxCrossEntropy(h.matmul(g.param("Wo", [20, 5])), y) };
});
const deepFeeds = { x: randomArray(192, 11), y: randomInts(16, 5, 12) };
const mnistFeeds = { x: randomArray(32 * 784, 13, 0, 1), y: randomInts(32, 10, 14) };

describe("rematerialization", () => {
  it("mnist: the same gradients, fewer saved activations, a lower peak, at most 1% more backward arithmetic", () => {
    const keep = lowerGraph(mnist, {});
    const remat = lowerGraph(mnist, { remat: true });
    const a = summarize(keep.schedule, keep.plan);
    const b = summarize(remat.schedule, remat.plan);
    expect(b.remat).toBe(true);
    expect(b.memory.savedActivations.bytes).toBeLessThan(a.memory.savedActivations.bytes);
    expect(b.memory.peakBytes).toBeLessThan(a.memory.peakBytes);
    expect(b.flops.forward).toBe(a.flops.forward);
    expect(b.flops.backward).toBeGreaterThan(a.flops.backward);
    expect(b.flops.backward).toBeLessThan(a.flops.backward * 1.01);
    // backward kernels recompute forward values (ReLUs of saved pre-activations)
    expect(kernelsOf(remat.schedule, "gradients").some((k) => k.recomputes > 0)).toBe(true);
    const run = execute(mnist, { remat: true, dtype: "f64" });
    for (const [k, v] of Object.entries(mnistFeeds)) run.input(k, v);
    run.gradients();
    const want = interpret(grad(mnist), mnistFeeds, undefined, { precision: "f64" });
    for (const [p, g] of Object.entries(want.grads)) expectAllClose(run.grad(p), g.data, { rtol: 1e-10, atol: 1e-12 });
  });

  it("is off by default, and on by default when the graph has checkpoints", () => {
    expect(lowerGraph(mnist, {}).schedule.remat).toBe(false);
    expect(lowerGraph(deep, {}).schedule.remat).toBe(true);
    expect(lowerGraph(deep, { remat: false }).schedule.remat).toBe(false);
  });
});

describe("g.checkpoint", () => {
  it("keeps only the checkpoint across the passes and recomputes the rest, matmuls included", () => {
    const keep = lowerGraph(deep, { remat: false, dtype: "f64" });
    const ckpt = lowerGraph(deep, { dtype: "f64" });
    const a = summarize(keep.schedule, keep.plan);
    const b = summarize(ckpt.schedule, ckpt.plan);
    // one saved activation: the checkpoint, 16×20 f64
    expect(b.memory.savedActivations).toEqual({ count: 1, bytes: 16 * 20 * 8 });
    expect(a.memory.savedActivations.count).toBeGreaterThan(4);
    const recomputing = kernelsOf(ckpt.schedule, "gradients").filter((k) => k.name.startsWith("re_"));
    expect(recomputing.filter((k) => k.node?.op === "matmul").length).toBeGreaterThanOrEqual(4);
    // every forward layer but none of the checkpoint's own is done again: about one more forward pass
    expect(b.flops.recomputed).toBeGreaterThan(0.8 * b.flops.forward);
    expect(b.flops.recomputed).toBeLessThanOrEqual(1.1 * b.flops.forward);
  });

  it("gives the interpreter's gradients, and the same values as without recomputation", () => {
    const want = interpret(grad(deep), deepFeeds, undefined, { precision: "f64" });
    for (const options of [{}, { remat: false }]) {
      const run = execute(deep, { ...options, dtype: "f64" });
      for (const [k, v] of Object.entries(deepFeeds)) run.input(k, v);
      run.gradients();
      expectAllClose([run.loss()], [want.loss!], { rtol: 1e-12, atol: 0 });
      for (const [p, g] of Object.entries(want.grads)) expectAllClose(run.grad(p), g.data, { rtol: 1e-10, atol: 1e-12 });
    }
  });

  it("is an identity: the f32 loss is the interpreter's", () => {
    const run = execute(deep);
    for (const [k, v] of Object.entries(deepFeeds)) run.input(k, v);
    const plain = interpret(deep, deepFeeds);
    expect(plain.loss).toBeDefined();
    run.gradients();
    expectAllClose([run.loss()], [plain.loss!], { rtol: 1e-5, atol: 1e-6 });
  });
});

describe("the compile summary", () => {
  it("counts kernels per entry point, FLOPs per pass, and the memory plan's numbers", () => {
    const { schedule, plan } = lowerGraph(mnist, {});
    const s = summarize(schedule, plan, [{ pass: "fold", nodesBefore: 10, nodesAfter: 8, ms: 1 }]);
    expect(s.kernels).toEqual({
      forward: kernelsOf(schedule, "forward").length,
      gradients: kernelsOf(schedule, "gradients").length,
      update: 1,
      step: kernelsOf(schedule, "gradients").length + 1,
    });
    // 784→256→256→10 at batch 32: 2·32·(784·256 + 256·256 + 256·10) multiply-adds forward, the softmax CE besides
    const matmuls = 2 * 32 * (784 * 256 + 256 * 256 + 256 * 10);
    expect(s.flops.forward).toBeGreaterThan(matmuls);
    expect(s.flops.forward).toBeLessThan(matmuls * 1.01);
    // backward: dW for each layer, dX for the two upper ones
    const back = 2 * 32 * (784 * 256 + 2 * 256 * 256 + 2 * 256 * 10);
    expect(s.flops.backward).toBeGreaterThan(back);
    expect(s.flops.backward).toBeLessThan(back * 1.01);
    expect(s.flops.ratio).toBeCloseTo(s.flops.backward / s.flops.forward, 12);
    expect(s.memory.peakBytes).toBe(plan.peakBytes);
    expect(s.text).toMatch(/graph passes: fold 10→8/);
    expect(s.text).toMatch(/kernels: step 14 \(13 gradients \+ 1 update\)/);
    expect(s.text).toMatch(/memory: peak 4\.\d\d MiB/);
  });
});
