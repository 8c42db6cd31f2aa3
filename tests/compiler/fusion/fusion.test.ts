// Fused kernels against the reference interpreter: the examples and seeded
// random graphs give the interpreter's loss, gradients and outputs (f64 to
// 1e-10, f32 to float rounding) with fusion on, off, and with
// rematerialization; kernel counts of XOR, MNIST and softmax cross-entropy;
// readable kernels (names, one comment per node, source lines).
import { describe, expect, it } from "vitest";
import xor, { config as xorConfig } from "../../../examples/xor/model.js";
import neuron from "../../../examples/neuron/model.js";
import chainRule from "../../../examples/chainRule/model.js";
import mnist from "../../../examples/mnist/model.js";
import { graph } from "../../../compiler/dsl/graph.js";
import * as nn from "../../../compiler/dsl/nn.js";
import type { Graph } from "../../../compiler/ir/graph.js";
import type { Tensor } from "../../../compiler/ir/node.js";
import { concat } from "../../../compiler/dsl/functions.js";
import { grad } from "../../../compiler/autodiff/grad.js";
import { interpret } from "../../../compiler/interp/interpret.js";
import { kernelsOf } from "../../../compiler/lower/schedule.js";
import { printedNodes } from "../../../compiler/lower/names.js";
import { expectAllClose, randomArray, randomInts } from "../../helpers.js";
import { BACKENDS, execute, finest } from "../harness/harness.js";
import type { BackendName } from "../../../compiler/backends/index.js";
import { randomCase } from "../harness/randomGraphs.js";

interface Example {
  readonly graph: Graph;
  readonly feeds: Record<string, ArrayLike<number>>;
}

const EXAMPLES: Record<string, Example> = {
  xor: { graph: xor, feeds: { x: [0, 0, 0, 1, 1, 0, 1, 1], y: [0, 1, 1, 0] } },
  neuron: { graph: neuron, feeds: { x: [2], y: [1] } },
  chainRule: { graph: chainRule, feeds: {} },
  mnist: { graph: mnist, feeds: { x: randomArray(32 * 784, 3, 0, 1), y: randomInts(32, 10, 4) } },
};

const MODES = { fused: {}, unfused: { fusion: false }, remat: { remat: true } } as const;

/** Runs gradients() and forward() and compares with the interpreter (params at their initial values). */
function agrees(ex: Example, options: object, precision: "f32" | "f64", backend: BackendName): void {
  const run = execute(ex.graph, { ...options, dtype: precision, backend });
  for (const [k, v] of Object.entries(ex.feeds)) run.input(k, v);
  run.gradients();
  run.forward();
  const want = interpret(grad(ex.graph), ex.feeds, undefined, { precision });
  const tol = precision === "f64" ? { rtol: 1e-10, atol: 1e-12 } : { rtol: 2e-4, atol: 2e-5 };
  expectAllClose([run.loss()], [want.loss!], tol);
  const names = Object.keys(want.grads);
  expect(names.length).toBeGreaterThan(0);
  for (const p of names) expectAllClose(run.grad(p), want.grads[p]!.data, tol);
  for (const [o, v] of Object.entries(want.outputs)) expectAllClose(run.output(o), v.data, tol);
}

describe.each(BACKENDS)("fused kernels agree with the interpreter (%s backend)", (backend) => {
  for (const [name, ex] of Object.entries(EXAMPLES)) {
    for (const [mode, options] of Object.entries(MODES)) {
      it(`${name}, ${mode}: loss, gradients and outputs (${finest(backend)})`, () => agrees(ex, options, finest(backend), backend));
    }
    it(`${name}, fused: loss, gradients and outputs (f32)`, () => agrees(ex, {}, "f32", backend));
  }

  for (let seed = 1; seed <= 24; seed++) {
    it(`random graph #${seed}: fused, unfused and remat agree (${finest(backend)})`, () => {
      const c = randomCase(seed, 5 + (seed % 8));
      for (const options of Object.values(MODES)) agrees({ graph: c.graph, feeds: c.feeds }, options, finest(backend), backend);
    });
  }
});

/** A convolution, pooling and a dense layer; self-attention with batched matmuls and a layer norm; gather, concat, slice, pad and reductions to scalars. */
const ZOO: Record<string, Example> = {
  cnn: {
    graph: graph("cnn", (g) => {
      const x = g.input("x", [2, 6, 6, 3]);
      const y = g.input("y", [2], "i32");
      const h = x.conv2d(g.param("f", [3, 3, 3, 4], { init: "heNormal" }), 1, "same").add(g.param("cb", [4], { init: 0.1 })).relu().maxPool2d(2);
      const logits = h.reshape([2, 36]).matmul(g.param("W", [36, 5])).add(g.param("b", [5]));
      return { loss: nn.softmaxCrossEntropy(logits, y), outputs: { logits } };
    }),
    feeds: { x: randomArray(216, 1), y: randomInts(2, 5, 2) },
  },
  attention: {
    graph: graph("attention", (g) => {
      const x = g.input("x", [2, 5, 8]);
      const [q, k, v] = ["Wq", "Wk", "Wv"].map((n) => x.matmul(g.param(n, [8, 8]))) as [Tensor, Tensor, Tensor];
      const a = nn.softmax(q.matmul(k.transpose([0, 2, 1])).mul(1 / Math.sqrt(8)));
      const o = nn.layerNorm(a.matmul(v).add(x), g.param("gamma", [8], { init: 1 }), g.param("beta", [8]));
      return { loss: o.square().mean(), outputs: { o } };
    }),
    feeds: { x: randomArray(80, 3) },
  },
  indexing: {
    graph: graph("indexing", (g) => {
      const x = g.input("x", [4, 6]);
      const emb = g.param("E", [10, 6]).gather(g.input("idx", [4], "i32"));
      const h = concat([x.add(emb).tanh(), x.slice([0, 0], [4, 3])], 1).pad([[0, 0], [1, 2]], 0.5);
      const z = h.matmul(g.param("V", [12, 6])).mul(g.param("W", [6, 6]).sum(0)).sigmoid();
      return { loss: z.sum().add(z.max().mul(0.1)).add(h.min().mul(0.05)), outputs: { z } };
    }),
    feeds: { x: randomArray(24, 4), idx: [1, 7, 3, 9] },
  },
};

