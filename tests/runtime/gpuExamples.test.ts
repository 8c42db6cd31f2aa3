// Every example on the gpu device (WebGPU: Dawn on this machine's llvmpipe):
// one gradients call on a batch of the example's own shapes gives the loss
// and every gradient of the ts backend's bundle, from the same weights, to
// 1e-5 relative (elementwise, and of the model's largest gradient element). The language model runs
// at a small size (its kernels differ from the example's only in extents).
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { compile } from "../../compiler/compile.js";
import type { ModelConfig } from "../../compiler/config.js";
import type { Graph } from "../../compiler/ir/graph.js";
import { load } from "../../runtime/load.js";
import type { Feed } from "../../runtime/arena.js";
import * as chainRule from "../../examples/chainRule/model.js";
import * as neuron from "../../examples/neuron/model.js";
import * as xor from "../../examples/xor/model.js";
import * as mnist from "../../examples/mnist/model.js";
import * as cnn from "../../examples/cnn/model.js";
import * as deepResidual from "../../examples/deep/residual.js";
import * as deepSigmoid from "../../examples/deep/sigmoid.js";
import { languageModel } from "../../examples/lm/model.js";
import { expectAllClose, randomArray, randomInts } from "../helpers.js";

const root = mkdtempSync(join(os.tmpdir(), "gradc-gpu-examples-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const EXAMPLES: Record<string, { default: Graph; config?: ModelConfig }> = {
  chainRule,
  neuron,
  xor,
  mnist,
  cnn,
  deepResidual,
  deepSigmoid,
  lm: { default: languageModel("lm", { vocab: 12, seq: 8, dim: 16, heads: 2, layers: 2, mlp: 32 }, { batch: 2 }) },
};

describe("every example's gradients on WebGPU (the gpu device, Dawn) equal the ts backend's", () => {
  for (const [name, mod] of Object.entries(EXAMPLES)) {
    it(name, async () => {
      const compiled = (backend: "gpu" | "ts"): string => {
        const dir = join(root, `${name}-${backend}`);
        compile(mod.default, { ...(mod.config?.optimizer ? { optimizer: mod.config.optimizer } : {}), backend, outDir: dir });
        return dir;
      };
      const gpu = await load(compiled("gpu"));
      try {
        const ts = await load(compiled("ts"));
        expect(gpu.device.adapter).toMatch(/^WebGPU: /);
        for (const p of gpu.params.names()) ts.params.set(p, await gpu.params.getAsync(p));
        // f32 inputs in [-1, 1); integer inputs (labels, token ids) 0 or 1, valid for any class count
        const feeds: Record<string, Feed> = {};
        gpu.manifest.inputs.forEach((input, k) => {
          const size = input.shape.reduce((a, b) => a * b, 1);
          feeds[input.name] = input.dtype === "i32" ? randomInts(size, 2, 100 + k) : Float32Array.from(randomArray(size, 100 + k));
        });
        const want = ts.gradients(feeds);
        const got = await gpu.gradientsAsync(feeds);
        expect(Math.abs(got.loss - want.loss)).toBeLessThanOrEqual(1e-5 * Math.abs(want.loss));
        expect(Object.keys(got.grads).sort()).toEqual(Object.keys(want.grads).sort());
        // 1e-5 relative to the model's largest gradient element: a gradient that is zero in exact arithmetic (a key bias's, under softmax) is f32 noise on both
        let scale = 0;
        for (const g of Object.values(want.grads)) for (const v of g) scale = Math.max(scale, Math.abs(v));
        expect(scale).toBeGreaterThan(0);
        for (const [p, g] of Object.entries(want.grads)) {
          try {
            expectAllClose(got.grads[p], g, { rtol: 1e-5, atol: 1e-5 * scale });
          } catch (e) {
            throw new Error(`d${p}: ${(e as Error).message}`);
          }
        }
      } finally {
        await gpu.close();
      }
    }, 300_000);
  }
});
