// Convolutions as WebAssembly products (the wasm backend's packConvs pass):
// conv2d and both of its gradients, over strides, "same" and "valid"
// padding, odd image sizes, uneven windows and channel counts that are no
// multiple of 4, give the loss and gradients of the f64 interpreter to f32
// rounding; every kernel verifies after each pass, and each of the three
// convolution kernels of a step did become a product.
import { describe, expect, it } from "vitest";
import { graph } from "../../../../compiler/dsl/graph.js";
import { grad } from "../../../../compiler/autodiff/grad.js";
import { interpret } from "../../../../compiler/interp/interpret.js";
import type { Padding, Pair } from "../../../../compiler/ir/kinds.js";
import { lowerGraph } from "../../../../compiler/compile.js";
import { convNest, packConvs } from "../../../../compiler/backends/wasm/convWasm.js";
import { bind, verifySchedule } from "../../harness/harness.js";
import { expectAllClose, randomArray } from "../../../helpers.js";

interface Case {
  readonly x: [number, number, number, number];
  readonly f: [number, number, number, number];
  readonly s: Pair;
  readonly pad: Padding;
}

const CASES: Case[] = [
  { x: [3, 11, 13, 5], f: [3, 3, 5, 7], s: [1, 1], pad: "same" },
  { x: [3, 11, 13, 5], f: [3, 3, 5, 7], s: [2, 2], pad: "valid" },
  // an even window with "same" padding (more after than before), stride along the height only
  { x: [2, 12, 9, 6], f: [5, 4, 6, 9], s: [2, 1], pad: "same" },
  // stride past the window: image cells that no window reads
  { x: [4, 16, 16, 3], f: [2, 2, 3, 20], s: [3, 3], pad: "valid" },
  // one input channel, as a first layer on grey images
  { x: [4, 15, 15, 1], f: [3, 3, 1, 10], s: [2, 2], pad: "same" },
];

const CONV_OPS = new Set(["conv2d", "conv2dBackpropInput", "conv2dBackpropFilter"]);

describe("conv2d and its gradients as WebAssembly products", () => {
  it.each(CASES)("x $x, filter $f, strides $s, $pad: the interpreter's loss and gradients, all three as products", (c) => {
    const g = graph("conv", (b) => {
      // the image is a param too, so that the step computes conv2dBackpropInput
      const x = b.param("x", c.x);
      const f = b.param("f", c.f);
      const y = x.conv2d(f, c.s, c.pad);
      const r = b.const(randomArray(y.shape, 5), y.shape);
      return { loss: y.mul(r).sum().add(y.square().mean()) };
    });
    const params = { x: randomArray(c.x, 1), f: randomArray(c.f, 2) };
    const want = interpret(grad(g), {}, params, { precision: "f64" });
    const { schedule, plan } = lowerGraph(g, { backend: "wasm", dtype: "f32" }, (_, s) => verifySchedule(s));
    const convs = schedule.kernels.filter((k) => k.node && CONV_OPS.has(k.node.op));
    expect(convs.map((k) => k.node!.op).sort()).toEqual([...CONV_OPS].sort());
    for (const k of convs) expect(k.extern?.data["k"], k.name).toBeGreaterThan(0);
    const run = bind(schedule, plan);
    for (const [name, v] of Object.entries(params)) run.param(name, v);
    run.gradients();
    expect(Math.abs(run.loss() - want.loss!)).toBeLessThan(1e-4 * (1 + Math.abs(want.loss!)));
    for (const name of ["x", "f"]) expectAllClose(run.grad(name), want.grads[name]!.data, { rtol: 1e-4, atol: 1e-4 });
  }, 60_000);

  it("leaves f64 kernels and small convolutions to JavaScript", () => {
    const g = graph("small", (b) => ({ loss: b.param("x", [1, 4, 4, 2]).conv2d(b.param("f", [3, 3, 2, 2]), 1, "same").sum() }));
    for (const dtype of ["f32", "f64"] as const) {
      const { schedule } = lowerGraph(g, { backend: "wasm", dtype });
      expect(schedule.kernels.some((k) => k.extern)).toBe(false);
    }
    const big = graph("big", (b) => ({ loss: b.param("x", [2, 16, 16, 8]).conv2d(b.param("f", [3, 3, 8, 8]), 1, "same").sum() }));
    expect(lowerGraph(big, { backend: "wasm", dtype: "f64" }).schedule.kernels.some((k) => k.extern)).toBe(false);
    expect(lowerGraph(big, { backend: "wasm", dtype: "f32" }).schedule.kernels.some((k) => k.extern)).toBe(true);
  });

  it("recognizes the lowered nest of each convolution, and no other product shape", () => {
    const g = graph("nests", (b) => ({ loss: b.param("x", [2, 9, 9, 4]).conv2d(b.param("f", [3, 3, 4, 6]), 2, "same").relu().sum() }));
    const { schedule } = lowerGraph(g, { backend: "ts", dtype: "f32" });
    for (const k of schedule.kernels) {
      const nest = k.body.map(convNest).find((n) => n);
      if (k.node && CONV_OPS.has(k.node.op)) {
        expect(nest, k.name).toBeDefined();
        // three reduction loops (the window's two axes and the channels, or the batch and the output's two axes)
        expect(nest!.sums.length).toBe(3);
      }
      // the pass changes no kernel of another op
      if (!k.node || !CONV_OPS.has(k.node.op)) expect(packConvs.run(k, { precision: "f32" })).toBe(k);
    }
  });
});

describe("pooling in WebAssembly", () => {
  it("gives the ts backend's values bit for bit (ties, same padding, strides past the window), forward and backward", () => {
    const g = graph("pools", (b) => {
      // small integers: ties, where the first maximum of a window wins
      const x = b.param("x", [3, 17, 15, 6]);
      const r = (t: ReturnType<typeof x.maxPool2d>, seed: number) => t.mul(b.const(randomArray(t.shape, seed), t.shape)).sum();
      const loss = r(x.maxPool2d(2), 1)
        .add(r(x.maxPool2d(3, 2, "same"), 2))
        .add(r(x.maxPool2d([2, 3], [3, 4], "valid"), 3))
        .add(r(x.avgPool2d(2), 4))
        .add(r(x.avgPool2d(3, 2, "same"), 5));
      return { loss };
    });
    const x = randomArray([3, 17, 15, 6], 9).map((v) => Math.round(v * 3));
    const run = (backend: "ts" | "wasm") => {
      const { schedule, plan } = lowerGraph(g, { backend, dtype: "f32" }, (_, s) => verifySchedule(s));
      const r = bind(schedule, plan);
      r.param("x", x);
      r.gradients();
      return { schedule, loss: r.loss(), grad: Array.from(r.grad("x")) };
    };
    const ts = run("ts");
    const wasm = run("wasm");
    const pools = wasm.schedule.kernels.filter((k) => k.node && /Pool2d/.test(k.node.op));
    expect(new Set(pools.map((k) => k.node!.op))).toEqual(new Set(["maxPool2d", "maxPool2dGrad", "avgPool2d", "avgPool2dGrad"]));
    for (const k of pools) expect(k.body.some((s) => s.k === "extern" && s.call === "run"), k.name).toBe(true);
    expect(wasm.loss).toBe(ts.loss);
    expect(wasm.grad).toEqual(ts.grad);
    const want = interpret(grad(g), {}, { x }, { precision: "f64" });
    expectAllClose(wasm.grad, want.grads["x"]!.data, { rtol: 1e-5, atol: 1e-5 });
  }, 60_000);
});
