// The pipeline keeps meaning: on the examples and on 300 seeded random graphs,
// the loss, outputs and every gradient through the float64 interpreter are the
// same before and after, the verifier passes after every pass, and the result
// is a fixpoint of the rules.
import { describe, expect, it } from "vitest";
import type { Graph } from "../../../compiler/ir/graph.js";
import { grad } from "../../../compiler/autodiff/grad.js";
import { runPipeline } from "../../../compiler/passes/pipeline.js";
import { rewriteCounted } from "../../../compiler/passes/rewrite.js";
import { ALGEBRA, FOLD, LAYOUT, MOVEMENT, swapsLastTwo } from "../../../compiler/passes/rules.js";
import xor from "../../../examples/xor/model.js";
import neuron from "../../../examples/neuron/model.js";
import chainRule from "../../../examples/chainRule/model.js";
import mnist from "../../../examples/mnist/model.js";
import { expectSameResults, feedsFor, mlp } from "./util.js";
import { randomGraph } from "./randomGraph.js";

const ALL = [...FOLD, ...MOVEMENT, ...ALGEBRA, ...LAYOUT];

/** Runs the whole pipeline (verifying after every pass) and checks the results against the input graph's. */
function check(g: Graph, seed: number, tol: number): { train: Graph; result: Graph } {
  const train = grad(g);
  const r = runPipeline(train, { verify: true });
  expectSameResults(train, r.graph, feedsFor(g, seed), tol);
  return { train, result: r.graph };
}

describe("the pipeline keeps every value", () => {
  it("on the examples: xor, neuron, chainRule, mnist, and an MLP with batch 8", () => {
    for (const [g, seed] of [[xor, 1], [neuron, 2], [chainRule, 3], [mnist, 4], [mlp(8, [64, 32]), 5]] as const) {
      const { train, result } = check(g, seed, 1e-12);
      expect(result.nodes.length, g.name).toBeLessThanOrEqual(train.nodes.length);
    }
  });

  it("on 300 random graphs, and leaves each a fixpoint of the rules with no transpose feeding a matmul", () => {
    let shrunk = 0;
    let transposesIn = 0;
    for (let seed = 0; seed < 300; seed++) {
      const g = randomGraph(seed);
      const { train, result } = check(g, seed, 1e-9);
      if (result.nodes.length < train.nodes.length) shrunk++;
      transposesIn += train.nodes.filter((t) => t.op === "matmul" && t.inputs.some((x) => x.op === "transpose" && swapsLastTwo(x))).length;
      expect(rewriteCounted(result, ALL).fired, `graph ${seed}`).toEqual({});
      const fed = result.nodes.filter((t) => t.op === "matmul" && t.inputs.some((x) => x.op === "transpose" && swapsLastTwo(x)));
      expect(fed, `graph ${seed}`).toEqual([]);
    }
    // the graphs exercise the rules: most shrink, and the layout rule had work to do
    expect(shrunk).toBeGreaterThan(200);
    expect(transposesIn).toBeGreaterThan(50);
  }, 300_000); // 300 graphs through the pipeline and the interpreter: over a minute on a loaded 2-core machine
});
