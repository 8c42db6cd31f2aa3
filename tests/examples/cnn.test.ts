// The CNN example compiled and trained briefly by the generated trainer: its
// layers and names, and a floor on test accuracy after 60 steps (the full run
// is in examples/cnn/README.md).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { compile } from "../../compiler/compile.js";
import { main } from "../../runtime/trainer.js";
import { load } from "../../runtime/load.js";
import * as cnn from "../../examples/cnn/model.js";

const root = mkdtempSync(join(tmpdir(), "gradc-cnn-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

it("cnn: two conv blocks with batch norm under scopes; 60 steps reach more than 80% test accuracy and move the moving statistics", async () => {
  const names = cnn.default.params.map((p) => p.name);
  expect(names).toEqual([
    "block1.conv.W", "block1.bn.gamma", "block1.bn.beta", "block1.bn.movingMean", "block1.bn.movingVariance",
    "block2.conv.W", "block2.bn.gamma", "block2.bn.beta", "block2.bn.movingMean", "block2.bn.movingVariance",
    "out.W", "out.b",
  ]);
  const outDir = join(root, "cnn");
  compile(cnn.default, { ...cnn.config, outDir });
  const summary = (await main(outDir, ["--steps", "60"], { log: () => {}, progress: false }))!;
  expect(summary.steps).toBe(60);
  expect(summary.accuracy).toBeGreaterThan(0.8);
  const t = await load(outDir);
  t.restore(summary.checkpoint);
  // 60 updates at momentum 0.9 leave almost nothing of the initial zeros and ones
  expect(Array.from(t.params.get("block2.bn.movingVariance")).some((v) => Math.abs(v - 1) > 0.05)).toBe(true);
}, 600_000);
