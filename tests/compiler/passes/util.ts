// Helpers shared by the pass tests: tiny graphs rewritten and printed, seeded
// feeds for any graph, and "same loss, outputs and gradients" in float64.
import { expect } from "vitest";
import { graph } from "../../../compiler/dsl/graph.js";
import * as nn from "../../../compiler/dsl/nn.js";
import type { GraphBuilder } from "../../../compiler/dsl/graph.js";
import type { Graph } from "../../../compiler/ir/graph.js";
import type { Tensor } from "../../../compiler/ir/node.js";
import { printGraph } from "../../../compiler/ir/printer.js";
import { verifyGraph } from "../../../compiler/ir/verify.js";
import { interpret } from "../../../compiler/interp/interpret.js";
import type { Feeds } from "../../../compiler/interp/interpret.js";
import type { Fired, Rule } from "../../../compiler/passes/rewrite.js";
import { rewriteCounted } from "../../../compiler/passes/rewrite.js";
import { expectAllClose, randomArray, randomInts } from "../../helpers.js";

/** A graph "t" whose outputs are what `build` returns. */
export function outputsGraph(build: (g: GraphBuilder) => Record<string, Tensor>): Graph {
  return graph("t", (g) => ({ outputs: build(g) }));
}

/**
 * An MNIST-style MLP (784 → hidden ReLU layers → 10, softmax cross-entropy) of
 * a fixed architecture, so golden files do not follow edits to the example.
 */
export function mlp(batch: number, hidden: readonly number[] = [256]): Graph {
  return graph("mlp", (g) => {
    const x = g.input("x", [batch, 784]);
    const y = g.input("y", [batch], "i32");
    let h = x;
    [...hidden, 10].forEach((n, i) => {
      const W = g.param(`W${i + 1}`, [h.shape[1]!, n], { init: "heNormal" });
      const z = h.matmul(W).add(g.param(`b${i + 1}`, [n]));
      h = i < hidden.length ? z.relu() : z;
    });
    return { loss: nn.softmaxCrossEntropy(h, y), outputs: { logits: h } };
  });
}

/** The printed graph without comments: the form golden tests compare. */
export const text = (g: Graph): string => printGraph(g, { comments: false });

/** Seeded values for every input and param of `g`: floats in [-2, 2), i32 in [0, 4), bools 0/1. */
export function feedsFor(g: Graph, seed: number): Record<string, Float64Array> {
  const out: Record<string, Float64Array> = {};
  [...g.inputs, ...g.params].forEach((s, i) => {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const k = seed * 101 + i;
    out[s.name] =
      s.dtype === "i32" ? Float64Array.from(randomInts(n, 4, k)) : s.dtype === "bool" ? Float64Array.from(randomInts(n, 2, k)) : randomArray(n, k, -2, 2);
  });
  return out;
}

/**
 * Asserts that two graphs compute the same loss, outputs and gradients in the
 * float64 interpreter, within `tol` (NaN matches NaN, infinities exactly).
 */
export function expectSameResults(before: Graph, after: Graph, feeds: Feeds, tol = 1e-9): void {
  const a = interpret(before, feeds, {}, { precision: "f64" });
  const b = interpret(after, feeds, {}, { precision: "f64" });
  expect(Object.keys(b.outputs)).toEqual(Object.keys(a.outputs));
  expect(Object.keys(b.grads)).toEqual(Object.keys(a.grads));
  if (a.loss !== undefined) expectAllClose([b.loss!], [a.loss], { rtol: tol, atol: tol });
  for (const k of Object.keys(a.outputs)) {
    expect(b.outputs[k]!.shape, `output ${k}`).toEqual(a.outputs[k]!.shape);
    expectAllClose(b.outputs[k]!, a.outputs[k]!, { rtol: tol, atol: tol });
  }
  for (const k of Object.keys(a.grads)) {
    expect(b.grads[k]!.shape, `gradient ${k}`).toEqual(a.grads[k]!.shape);
    expectAllClose(b.grads[k]!, a.grads[k]!, { rtol: tol, atol: tol });
  }
}

/** Rules fired by any `rewritten` call so far, for the coverage check. */
export const firedSoFar: Fired = {};

/**
 * Rewrites `g` with `rules`, checks the result verifies and computes the same
 * values on seeded feeds (exactly, unless `tol` allows rounding), and returns
 * both printed forms and what fired.
 */
export function rewritten(g: Graph, rules: readonly Rule[], feeds?: Feeds, tol = 0): { before: string; after: string; fired: Fired; graph: Graph } {
  const r = rewriteCounted(g, rules);
  verifyGraph(r.graph);
  expectSameResults(g, r.graph, feeds ?? feedsFor(g, 1), tol);
  for (const [k, n] of Object.entries(r.fired)) firedSoFar[k] = (firedSoFar[k] ?? 0) + n;
  return { before: text(g), after: text(r.graph), fired: r.fired, graph: r.graph };
}
