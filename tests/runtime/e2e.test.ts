// End to end through the real compiler: examples compiled into temp folders,
// trained by the generated trainer's main(), checked against known numbers.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { compile } from "../../compiler/compile.js";
import type { Graph } from "../../compiler/ir/graph.js";
import type { ModelConfig } from "../../compiler/config.js";
import { load } from "../../runtime/load.js";
import { main } from "../../runtime/trainer.js";
import * as neuron from "../../examples/neuron/model.js";
import * as xor from "../../examples/xor/model.js";
import { expectAllClose } from "../helpers.js";

const root = mkdtempSync(join(tmpdir(), "gradc-e2e-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function build(name: string, model: { default: Graph; config: ModelConfig }, extra: Partial<ModelConfig> = {}): string {
  const outDir = join(root, name);
  compile(model.default, { ...model.config, ...extra, outDir });
  return outDir;
}

const quiet = { log: () => {}, progress: false };
const xorBatch = { x: [0, 0, 0, 1, 1, 0, 1, 1], y: [0, 1, 1, 0] };

describe("compiled examples", () => {
  it("neuron: one SGD step gives the hand-computed w and b", async () => {
    const dir = build("neuron", neuron);
    const summary = (await main(dir, [], quiet))!;
    expect(summary.steps).toBe(1);
    // loss before the step: (σ(1) − 1)²
    expect(summary.finalLoss).toBeCloseTo((1 / (1 + Math.exp(-1)) - 1) ** 2, 6);
    const t = await load(dir);
    t.restore(summary.checkpoint);
    expect(t.params.get("w")[0]).toBeCloseTo(0.5211508, 6);
    expect(t.params.get("b")[0]).toBeCloseTo(0.0105754, 6);
  });

  it("xor: 1000 Adam steps reach a loss below 1e-3 and predict the table", async () => {
    const dir = build("xor", xor);
    const summary = (await main(dir, [], quiet))!;
    expect(summary.steps).toBe(1000);
    expect(summary.finalLoss).toBeLessThan(1e-3);
    const t = await load(dir);
    t.restore(summary.checkpoint);
    expectAllClose(t.predict({ x: xorBatch.x })["pred"], [0, 1, 1, 0], { atol: 0.1, rtol: 0 });
  });

  it("a compiled bundle resumes from a checkpoint exactly", async () => {
    const dir = build("xor-resume", xor);
    const a = await load(dir);
    for (let i = 0; i < 10; i++) a.step(xorBatch);
    const file = join(root, "xor-10.safetensors");
    a.save(file);
    for (let i = 0; i < 10; i++) a.step(xorBatch);
    const b = await load(dir);
    b.restore(file);
    for (let i = 0; i < 10; i++) b.step(xorBatch);
    for (const name of a.params.names()) expect(Array.from(b.params.get(name))).toEqual(Array.from(a.params.get(name)));
    expect(b.stepCount).toBe(20);
  });

  it("f64 bundles give gradients that match central differences", async () => {
    const dir = build("xor-f64", xor, { dtype: "f64" });
    const t = await load(dir);
    const { grads } = t.gradients(xorBatch);
    const W1 = t.params.get("W1");
    expect(W1).toBeInstanceOf(Float64Array);
    const h = 1e-6;
    const numeric = Array.from(W1, (_, i) => {
      const at = (d: number) => {
        const w = Float64Array.from(W1);
        w[i]! += d;
        t.params.set("W1", w);
        return t.gradients(xorBatch).loss;
      };
      return (at(h) - at(-h)) / (2 * h);
    });
    expectAllClose(grads["W1"], numeric, { rtol: 1e-5, atol: 1e-7 });
    expect(t.stepCount).toBe(0);
  });
});
