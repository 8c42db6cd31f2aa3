// Products of a batched activation by a 2-D weight, x[B, S, D]·W[D, N], are
// one 2-D product over B·S rows on every backend: in the forward and in dx
// (lowering folds the batch loops into the rows), and in dW (the
// sumBatchedMatmul rule: one product over K = B·S, no batched product summed
// over its batches after). A product with both operands batched keeps its
// batch loop. In f32 (WebAssembly's packed products included) the gradients
// agree with the interpreter's to f32 rounding; grads.test.ts checks this
// model in f64 against the interpreter and finite differences.
import { describe, expect, it } from "vitest";
import { lowerGraph } from "../../../compiler/compile.js";
import type { Tensor } from "../../../compiler/ir/node.js";
import type { Schedule, Kernel } from "../../../compiler/lower/schedule.js";
import type { Stmt } from "../../../compiler/kernel/kir.js";
import { visitKir } from "../../../compiler/kernel/kir.js";
import { grad } from "../../../compiler/autodiff/grad.js";
import { initialParams, interpret } from "../../../compiler/interp/interpret.js";
import { BACKENDS, bind, verifySchedule } from "../harness/harness.js";
import { expectAllClose, randomArray } from "../../helpers.js";
import { TOKENS, tokenModel } from "./tokenModel.js";

/** Whether a matmul multiplies a batched, untransposed A by an unbatched B (a weight). */
function byWeight(t: Tensor): boolean {
  const [a, b] = t.inputs as [Tensor, Tensor];
  return a.rank > 2 && t.p("matmul").transposeA !== true && b.shape.slice(0, -2).every((d) => d === 1);
}

/** Whether both operands of a matmul are batched. */
const bothBatched = (t: Tensor): boolean => t.inputs.every((x) => x.shape.slice(0, -2).some((d) => d > 1));

/** The matmul kernels of a schedule whose anchor passes `which`. */
const products = (s: Schedule, which: (t: Tensor) => boolean): Kernel[] => s.kernels.filter((k) => k.node?.op === "matmul" && which(k.node));

/** The sizes of the loops of a kernel body by variable. */
function loops(body: readonly Stmt[]): Map<string, number> {
  const out = new Map<string, number>();
  visitKir(body, { stmt: (x) => void (x.k === "for" && out.set(x.v, x.to - x.from)) });
  return out;
}

describe.each(BACKENDS)("products by a 2-D weight (%s backend)", (backend) => {
  let lowered: Schedule | undefined;
  const result = lowerGraph(tokenModel, { backend }, (stage, s) => {
    verifySchedule(s);
    if (stage === "lowering") lowered = s;
  });
  const graph = result.passes.graph;

  it("run the forward and dx as one product over every row: no batch loop", () => {
    const weight = products(lowered!, byWeight);
    // x·W, h·Vᵀ, x4·W and dh = do·V
    expect(weight.length).toBeGreaterThanOrEqual(4);
    for (const k of weight) {
      const ls = loops(k.body);
      expect([...ls.keys()].filter((v) => /^t\d+$/.test(v)), k.name).toEqual([]);
      const rows = k.node!.shape.slice(0, -1).reduce((a, b) => a * b, 1);
      expect(ls.get("i"), k.name).toBe(rows);
    }
    // a product of two batched operands keeps one product per batch
    const batched = products(lowered!, bothBatched);
    expect(batched.length).toBeGreaterThan(0);
    for (const k of batched) expect(loops(k.body).get("t0"), k.name).toBe(TOKENS.batch);
  });

  it("compute each weight's gradient as one 2-D product, with no batched product and no batch sum", () => {
    const flat = (t: Tensor) => t.op === "matmul" && t.rank === 2 && t.inputs.every((x) => x.rank === 2) && t.p("matmul").transposeA === true;
    // V is read in one product, through a transpose (whose gradient transposes dVᵀ back); W in two (x·W and x4·W), whose gradients add up
    const dV = graph.grads["V"]!;
    expect(dV.op).toBe("transpose");
    expect(flat(dV.inputs[0]!)).toBe(true);
    const dW = graph.grads["W"]!;
    expect(dW.op).toBe("add");
    expect(dW.inputs.every(flat)).toBe(true);
    expect(dW.inputs.map((t) => t.inputs[0]!.shape[0])).toEqual(expect.arrayContaining([TOKENS.batch * TOKENS.seq]));
    // no kernel sums a product over its batches
    for (const k of result.schedule.kernels) {
      const sums = k.nodes.filter((t) => t.op === "sum" && t.inputs[0]!.op === "matmul");
      expect(sums.map(String), k.name).toEqual([]);
    }
    for (const name of ["W", "V"]) {
      const own = result.schedule.kernels.filter((k) => k.node?.op === "matmul" && k.gradOf.includes(name) && k.node.rank > 2 && !byWeight(k.node) && !bothBatched(k.node));
      expect(own.map((k) => k.name), name).toEqual([]);
    }
  });

  it("give the interpreter's gradients in f32", () => {
    const feeds = Object.fromEntries(tokenModel.inputs.map((x, i) => [x.name, randomArray(x.shape, 40 + i)]));
    const run = bind(result.schedule, result.plan);
    for (const [name, v] of Object.entries(feeds)) run.input(name, v);
    run.gradients();
    const want = interpret(grad(tokenModel), feeds, initialParams(tokenModel), { precision: "f64" });
    expect(Math.abs(run.loss() - want.loss!)).toBeLessThan(1e-5 * (1 + Math.abs(want.loss!)));
    for (const p of ["W", "b", "V"]) expectAllClose(run.grad(p), want.grads[p]!.data, { rtol: 2e-4, atol: 2e-5 });
  });

  if (backend === "wasm") {
    it("pack each weight once: its products run in WebAssembly unbatched, the batched product batched", () => {
      const inWasm = (which: (t: Tensor) => boolean) => products(result.schedule, which).filter((k) => k.extern);
      // x·W, h·Vᵀ, x4·W, do·V, and dW (twice) and dVᵀ over K = B·S
      const weight = inWasm((t) => byWeight(t) || (t.rank === 2 && t.p("matmul").transposeA === true));
      expect(weight.length).toBeGreaterThanOrEqual(7);
      for (const k of weight) expect(k.extern!.data["batches"], k.name).toBeUndefined();
      const batched = inWasm(bothBatched);
      expect(batched.length).toBeGreaterThan(0);
      for (const k of batched) expect(k.extern!.data["batches"], k.name).toBe(TOKENS.batch);
    });
  }
});
