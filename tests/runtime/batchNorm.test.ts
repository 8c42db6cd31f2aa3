// Batch norm in a compiled bundle: the step updates the moving statistics as
// the interpreter does, predict normalizes with them, checkpoints keep them.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { compile } from "../../compiler/compile.js";
import { graph } from "../../compiler/dsl/graph.js";
import * as nn from "../../compiler/dsl/nn.js";
import { interpret } from "../../compiler/interp/interpret.js";
import { load } from "../../runtime/load.js";
import { expectAllClose, randomArray } from "../helpers.js";

const root = mkdtempSync(join(tmpdir(), "gradc-bn-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const model = graph("bn", (g) => {
  const x = g.input("x", [6, 5]);
  const y = g.input("y", [6, 2]);
  const h = nn.batchNorm(g, "bn", nn.dense(g, "d", x, 4), { momentum: 0.9 }).relu();
  const pred = nn.dense(g, "out", h, 2);
  return { loss: nn.mse(pred, y), outputs: { pred } };
});
const batches = [1, 2, 3].map((s) => ({ x: randomArray(30, 10 + s, -2, 3), y: randomArray(12, 20 + s) }));
const STATS = ["bn.movingMean", "bn.movingVariance"];

describe("batch norm in a bundle", () => {
  it("each step moves the statistics as the interpreter's update says; predict uses them; checkpoints keep them", async () => {
    const dir = compile(model, { outDir: join(root, "b"), optimizer: { name: "sgd", lr: 0.05 } }).outDir;
    const t = await load(dir);
    const current = () => Object.fromEntries(model.params.map((p) => [p.name, Float64Array.from(t.params.get(p.name))]));
    expectAllClose(t.params.get("bn.movingMean"), [0, 0, 0, 0], 0);
    expectAllClose(t.params.get("bn.movingVariance"), [1, 1, 1, 1], 0);
    for (const batch of batches) {
      const expected = interpret(model, batch, current());
      expect(t.step(batch)).toBeCloseTo(expected.loss!, 5);
      for (const s of STATS) expectAllClose(t.params.get(s), expected.updates[s]!, { rtol: 1e-5, atol: 1e-6 });
    }
    expect(Math.abs(t.params.get("bn.movingMean")[0]!)).toBeGreaterThan(1e-3);

    const p1 = t.predict({ x: batches[0]!.x })["pred"]!;
    expectAllClose(p1, interpret(model, batches[0]!, current(), { training: false }).outputs["pred"]!, { rtol: 1e-5, atol: 1e-6 });
    // no batch statistics in predict: changing the other examples leaves the first one's prediction
    const others = Float64Array.from(batches[0]!.x).map((v, i) => (i < 5 ? v : v * 3 + 1));
    const p2 = t.predict({ x: others })["pred"]!;
    expect(Array.from(p2).slice(0, 2)).toEqual(Array.from(p1).slice(0, 2));
    expect(Array.from(p2).slice(2)).not.toEqual(Array.from(p1).slice(2));

    const file = join(root, "bn.safetensors");
    t.save(file);
    const saved = current();
    t.step(batches[1]!);
    const u = await load(dir);
    u.restore(file);
    for (const s of STATS) expect(Array.from(u.params.get(s))).toEqual(Array.from(saved[s]!, Math.fround));
    expect(Array.from(u.predict({ x: batches[0]!.x })["pred"]!)).toEqual(Array.from(p1));
  }, 120_000);
});
