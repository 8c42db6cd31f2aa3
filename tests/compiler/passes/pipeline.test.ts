// The pass pipeline: its passes in order, each pass before → after (golden
// files), the whole pipeline on the xor and MNIST training graphs, stats,
// dumps, and verification after every pass.
import { afterEach, describe, expect, it } from "vitest";
import { graph } from "../../../compiler/dsl/graph.js";
import { Graph } from "../../../compiler/ir/graph.js";
import { grad } from "../../../compiler/autodiff/grad.js";
import { printGraph } from "../../../compiler/ir/printer.js";
import type { Pass } from "../../../compiler/passes/pipeline.js";
import {
  PIPELINE,
  algebraPass,
  cleanupPass,
  dcePass,
  foldConstantsPass,
  layoutPass,
  movementPass,
  runPipeline,
} from "../../../compiler/passes/pipeline.js";
import xor from "../../../examples/xor/model.js";
import mnist from "../../../examples/mnist/model.js";
import { errorMessage } from "../../helpers.js";
import { expectSameResults, feedsFor, mlp, outputsGraph, text } from "./util.js";

/** "# before" and "# after" one pass, as a golden file holds them. */
function beforeAfter(g: Graph, pass: Pass): string {
  const r = runPipeline(g, { passes: [pass], verify: true });
  expectSameResults(g, r.graph, feedsFor(g, 3), 1e-12);
  return `# ${pass.name}: before\n${text(g)}\n# after\n${text(r.graph)}\n`;
}

const countOp = (g: Graph, op: string) => g.nodes.filter((t) => t.op === op).length;

describe("the pipeline", () => {
  it("lists its passes in order", () => {
    expect(PIPELINE.map((p) => p.name)).toEqual(["foldConstants", "movement", "algebra", "layout", "cleanup"]);
  });

  it("on xor's training graph: golden result, fewer nodes, no transposes", async () => {
    const train = grad(xor);
    const r = runPipeline(train, { verify: true });
    await expect(text(r.graph) + "\n").toMatchFileSnapshot("./__snapshots__/xor.pipeline.txt");
    expect(r.stats[0]!.nodesBefore).toBe(train.nodes.length);
    expect(r.stats.at(-1)!.nodesAfter).toBe(r.graph.nodes.length);
    expect(r.graph.nodes.length).toBeLessThan(train.nodes.length);
    expect(countOp(r.graph, "transpose")).toBe(0);
  });

  it("on an MNIST MLP's training graph (784 → 256 → 10, batch 128): golden result", async () => {
    const r = runPipeline(grad(mlp(128)), { verify: true });
    await expect(text(r.graph) + "\n").toMatchFileSnapshot("./__snapshots__/mlp.pipeline.txt");
  });

  it("on the MNIST example's training graph: fewer nodes, no transposes, weight gradients as flagged matmuls", () => {
    const train = grad(mnist);
    const r = runPipeline(train, { verify: true });
    expect(r.graph.nodes.length).toBeLessThan(train.nodes.length);
    expect(countOp(r.graph, "transpose")).toBe(0);
    // every weight gradient is one flagged matmul: xᵀ·δ reads x in place
    const weights = mnist.params.filter((p) => p.shape.length === 2).map((p) => r.graph.grads[p.name]!);
    expect(weights.map((t) => [t.op, t.params])).toEqual(weights.map(() => ["matmul", { transposeA: true }]));
  });

  it("removes the transposes of a backward written with explicit ones (xᵀ·δ, δ·Wᵀ)", () => {
    // the shape of a backward before matmul had flags: transposed copies feeding plain matmuls
    const g = graph("explicit", (b) => {
      const x = b.input("x", [4, 3]);
      const W = b.param("W", [3, 2]);
      const d = b.input("d", [4, 2]);
      return { outputs: { dW: x.transpose().matmul(d), dx: d.matmul(W.transpose()) } };
    });
    const r = runPipeline(g, { verify: true });
    expect([countOp(g, "transpose"), countOp(r.graph, "transpose")]).toEqual([2, 0]);
    expect(r.graph.nodes.filter((t) => t.op === "matmul").map((t) => t.params)).toEqual([{ transposeA: true }, { transposeB: true }]);
    expectSameResults(g, r.graph, feedsFor(g, 9), 0);
  });
});

