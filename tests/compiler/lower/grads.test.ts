// Compiled gradients() on every backend against the interpreter's gradients
// of grad(graph), in f64 where the backend has it, and against central
// finite differences of the compiled loss (f64 backends: in f32 a difference
// of two losses a step h apart keeps too few digits to check a gradient).
import { afterAll, describe, expect, it } from "vitest";
import xor from "../../../examples/xor/model.js";
import neuron from "../../../examples/neuron/model.js";
import chainRule from "../../../examples/chainRule/model.js";
import mnist from "../../../examples/mnist/model.js";
import { graph } from "../../../compiler/dsl/graph.js";
import * as nn from "../../../compiler/dsl/nn.js";
import type { Graph } from "../../../compiler/ir/graph.js";
import { grad } from "../../../compiler/autodiff/grad.js";
import { initialParams, interpret } from "../../../compiler/interp/interpret.js";
import { expectAllClose, randomArray, randomInts, seededRandom } from "../../helpers.js";
import type { BackendName } from "../../../compiler/backends/index.js";
import { BACKENDS, cleanupBundles, finest, loadShared } from "../harness/harness.js";
import { TOKENS, tokenModel } from "./tokenModel.js";
import type { Loaded } from "../harness/harness.js";

afterAll(cleanupBundles);

/** A two-layer MLP on 6 examples of 5 features, 3 classes, softmax cross-entropy. */
const mlp = graph("mlp", (g) => {
  const x = g.input("x", [6, 5]);
  const y = g.input("y", [6], "i32");
  const W1 = g.param("W1", [5, 7], { init: "heNormal" });
  const b1 = g.param("b1", [7], { init: { name: "uniform", min: -0.1, max: 0.1 } });
  const W2 = g.param("W2", [7, 3]);
  const b2 = g.param("b2", [3], { init: { name: "uniform", min: -0.1, max: 0.1 } });
  const h = x.matmul(W1).add(b1).tanh();
  const logits = h.matmul(W2).add(b2);
  return { loss: nn.softmaxCrossEntropy(logits, y), outputs: { logits } };
});

interface Example {
  readonly graph: Graph;
  readonly feeds: Record<string, ArrayLike<number>>;
  /** How far the params are moved off their initial values (default 0.2, uniform ±jitter/2). */
  readonly jitter?: number;
}

const EXAMPLES: Record<string, Example> = {
  xor: { graph: xor, feeds: { x: [0, 0, 0, 1, 1, 0, 1, 1], y: [0, 1, 1, 0] } },
  neuron: { graph: neuron, feeds: { x: [2], y: [1] } },
  chainRule: { graph: chainRule, feeds: {} },
  mlp: { graph: mlp, feeds: { x: randomArray(30, 11), y: randomInts(6, 3, 12) } },
  // [B, S, D]·W[D, N] and o·Vᵀ as one 2-D product each (forward, dx and dW over K = B·S), beside a batched product
  tokens: {
    graph: tokenModel,
    feeds: {
      x: randomArray(TOKENS.batch * TOKENS.seq * TOKENS.d, 15),
      x4: randomArray(TOKENS.batch * TOKENS.seq * TOKENS.d, 16),
      y: randomArray(TOKENS.batch * TOKENS.seq * TOKENS.out, 17),
    },
  },
  mnist: { graph: mnist, feeds: { x: randomArray(32 * 784, 13, 0, 1), y: randomInts(32, 10, 14) }, jitter: 0.02 },
};

/** The example's bundle on `backend` in its finest precision (compiled once for both tests), loaded, its feeds written. */
async function load(ex: Example, backend: BackendName): Promise<Loaded> {
  const b = await loadShared(ex.graph, { backend, dtype: finest(backend) });
  for (const [k, v] of Object.entries(ex.feeds)) b.input(k, v);
  return b;
}

/** The compiled loss at the current params. */
function lossAt(b: Loaded): number {
  b.gradients();
  return b.loss();
}

describe.each(BACKENDS)("compiled gradients (%s backend)", (backend) => {
  const precision = finest(backend);
  // f32 kernels sum in another order than the f64 interpreter: agreement to f32 rounding
  const tol = precision === "f64" ? { rtol: 1e-12, atol: 1e-12 } : { rtol: 2e-4, atol: 2e-5 };
  for (const [name, ex] of Object.entries(EXAMPLES)) {
    it(`${name}: gradients() match the interpreter's grad(graph) (${precision === "f64" ? "to 1e-12" : "to f32 rounding"})`, async () => {
      const b = await load(ex, backend);
      b.gradients();
      const want = interpret(grad(ex.graph), ex.feeds, initialParams(ex.graph), { precision: "f64" });
      if (precision === "f64") expect(b.loss()).toBeCloseTo(want.loss!, 12);
      else expect(Math.abs(b.loss() - want.loss!)).toBeLessThanOrEqual(tol.atol + tol.rtol * Math.abs(want.loss!));
      const names = Object.keys(want.grads);
      expect(names.length).toBeGreaterThan(0);
      for (const p of names) expectAllClose(b.grad(p), want.grads[p]!.data, tol);
    });

    if (precision !== "f64") continue;
    it(`${name}: gradients() match central finite differences along random directions`, async () => {
      const b = await load(ex, backend);
      const params = b.manifest.params.filter((p) => p.trainable).map((p) => p.name);
      // a generic point: at the initial zeros of a bias, xor's ReLU sits exactly on its kink
      const rand = seededRandom(7);
      const jitter = ex.jitter ?? 0.2;
      const base = Object.fromEntries(params.map((p) => [p, b.param(p).map((v) => v + jitter * (rand() - 0.5))]));
      for (const p of params) b.param(p, base[p]!);
      b.gradients();
      const grads = Object.fromEntries(params.map((p) => [p, b.grad(p)]));
      const h = 1e-5;
      for (let trial = 0; trial < 3; trial++) {
        const dir = Object.fromEntries(params.map((p) => [p, base[p]!.map(() => rand() * 2 - 1)]));
        // a unit direction: the step h moves the params by h in all, however many there are
        const norm = Math.sqrt(params.reduce((s, p) => s + dir[p]!.reduce((a, v) => a + v * v, 0), 0));
        for (const p of params) dir[p] = dir[p]!.map((v) => v / norm);
        const shifted = (sign: number) => {
          for (const p of params) b.param(p, base[p]!.map((v, i) => v + sign * h * dir[p]![i]!));
          return lossAt(b);
        };
        const fd = (shifted(1) - shifted(-1)) / (2 * h);
        let analytic = 0;
        for (const p of params) grads[p]!.forEach((g, i) => (analytic += g * dir[p]![i]!));
        expect(Math.abs(fd - analytic)).toBeLessThan(1e-6 * Math.max(1, Math.abs(analytic)));
      }
    });
  }
});
