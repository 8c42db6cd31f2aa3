// Dropout in a compiled bundle: active in the training step with the mask the
// interpreter draws for that step number, a new mask each step, and the
// identity in predict (deterministic).
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

const root = mkdtempSync(join(tmpdir(), "gradc-dropout-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const model = graph("dropout", (g) => {
  const x = g.input("x", [8, 16]);
  const y = g.input("y", [8, 4]);
  const h = nn.dropout(nn.dense(g, "h", x, 32, { activation: "relu" }), 0.5);
  const pred = nn.dense(g, "out", h, 4);
  return { loss: nn.mse(pred, y), outputs: { pred } };
});
const batch = { x: randomArray(8 * 16, 3), y: randomArray(8 * 4, 4) };

describe("dropout in a bundle", () => {
  it("steps draw the interpreter's mask for their step number; predict is deterministic and dropout-free", async () => {
    // lr 0: the params never move, so only the mask changes the loss
    const dir = compile(model, { outDir: join(root, "b"), optimizer: { name: "sgd", lr: 0 } }).outDir;
    const t = await load(dir);
    const interp = (options: { training?: boolean; step?: number }) => interpret(model, batch, undefined, options);

    const p1 = t.predict({ x: batch.x })["pred"]!;
    expectAllClose(p1, interp({ training: false }).outputs["pred"]!, { rtol: 1e-5, atol: 1e-6 });

    const l1 = t.step(batch);
    const l2 = t.step(batch);
    expect(l1).not.toBe(l2);
    expect(l1).toBeCloseTo(interp({ step: 1 }).loss!, 5);
    expect(l2).toBeCloseTo(interp({ step: 2 }).loss!, 5);
    // gradients() draws as the next step (3) would, and changes nothing
    expect(t.gradients(batch).loss).toBeCloseTo(interp({ step: 3 }).loss!, 5);
    expect(t.step(batch)).toBeCloseTo(interp({ step: 3 }).loss!, 5);
    // the training-mode losses are not the dropout-free one
    expect(Math.abs(l1 - interp({ training: false }).loss!)).toBeGreaterThan(1e-4);

    const p2 = t.predict({ x: batch.x })["pred"]!;
    expect(Array.from(p2)).toEqual(Array.from(p1));
  }, 120_000);

  it("draws from the run's seed (the trainer's --seed) too, the interpreter's masks on every backend", async () => {
    const interp = (options: { step: number; runSeed?: number }) => interpret(model, batch, undefined, options).loss!;
    for (const backend of ["ts", "wasm"] as const) {
      const t = await load(compile(model, { outDir: join(root, `seed-${backend}`), backend, optimizer: { name: "sgd", lr: 0 } }).outDir);
      expect(t.seed).toBe(0);
      expect(t.manifest.hyper.seed?.arena).toBe("I");
      t.setSeed(5);
      expect(t.seed).toBe(5);
      const l1 = t.step(batch);
      const l2 = t.step(batch);
      expect(l1, backend).toBeCloseTo(interp({ step: 1, runSeed: 5 }), 5);
      expect(l2, backend).toBeCloseTo(interp({ step: 2, runSeed: 5 }), 5);
      // another seed, other masks at the same step numbers
      expect(Math.abs(interp({ step: 1, runSeed: 5 }) - interp({ step: 1 }))).toBeGreaterThan(1e-4);
      // predict stays deterministic and dropout-free whatever the seed
      expect(Array.from(t.predict({ x: batch.x })["pred"]!)).toEqual(Array.from(t.predict({ x: batch.x })["pred"]!));
      expect(() => t.setSeed(-1)).toThrow(/setSeed: the seed must be an integer in \[0, 2\^31 - 1\], got -1/);
    }
  }, 120_000);
});
