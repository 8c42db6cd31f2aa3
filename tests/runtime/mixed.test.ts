// Mixed precision (`precision: "mixed"`): temporaries kept as bfloat16 in the
// kernel modules' arena H, the saved-activation bytes the compile report
// shows against an f32 compile (MNIST and the LM example), the MNIST
// bundle's losses against the f32 bundle's over 100 steps, and the dynamic
// loss scale: a step whose gradients overflow is skipped and the scale
// halved, good steps grow it back.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { compile, lowerGraph } from "../../compiler/compile.js";
import { graph } from "../../compiler/dsl/graph.js";
import * as nn from "../../compiler/dsl/nn.js";
import { summarize } from "../../compiler/bundle/summary.js";
import { Batcher } from "../../runtime/data.js";
import { load } from "../../runtime/load.js";
import { loadTrainingData } from "../../runtime/sources.js";
import * as mnist from "../../examples/mnist/model.js";
import { BATCH, DROPOUT, languageModel, SIZE } from "../../examples/lm/model.js";
import { simulate } from "../compiler/plan/liveness.js";
import { programsOf } from "../../compiler/plan/memory.js";
import { randomArray } from "../helpers.js";
import { cleanupBundles, compileAndLoad } from "../compiler/harness/harness.js";

const root = mkdtempSync(join(tmpdir(), "gradc-mixed-"));
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
  cleanupBundles();
});

describe("mixed precision: memory", () => {
  const models = [
    { name: "mnist", graph: mnist.default, options: { optimizer: mnist.config.optimizer! } },
    { name: "lm", graph: languageModel("lm", { ...SIZE, vocab: 80 }, { batch: BATCH, dropout: DROPOUT }), options: { gradClip: 1 } },
  ];
  it.each(models)("$name: saved activations take at least 45% fewer bytes than in the f32 compile, and the plan has no clash", ({ graph: g, options }) => {
    const f32 = lowerGraph(g, options);
    const mixed = lowerGraph(g, { ...options, precision: "mixed" });
    const saved = (x: typeof f32) => x.plan.savedActivations;
    expect(saved(mixed).count).toBe(saved(f32).count);
    expect(saved(mixed).bytes).toBeLessThanOrEqual(0.55 * saved(f32).bytes);
    // the report says so: bfloat16 bytes against the same values as f32
    const report = summarize(mixed.schedule, mixed.plan);
    expect(report.memory.mixed?.savedAsF32Bytes).toBe(saved(f32).bytes);
    expect(report.text).toMatch(/saved activations \d+ \([\d.]+ [KM]iB as bfloat16, [\d.]+ [KM]iB as f32: (4[5-9]|50)% less\)/);
    // only node temporaries move to H; params, gradients, optimizer state and results stay f32
    for (const b of mixed.schedule.buffers) {
      if (b.arena === "H") expect(b.role === "node" && b.dtype === "f32").toBe(true);
      if (["param", "grad", "state", "block", "output", "loss", "input"].includes(b.role)) expect(b.arena).not.toBe("H");
    }
    const [forward, step] = programsOf(mixed.schedule);
    expect(simulate(mixed.schedule, mixed.plan, { forward: forward!, step: step! })).toEqual([]);
  }, 120_000);
});

/** Compiles MNIST's MLP at `precision` and steps it over the example's first batches, in order: the losses. */
async function mnistLosses(precision: "f32" | "mixed", steps: number): Promise<{ losses: number[]; dir: string }> {
  const dir = compile(mnist.default, { ...mnist.config, outDir: join(root, `mnist-${precision}`), precision }).outDir;
  const trainer = await load(dir);
  const spec = trainer.manifest.training!;
  const inputs = trainer.manifest.inputs.filter((i) => i.usedBy.includes("train"));
  const batches = new Batcher(loadTrainingData(spec.data, dir, trainer.manifest.inputs).train, inputs, trainer.batchSize);
  const order = batches.order(0, false, 0);
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    batches.fill(order, (s % batches.fullBatches) * trainer.batchSize);
    losses.push(trainer.step(batches.batch));
  }
  if (precision === "mixed") expect(trainer.lossScale).toEqual({ scale: 2 ** 16, skipped: 0, goodSteps: steps });
  return { losses, dir };
}

