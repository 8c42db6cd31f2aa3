// The kernel IR of real models: every kernel of every example (and of a transformer
// block) passes the verifier on every backend, after lowering and after each backend
// pass, and the printed IR of the XOR, MNIST and transformer-block training steps is
// held in golden files, reviewed in diffs like any other change the compiler emits.
import { describe, expect, it } from "vitest";
import { lowerGraph } from "../../../compiler/compile.js";
import type { ModelConfig } from "../../../compiler/config.js";
import { graph } from "../../../compiler/dsl/graph.js";
import * as nn from "../../../compiler/dsl/nn.js";
import type { Graph } from "../../../compiler/ir/graph.js";
import { printKernel } from "../../../compiler/kernel/printer.js";
import { kernelBuffers } from "../../../compiler/bundle/bundle.js";
import type { Schedule } from "../../../compiler/lower/schedule.js";
import * as chainRule from "../../../examples/chainRule/model.js";
import * as deepResidual from "../../../examples/deep/residual.js";
import * as deepSigmoid from "../../../examples/deep/sigmoid.js";
import * as mnist from "../../../examples/mnist/model.js";
import * as neuron from "../../../examples/neuron/model.js";
import * as xor from "../../../examples/xor/model.js";
import { BACKENDS, verifySchedule } from "../harness/harness.js";

/** A pre-norm transformer block: causal two-head self-attention and a ReLU MLP, each with a residual. */
export const transformerBlock = graph("transformerBlock", (g) => {
  const [B, T, D] = [2, 4, 8];
  const x = g.input("x", [B, T, D]);
  const ln = (name: string, t: typeof x) => nn.layerNorm(t, g.param(`${name}.gamma`, [D], { init: 1 }), g.param(`${name}.beta`, [D]));
  const h = x.add(nn.multiHeadAttention(g, "attn", ln("ln1", x), { heads: 2, causal: true }));
  const hidden = ln("ln2", h).matmul(g.param("mlp.W1", [D, 4 * D], { init: "heNormal" })).add(g.param("mlp.b1", [4 * D])).relu();
  const y = h.add(hidden.matmul(g.param("mlp.W2", [4 * D, D])).add(g.param("mlp.b2", [D])));
  return { loss: y.square().mean(), outputs: { y } };
});

// imported below the block, whose source lines the golden IR names
const cnn = await import("../../../examples/cnn/model.js");
const { languageModel } = await import("../../../examples/lm/model.js");

const MODELS: Record<string, { default: Graph; config?: ModelConfig }> = {
  xor,
  neuron,
  chainRule,
  mnist,
  deepResidual,
  deepSigmoid,
  transformerBlock: { default: transformerBlock },
  cnn,
  // the language model at a small size (the example's kernels differ only in their extents), with dropout
  lm: { default: languageModel("lm", { vocab: 12, seq: 8, dim: 16, heads: 2, layers: 2, mlp: 32 }, { batch: 2, dropout: 0.1 }) },
};

const lower = (name: string, backend?: (typeof BACKENDS)[number]): Schedule => {
  const m = MODELS[name]!;
  // the verifier runs after lowering and after each of the target's passes (and the tests below run it on the result)
  return lowerGraph(m.default, { ...(m.config ?? {}), ...(backend ? { backend } : {}) }, (_, after) => verifySchedule(after)).schedule;
};

describe.each(BACKENDS)("the %s backend's kernels", (backend) => {
  for (const name of Object.keys(MODELS)) {
    it(`${name}: every kernel verifies (indexes in bounds, variables bound, reductions marked)`, { timeout: 120_000 }, () => {
      const s = lower(name, backend);
      expect(s.target.name).toBe(backend);
      expect(s.kernels.length).toBeGreaterThan(0);
      verifySchedule(s);
    });
  }
});

/** The training step's kernels (gradients and update), printed in execution order. */
function stepIr(s: Schedule): string {
  const step = s.kernels.filter((k) => k.entry.includes("gradients") || k.phase === "update");
  return step.map((k) => printKernel(k.name, kernelBuffers(k), k.body)).join("\n");
}

describe("golden kernel IR of training steps (default backend)", () => {
  for (const name of ["xor", "mnist", "transformerBlock"]) {
    it(`${name}`, { timeout: 120_000 }, async () => {
      await expect(stepIr(lower(name))).toMatchFileSnapshot(`golden/${name}.step.kir`);
    });
  }
});