describe.each(BACKENDS)("fused kernels around convolutions, batched matmuls and indexing ops (%s backend)", (backend) => {
  for (const [name, ex] of Object.entries(ZOO)) {
    it(`${name}: fused, unfused, remat and clipped agree with the interpreter (${finest(backend)})`, () => {
      for (const options of [...Object.values(MODES), { gradClip: 0.5 }]) agrees(ex, options, finest(backend), backend);
    });
  }
});

/** A softmax cross-entropy over logits that are a param (so nothing else is computed). */
const ce = graph("ce", (g) => {
  const logits = g.param("logits", [8, 5], { init: { name: "uniform", min: -2, max: 2 } });
  const y = g.input("y", [8], "i32");
  return { loss: nn.softmaxCrossEntropy(logits, y) };
});

describe("kernel counts", () => {
  it("softmax cross-entropy: one forward kernel and one backward kernel (from 21 nodes unfused)", () => {
    const fused = execute(ce).schedule;
    const grads = kernelsOf(fused, "gradients");
    expect(grads.filter((k) => k.phase === "forward")).toHaveLength(1);
    expect(grads.filter((k) => k.phase === "backward")).toHaveLength(1);
    // the backward kernel writes dlogits straight into the gradient block: no copy kernel
    expect(grads.map((k) => k.name).some((n) => n.startsWith("copy"))).toBe(false);
    const unfused = kernelsOf(execute(ce, { fusion: false }).schedule, "gradients");
    expect(unfused.length).toBeGreaterThan(15);
    const run = execute(ce);
    run.input("y", [0, 1, 2, 3, 4, 0, 1, 2]);
    run.gradients();
    const want = interpret(grad(ce), { y: [0, 1, 2, 3, 4, 0, 1, 2] });
    expectAllClose(run.grad("logits"), want.grads["logits"]!.data, { rtol: 1e-5, atol: 1e-6 });
  });

  it("xor: 8 kernels for the gradients and 1 update loop (unfused: one per node and per param)", () => {
    const fused = execute(xor, { optimizer: xorConfig.optimizer! }).schedule;
    expect([kernelsOf(fused, "gradients").length, kernelsOf(fused, "update").length, kernelsOf(fused, "forward").length]).toEqual([8, 1, 2]);
    const unfused = execute(xor, { optimizer: xorConfig.optimizer!, fusion: false }).schedule;
    expect(kernelsOf(unfused, "update")).toHaveLength(4);
    expect(kernelsOf(unfused, "gradients").length).toBeGreaterThan(15);
  });

  it("mnist: 13 kernels for the gradients (3 matmuls with epilogues, one for the whole loss) and 1 update", () => {
    const s = execute(mnist).schedule;
    const grads = kernelsOf(s, "gradients");
    expect(grads).toHaveLength(13);
    expect(kernelsOf(s, "update")).toHaveLength(1);
    const forward = grads.filter((k) => k.phase === "forward");
    expect(forward.map((k) => k.node?.op)).toEqual(["matmul", "matmul", "matmul", "max"]);
    // the hidden layers' matmuls take the bias add and the ReLU
    expect(forward[0]!.nodes.map((t) => t.op)).toEqual(["matmul", "add", "relu"]);
    // the backward's matmuls into hidden layers take the ReLU mask: where(b > 0, δ·Wᵀ, 0)
    const masked = grads.filter((k) => k.phase === "backward" && k.node?.op === "matmul" && k.nodes.some((t) => t.op === "where"));
    expect(masked).toHaveLength(2);
    for (const k of masked) expect(k.nodes.map((t) => t.op)).toEqual(["matmul", "greater", "where"]);
  });
});

describe("readable kernels", () => {
  it("name a kernel after what it computes and list every node it computes, one comment line each, with its source", () => {
    const s = execute(xor).schedule;
    const printed = printedNodes(s.train);
    const first = kernelsOf(s, "gradients")[0]!;
    expect(first.name).toBe("matmul_x_W1_add_relu_2");
    expect(first.what).toMatch(/^a:f32\[4,8\] = matmul x W1 \(fused with b c\)$/);
    const comments = first.body.filter((st) => st.k === "comment").map((st) => (st as { text: string }).text);
    expect(comments).toEqual(first.nodes.map((t) => `${printed.get(t)!.binding}  # examples/xor/model.ts:10`));
    // backward kernels say which op's gradient they are
    const dW1 = kernelsOf(s, "gradients").find((k) => k.gradOf.join() === "W1" && k.node?.op === "matmul")!;
    expect(dW1.where).toBe("grad of matmul at examples/xor/model.ts:10");
  });
});