describe("mixed precision: MNIST against f32", () => {
  it("the mixed bundle's losses follow the f32 bundle's over 100 steps, within bfloat16's tolerance", async () => {
    const f32 = await mnistLosses("f32", 100);
    const mixed = await mnistLosses("mixed", 100);
    // the kernels keep their temporaries as bfloat16: one Uint16Array arena per module
    const manifest = JSON.parse(readFileSync(join(mixed.dir, "manifest.json"), "utf8")) as { arena: { halves: number }; mixed: unknown };
    expect(manifest.arena.halves).toBeGreaterThan(0);
    expect(manifest.mixed).toEqual({ storage: "bf16", initialScale: 2 ** 16, growthInterval: 2000 });
    expect(readFileSync(join(mixed.dir, "step.ts"), "utf8")).toMatch(/new Uint16Array\(\d+\)[\s\S]*bf16Bits\(/);
    const rel = f32.losses.map((l, i) => Math.abs(mixed.losses[i]! - l) / l);
    // the first step differs by the rounding of activations only (bfloat16 keeps 8 significant bits: 2^-9 relative)
    expect(rel[0]!).toBeLessThan(2 ** -7);
    expect(rel[0]!).toBeGreaterThan(0);
    // later steps drift as the weights do, but stay close on average and everywhere
    expect(rel.reduce((a, b) => a + b, 0) / rel.length).toBeLessThan(0.03);
    expect(Math.max(...rel)).toBeLessThan(0.12);
    const tail = (ls: number[]) => ls.slice(-20).reduce((a, b) => a + b, 0) / 20;
    expect(Math.abs(tail(mixed.losses) - tail(f32.losses)) / tail(f32.losses)).toBeLessThan(0.05);
    expect(tail(mixed.losses)).toBeLessThan(0.6 * mixed.losses[0]!);
  }, 240_000);
});

describe("mixed precision: dynamic loss scaling", () => {
  // a loss of about 1e6·mse: its scaled gradients overflow f32 for scales above about 2^100
  const model = graph("scaled", (g) => {
    const x = g.input("x", [4, 3]);
    const y = g.input("y", [4, 2]);
    const pred = nn.dense(g, "out", nn.dense(g, "h", x, 8, { activation: "tanh" }), 2);
    return { loss: nn.mse(pred, y).mul(1e6) };
  });
  const batch = { x: randomArray(12, 1), y: randomArray(8, 2) };

  it("skips the update of a step that overflows and halves the scale; good steps grow it back", async () => {
    const dir = compile(model, { outDir: join(root, "scaled"), precision: "mixed", lossScale: { initial: 2 ** 126, growthInterval: 3 }, optimizer: { name: "sgd", lr: 1e-9 } }).outDir;
    const t = await load(dir);
    const params = () => t.params.names().map((n) => Array.from(t.params.get(n)));
    let scale = 2 ** 126;
    let skipped = 0;
    let good = 0;
    let grew = false;
    for (let s = 0; s < 60; s++) {
      const before = params();
      const loss = t.step(batch);
      expect(Number.isFinite(loss)).toBe(true);
      const after = params();
      const status = t.lossScale!;
      if (status.skipped > skipped) {
        // overflow: the params did not move and the scale halved
        expect(after).toEqual(before);
        expect(status.scale).toBe(scale / 2);
        good = 0;
      } else {
        expect(after).not.toEqual(before);
        good++;
        if (good === 3) {
          expect(status.scale).toBe(scale * 2);
          grew = true;
          good = 0;
        } else expect(status.scale).toBe(scale);
      }
      skipped = status.skipped;
      scale = status.scale;
    }
    expect(skipped).toBeGreaterThan(10);
    expect(grew).toBe(true);
    expect(t.stepCount).toBe(60);
  }, 120_000);

  it("the bundle's own step() (create(F, I), without the trainer) skips, halves and grows the scale the same way", async () => {
    const b = await compileAndLoad(model, { precision: "mixed", lossScale: { initial: 2 ** 126, growthInterval: 3 }, optimizer: { name: "sgd", lr: 1e-9 } });
    const slot = b.manifest.hyper.lossScale!;
    const stepOf = b.result.manifest.files.step;
    expect(readFileSync(join(b.result.outDir, stepOf), "utf8")).toMatch(/step\(\)[^{]*\{\s*gradients\(\);\s*if \(!gradientsFinite\(\)\)/);
    // create(F, I) wrote the initial scale
    expect(b.read(slot)[0]).toBe(2 ** 126);
    b.input("x", batch.x);
    b.input("y", batch.y);
    const params = () => b.manifest.params.map((p) => Array.from(b.param(p.name)));
    const step = b.step as unknown as () => boolean;
    let scale = 2 ** 126;
    let [skipped, good, grew] = [0, 0, false];
    for (let s = 1; s <= 60; s++) {
      b.hyper(1e-9, s);
      const before = params();
      const ran = step();
      expect(Number.isFinite(b.loss())).toBe(true);
      const now = b.read(slot)[0]!;
      if (!ran) {
        // overflow: some gradient is not finite, the params did not move and the scale halved
        expect(b.manifest.params.some((p) => b.grad(p.name).some((v) => !Number.isFinite(v)))).toBe(true);
        expect(params()).toEqual(before);
        expect(now).toBe(scale / 2);
        skipped++;
        good = 0;
      } else {
        expect(params()).not.toEqual(before);
        if (++good === 3) {
          expect(now).toBe(scale * 2);
          grew = true;
          good = 0;
        } else expect(now).toBe(scale);
      }
      scale = now;
    }
    expect(skipped).toBeGreaterThan(10);
    expect(grew).toBe(true);
  }, 120_000);

  it("gives the same gradients as f32 with any scale (the scale divides out exactly)", async () => {
    const f32 = await load(compile(model, { outDir: join(root, "scaled-f32") }).outDir);
    const mixed = await load(compile(model, { outDir: join(root, "scaled-mixed"), precision: "mixed", lossScale: { initial: 2 ** 10 } }).outDir);
    const a = f32.gradients(batch);
    const b = mixed.gradients(batch);
    expect(Math.abs(b.loss - a.loss) / a.loss).toBeLessThan(2 ** -7);
    for (const name of Object.keys(a.grads)) {
      const ga = Array.from(a.grads[name]!);
      const gb = Array.from(b.grads[name]!);
      const norm = Math.hypot(...ga);
      const diff = Math.hypot(...ga.map((v, i) => v - gb[i]!));
      expect(diff / norm, name).toBeLessThan(0.02);
    }
  }, 120_000);

  it("refuses what it cannot do, naming the option", () => {
    expect(() => compile(model, { outDir: join(root, "x1"), precision: "mixed", dtype: "f64" })).toThrow(/precision "mixed".*dtype "f64"/);
    expect(() => compile(model, { outDir: join(root, "x2"), lossScale: { initial: 8 } })).toThrow(/lossScale applies to precision "mixed" only/);
    expect(() => compile(model, { outDir: join(root, "x3"), precision: "mixed", lossScale: { initial: 3 } })).toThrow(/lossScale.initial must be a power of two/);
    expect(() => compile(model, { outDir: join(root, "x4"), precision: "half" as "mixed" })).toThrow(/precision must be "f32" or "mixed"/);
  });
});
