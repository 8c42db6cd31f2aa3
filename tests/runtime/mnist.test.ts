// The MNIST example compiled and trained for one epoch by the generated
// trainer: a quick floor on test accuracy (the full run is `npm run mnist`).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { compile } from "../../compiler/compile.js";
import { main } from "../../runtime/trainer.js";
import * as mnist from "../../examples/mnist/model.js";

const root = mkdtempSync(join(tmpdir(), "gradc-mnist-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

it("mnist: one epoch reaches more than 85% test accuracy", async () => {
  const outDir = join(root, "mnist");
  compile(mnist.default, { ...mnist.config, outDir });
  const lines: string[] = [];
  const summary = (await main(outDir, ["--epochs", "1"], { log: (l) => lines.push(l), progress: false }))!;
  // one epoch: every full batch of the 8,000 training images
  const batch = mnist.default.inputs[0]!.shape[0]!;
  expect(summary.steps).toBe(Math.floor(8000 / batch));
  expect(summary.accuracy).toBeGreaterThan(0.85);
  expect(summary.finalLoss).toBeLessThan(0.7);
  expect(lines.some((l) => /^epoch 1: test accuracy \d+\.\d\d%$/.test(l))).toBe(true);
});