describe("each pass, before → after (golden files)", () => {
  it("dce", async () => {
    const g = graph("dce", (b) => {
      const x = b.input("x", [2, 3]);
      x.exp().mul(2).sum(); // read by nothing
      return { outputs: { y: x.tanh() } };
    });
    const r = runPipeline(g, { passes: [dcePass()] });
    expect(r.graph.ctx.nodes.length).toBe(2);
    expect(g.ctx.nodes.length).toBeGreaterThan(2);
    await expect(`${text(g)}\n# ctx: ${g.ctx.nodes.map((t) => t.op).join(" ")}\n# after\n${text(r.graph)}\n# ctx: ${r.graph.ctx.nodes.map((t) => t.op).join(" ")}\n`).toMatchFileSnapshot(
      "./__snapshots__/dce.txt",
    );
  });

  it("foldConstants", async () => {
    const g = outputsGraph((b) => {
      const x = b.input("x", [4, 1]);
      const scale = b.const(1).div(4).reshape([1, 1]).broadcastTo([4, 1]);
      return { y: scale.mul(x), z: b.const([1, 2]).mul(3).add(x.sum(0)) };
    });
    await expect(beforeAfter(g, foldConstantsPass())).toMatchFileSnapshot("./__snapshots__/foldConstants.txt");
  });

  it("movement", async () => {
    const g = outputsGraph((b) => {
      const x = b.input("x", [2, 3, 4]);
      const v = b.input("v", [4]);
      return {
        t: x.transpose([2, 0, 1]).transpose([1, 2, 0]).reshape([6, 4]).reshape([24]),
        b: v.reshape([1, 4]).broadcastTo([3, 4]).broadcastTo([2, 3, 4]),
        s: x.reshape([2, 1, 12]).sum(1).transpose([0, 1]),
      };
    });
    await expect(beforeAfter(g, movementPass())).toMatchFileSnapshot("./__snapshots__/movement.txt");
  });

  it("algebra", async () => {
    const g = outputsGraph((b) => {
      const x = b.input("x", [3]);
      const y = b.input("y", [2, 3]);
      return { a: x.mul(1).neg().neg().add(y.neg()), b: x.sub(0).div(1).mul(-1), c: b.input("s", []).broadcastTo([2, 3]).sum(0) };
    });
    await expect(beforeAfter(g, algebraPass())).toMatchFileSnapshot("./__snapshots__/algebra.txt");
  });

  it("layout", async () => {
    const g = outputsGraph((b) => {
      const q = b.input("q", [2, 5, 4]);
      const k = b.input("k", [2, 5, 4]);
      // attention scores q·kᵀ, and a product of two transposes
      return { scores: q.matmul(k.transpose([0, 2, 1])), tt: q.transpose([0, 2, 1]).matmul(k.transpose([0, 2, 1]).transpose([0, 2, 1])) };
    });
    await expect(beforeAfter(g, layoutPass())).toMatchFileSnapshot("./__snapshots__/layout.txt");
  });

  it("cleanup (on xor's training graph: what the other passes leave to it is nothing; alone it does all)", async () => {
    const train = grad(xor);
    await expect(beforeAfter(train, cleanupPass())).toMatchFileSnapshot("./__snapshots__/cleanup.txt");
    expect(text(runPipeline(train, { passes: [cleanupPass()] }).graph)).toBe(text(runPipeline(train).graph));
  });
});

describe("runPipeline", () => {
  const saved = process.env["GRADC_DEBUG"];
  afterEach(() => {
    if (saved === undefined) delete process.env["GRADC_DEBUG"];
    else process.env["GRADC_DEBUG"] = saved;
  });

  it("reports nodes before and after each pass, chained, with timings", () => {
    const r = runPipeline(grad(xor));
    expect(r.stats.map((s) => s.pass)).toEqual(PIPELINE.map((p) => p.name));
    r.stats.forEach((s, i) => {
      expect(s.ms).toBeGreaterThanOrEqual(0);
      expect(s.nodesAfter).toBeLessThanOrEqual(s.nodesBefore);
      if (i > 0) expect(s.nodesBefore).toBe(r.stats[i - 1]!.nodesAfter);
    });
    expect(r.dumps).toBeUndefined();
  });

  it("dumps the input and the graph after each pass, printed with comments", () => {
    const train = grad(xor);
    const r = runPipeline(train, { dump: true });
    expect(r.dumps!.map((d) => d.pass)).toEqual(["input", ...PIPELINE.map((p) => p.name)]);
    expect(r.dumps![0]!.text).toBe(printGraph(train));
    expect(r.dumps!.at(-1)!.text).toBe(printGraph(r.graph));
    expect(r.dumps![1]!.text).toMatch(/# grad of matmul at examples\/xor\/model\.ts:13/);
  });

  it("verifies after every pass when asked, or under GRADC_DEBUG, naming the pass that broke the graph", () => {
    const g = grad(xor);
    // a pass that swaps two gradients of different shapes
    const broken: Pass = { name: "swapGrads", run: (h) => h.with({ grads: { ...h.grads, W1: h.grads.b1!, b1: h.grads.W1! } }) };
    const passes = [movementPass(), broken, algebraPass()];
    delete process.env["GRADC_DEBUG"];
    expect(() => runPipeline(g, { passes })).not.toThrow();
    expect(errorMessage(() => runPipeline(g, { passes, verify: true }))).toMatch(/^pipeline: after pass "swapGrads": .*gradient of "W1" \[2,8\] but has shape \[8\]/);
    process.env["GRADC_DEBUG"] = "1";
    expect(errorMessage(() => runPipeline(g, { passes }))).toMatch(/after pass "swapGrads"/);
  });

  it("checks its input too, so a broken input is not blamed on a pass", () => {
    const g = grad(xor);
    const bad = new Graph(g.name, g.ctx, g.inputs, g.params, g.outputs.pred, g.outputs, g.grads);
    expect(errorMessage(() => runPipeline(bad, { verify: true }))).toMatch(/^pipeline: the pipeline's input: .*is the loss but is not a scalar/);
  });
});
