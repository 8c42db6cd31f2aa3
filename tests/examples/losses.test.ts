// A guard for refactors of the compiler: the examples, compiled on the default
// backend and trained a few steps through the runtime, must give the same
// losses bit for bit (and the same params after the last step) as recorded in
// losses.golden.txt, on one thread and on two. Each loss is written as the hex
// of its float64 bits, so a change in the last bit of one f32 value fails the test.
// The WebAssembly products round once per multiply-add where relaxed SIMD's FMA
// validates (Node, with the flag the runtime sets; x86-64 with FMA, ARM64) and
// twice elsewhere: the file's first line says which it records.
//
// The golden file is read, never written, by a normal run. After a change that
// is meant to change the numbers, rewrite it with
//   GRADC_UPDATE_GOLDEN=1 npx vitest run tests/examples/losses.test.ts
// and say why in the commit.
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { compile } from "../../compiler/compile.js";
import type { ModelConfig } from "../../compiler/config.js";
import type { Graph } from "../../compiler/ir/graph.js";
import { Batcher } from "../../runtime/data.js";
import { load } from "../../runtime/load.js";
import { loadTrainingData } from "../../runtime/sources.js";
import { relaxedSimd } from "../../runtime/wasmFeatures.js";
import * as chainRule from "../../examples/chainRule/model.js";
import * as neuron from "../../examples/neuron/model.js";
import * as xor from "../../examples/xor/model.js";
import * as mnist from "../../examples/mnist/model.js";
import * as deepSigmoid from "../../examples/deep/sigmoid.js";
import * as deepResidual from "../../examples/deep/residual.js";

const GOLDEN = path.join(path.dirname(fileURLToPath(import.meta.url)), "losses.golden.txt");
const root = mkdtempSync(path.join(tmpdir(), "gradc-losses-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Example {
  readonly name: string;
  readonly graph: Graph;
  readonly config?: ModelConfig;
  readonly steps: number;
}

const EXAMPLES: readonly Example[] = [
  { name: "chainRule", graph: chainRule.default, steps: 5 },
  { name: "neuron", graph: neuron.default, config: neuron.config, steps: 5 },
  { name: "xor", graph: xor.default, config: xor.config, steps: 20 },
  { name: "mnist", graph: mnist.default, config: mnist.config, steps: 4 },
  { name: "deepSigmoid", graph: deepSigmoid.default, config: deepSigmoid.config, steps: 4 },
  { name: "deepResidual", graph: deepResidual.default, config: deepResidual.config, steps: 4 },
];

/** The golden file's first line: how the products multiply-add here. */
const productsLine = (): string => `products ${relaxedSimd() ? "relaxed SIMD FMA" : "f32x4.mul then f32x4.add"}`;

/** The exact bits of a number, as 16 hex digits of its float64 encoding. */
function bits(x: number): string {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  return view.getBigUint64(0).toString(16).padStart(16, "0");
}

/**
 * Compiles the example and trains `steps` updates on its own data, batches in
 * order, without augmentation; one line per step with the loss before the
 * update, then a digest of every param after the last one.
 */
async function run(ex: Example, threads = 1): Promise<string[]> {
  const outDir = path.join(root, ex.name);
  if (!existsSync(outDir)) compile(ex.graph, { ...(ex.config ?? {}), outDir });
  const trainer = await load(outDir, { threads });
  const spec = trainer.manifest.training;
  const inputs = trainer.manifest.inputs.filter((i) => i.usedBy.includes("train"));
  const batches = spec
    ? new Batcher(loadTrainingData(spec.data, outDir, trainer.manifest.inputs).train, inputs, trainer.batchSize)
    : undefined;
  const lines: string[] = [];
  let order: Int32Array | undefined;
  for (let step = 0; step < ex.steps; step++) {
    let feeds = {};
    if (batches) {
      const b = step % batches.fullBatches;
      if (b === 0) order = batches.order(0, false, 0);
      batches.fill(order!, b * trainer.batchSize);
      feeds = batches.batch;
    }
    const loss = trainer.step(feeds);
    lines.push(`${ex.name} step ${step + 1} loss ${bits(loss)} (${loss})`);
  }
  const digest = createHash("sha256");
  for (const name of trainer.params.names()) {
    const v = trainer.params.get(name);
    digest.update(name).update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  }
  lines.push(`${ex.name} params ${digest.digest("hex")}`);
  await trainer.close();
  return lines;
}

describe("the examples' losses on the default backend, bit for bit", () => {
  it(
    "match losses.golden.txt",
    async () => {
      const lines: string[] = [productsLine()];
      for (const ex of EXAMPLES) lines.push(...(await run(ex)));
      const text = lines.join("\n") + "\n";
      if (process.env["GRADC_UPDATE_GOLDEN"] === "1") writeFileSync(GOLDEN, text);
      expect(existsSync(GOLDEN), `${GOLDEN} is missing: record it with GRADC_UPDATE_GOLDEN=1`).toBe(true);
      expect(text).toBe(readFileSync(GOLDEN, "utf8"));
    },
    180_000,
  );

  it(
    "match losses.golden.txt on 2 threads too (the WebAssembly products split across them)",
    async () => {
      const lines: string[] = [productsLine()];
      for (const ex of EXAMPLES) lines.push(...(await run(ex, 2)));
      expect(lines.join("\n") + "\n").toBe(readFileSync(GOLDEN, "utf8"));
    },
    180_000,
  );

  it("records real training: every example's loss changes and none is NaN", () => {
    const golden = readFileSync(GOLDEN, "utf8").trim().split("\n");
    for (const ex of EXAMPLES) {
      const losses = golden.filter((l) => l.startsWith(`${ex.name} step `)).map((l) => Number(/\((.*)\)$/.exec(l)![1]));
      expect(losses.length).toBe(ex.steps);
      expect(losses.every(Number.isFinite)).toBe(true);
      expect(new Set(losses).size).toBeGreaterThan(1);
    }
  });
});
