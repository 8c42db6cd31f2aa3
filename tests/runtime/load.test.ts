// load(): the Trainer over a hand-written bundle: predict, gradients, step,
// params, checkpoints, and the boundary checks on manifests, weights, inputs.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bytesPerStep, measureAllocation } from "../probes/measure.js";
import { afterAll, describe, expect, it } from "vitest";
import { load } from "../../runtime/load.js";
import { loadSafetensors, saveSafetensors } from "../../runtime/safetensors.js";
import { errorMessage, expectAllClose } from "../helpers.js";
import { blobs, writeFixture } from "./fixture.js";
import type { FixtureOptions } from "./fixture.js";

const root = mkdtempSync(join(tmpdir(), "gradc-load-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fixture = (o: FixtureOptions = {}) => writeFixture(join(root, `b${n++}`), o);

const data = blobs(4, 2, 3, 5);
const batch = { x: data.x, y: data.y };

/** Logits and mean cross-entropy of the fixture's model, in float64. */
function reference(W: ArrayLike<number>, b: ArrayLike<number>, x: ArrayLike<number>, y: ArrayLike<number>) {
  const logits: number[] = [];
  let loss = 0;
  for (let i = 0; i < 4; i++) {
    const row = [0, 1, 2].map((j) => b[j]! + x[i * 2]! * W[j]! + x[i * 2 + 1]! * W[3 + j]!);
    logits.push(...row);
    const m = Math.max(...row);
    loss += Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0)) + m - row[y[i]!]!;
  }
  return { logits, loss: loss / 4 };
}

describe("load", () => {
  it("predicts with the initial weights and returns copies", async () => {
    const fx = fixture();
    const t = await load(fx.dir);
    const out = t.predict({ x: data.x });
    expect(out["logits"]).toBeInstanceOf(Float32Array);
    expectAllClose(out["logits"], reference(fx.W0, [0, 0, 0], data.x, data.y).logits, 1e-5);
    out["logits"]![0] = 1234;
    expect(t.predict({ x: data.x })["logits"]![0]).not.toBe(1234);
    expect(t.batchSize).toBe(4);
  });

  it("gives gradients that match central differences, without updating", async () => {
    const t = await load(fixture({ dtype: "f64" }).dir);
    const before = t.params.get("W");
    const { loss, grads } = t.gradients(batch);
    expect(grads["W"]).toBeInstanceOf(Float64Array);
    expect(t.stepCount).toBe(0);
    expectAllClose(t.params.get("W"), before, 0);
    expect(loss).toBeCloseTo(reference(before, [0, 0, 0], data.x, data.y).loss, 12);
    const h = 1e-6;
    const numeric = Array.from(before, (_, i) => {
      const plus = Float64Array.from(before);
      plus[i]! += h;
      const minus = Float64Array.from(before);
      minus[i]! -= h;
      return (reference(plus, [0, 0, 0], data.x, data.y).loss - reference(minus, [0, 0, 0], data.x, data.y).loss) / (2 * h);
    });
    expectAllClose(grads["W"], numeric, { rtol: 1e-6, atol: 1e-8 });
  });

  it("applies one SGD update per step and counts steps", async () => {
    const t = await load(fixture({ optimizer: { name: "sgd", lr: 0.5 } }).dir);
    const W0 = t.params.get("W");
    const { loss, grads } = t.gradients(batch);
    expect(t.step(batch)).toBeCloseTo(loss, 6);
    expect(t.stepCount).toBe(1);
    expectAllClose(t.params.get("W"), Array.from(W0, (w, i) => w - 0.5 * grads["W"]![i]!), 1e-6);
  });

  it("writes the scheduled learning rate and the 1-based step count", async () => {
    const opt = { name: "sgd", lr: 1, schedule: { name: "step", every: 1, gamma: 0.5 }, warmupSteps: 2 } as const;
    const t = await load(fixture({ optimizer: opt }).dir);
    const seen: number[] = [];
    for (let i = 0; i < 4; i++) {
      seen.push(t.learningRate());
      const before = t.params.get("b");
      const g = t.gradients(batch).grads["b"]!;
      t.step(batch);
      // b moves by exactly lr · grad, so the update reveals the lr the kernel read
      const after = t.params.get("b");
      expect((before[0]! - after[0]!) / g[0]!).toBeCloseTo(seen[i]!, 5);
    }
    expect(seen).toEqual([0.5, 1, 1, 0.5]);
    const faster = await load(fixture({ optimizer: opt }).dir, { lr: 4 });
    expect(faster.learningRate()).toBe(2);
    expect(faster.optimizer.lr).toBe(4);
  });

  it("reads and writes params by name, checking lengths", async () => {
    const t = await load(fixture().dir);
    expect(t.params.names()).toEqual(["W", "b"]);
    t.params.set("b", [1, 2, 3]);
    expectAllClose(t.params.get("b"), [1, 2, 3]);
    const copy = t.params.get("b");
    copy[0] = 9;
    expect(t.params.get("b")[0]).toBe(1);
    expect(errorMessage(() => t.params.set("b", [1, 2]))).toMatch(/param "b": got 2 values, expected 3 for f32\[3\]/);
    expect(errorMessage(() => t.params.get("nope"))).toMatch(/unknown param "nope".*W, b/);
  });

  it("checks inputs at the boundary", async () => {
    const t = await load(fixture().dir);
    expect(errorMessage(() => t.step({ x: data.x }))).toMatch(/missing input "y": expected i32\[4\]/);
    expect(errorMessage(() => t.step({ x: new Float32Array(6), y: data.y }))).toMatch(/input "x": got 6 values, expected f32\[4,2\] \(8 values/);
    expect(errorMessage(() => t.step({ x: data.x, y: new Float32Array(4) }))).toMatch(/input "y": got Float32Array, expected i32\[4\]/);
    expect(errorMessage(() => t.step({ x: new Int32Array(8), y: data.y }))).toMatch(/input "x": got Int32Array, expected f32\[4,2\]/);
    expect(errorMessage(() => t.step({ x: data.x, y: [0, 1, 2.5, 0] }))).toMatch(/input "y": value 2.5 at index 2 is not an integer/);
    expect(errorMessage(() => t.predict({ x: data.x, z: [1] }))).toMatch(/unknown input "z"; the graph's inputs are x: f32\[4,2\], y: i32\[4\]/);
    expect(t.stepCount).toBe(0);
    // plain numbers are fine: integers for i32, any numbers for f32
    const viaArrays = t.gradients({ x: Array.from(data.x), y: Array.from(data.y) }).loss;
    expect(viaArrays).toBeCloseTo(t.gradients(batch).loss, 6);
  });

  it("resumes from a checkpoint exactly (Adam state and step count included)", async () => {
    const fx = fixture({ optimizer: { name: "adam", lr: 0.05 } });
    const batches = Array.from({ length: 20 }, (_, i) => {
      const d = blobs(4, 2, 3, 100 + i);
      return { x: d.x, y: d.y };
    });
    const a = await load(fx.dir);
    for (const bt of batches.slice(0, 10)) a.step(bt);
    const file = join(root, "ckpt", "a.safetensors");
    a.save(file);
    for (const bt of batches.slice(10)) a.step(bt);
    expect(readdirSync(join(root, "ckpt"))).toEqual(["a.safetensors"]);
    const saved = loadSafetensors(file);
    expect(Object.keys(saved.tensors).sort()).toEqual(["W", "b", "state/W/m", "state/W/v", "state/b/m", "state/b/v"]);
    expect(saved.metadata["step"]).toBe("10");

    const b = await load(fx.dir);
    b.restore(file);
    expect(b.stepCount).toBe(10);
    for (const bt of batches.slice(10)) b.step(bt);
    expect(b.stepCount).toBe(20);
    expect(Array.from(b.params.get("W"))).toEqual(Array.from(a.params.get("W")));
    expect(Array.from(b.params.get("b"))).toEqual(Array.from(a.params.get("b")));
    // without the state the run differs: the check above is not vacuous
    const c = await load(fx.dir);
    c.params.set("W", saved.tensors["W"]!.data as Float32Array);
    c.params.set("b", saved.tensors["b"]!.data as Float32Array);
    for (const bt of batches.slice(10)) c.step(bt);
    expect(Array.from(c.params.get("W"))).not.toEqual(Array.from(a.params.get("W")));
  });

  it("refuses checkpoints that do not match the bundle", async () => {
    const sgd = await load(fixture().dir);
    const file = join(root, "sgd.safetensors");
    sgd.save(file);
    const adam = await load(fixture({ optimizer: { name: "adam", lr: 0.1 } }).dir);
    expect(errorMessage(() => adam.restore(file))).toMatch(/optimizer state \(adam\) "state\/W\/m" \(f32\[2,3\]\) is missing/);
    const wide = await load(fixture({ classes: 4 }).dir);
    expect(errorMessage(() => wide.restore(file))).toMatch(/param "W" is f32\[2,3\], but the manifest expects f32\[2,4\]/);
    const f64 = await load(fixture({ dtype: "f64" }).dir);
    expect(errorMessage(() => f64.restore(file))).toMatch(/param "W" is f32\[2,3\], but the manifest expects f64\[2,3\]/);
    expect(errorMessage(() => sgd.restore(join(fixture().dir, "weights.safetensors")))).toMatch(/not a gradc checkpoint/);
  });
});

describe("load: no allocation per step", () => {
  it("filling a batch and stepping allocates nothing but the returned loss", () => {
    const dir = fixture({ optimizer: { name: "adam", lr: 0.001, schedule: { name: "cosine", totalSteps: 50_000 } } }).dir;
    // a process of its own, optimizing on its main thread: the measure does not depend on machine load
    const m = measureAllocation(dir);
    // at most the returned loss, a boxed double (16 bytes) when step() is not inlined into
    // the caller; one more string, array or object per call would add at least 16 bytes
    expect(bytesPerStep(m), `rounds: ${JSON.stringify(m.rounds)}`).toBeLessThan(20);
    expect(m.stepCount).toBe(40_000 + m.roundSteps * m.rounds.length);
  });
});

describe("load: bundle checks", () => {
  it("names the manifest and both versions on a version mismatch", async () => {
    const fx = fixture();
    const file = join(fx.dir, "manifest.json");
    writeFileSync(file, JSON.stringify({ ...fx.manifest, version: 99 }));
    await expect(load(fx.dir)).rejects.toThrow(`${file}: bundle format version 99, but this runtime reads version 1`);
    writeFileSync(file, JSON.stringify({ ...fx.manifest, format: "other" }));
    await expect(load(fx.dir)).rejects.toThrow(/not a gradc bundle manifest \(format "other", expected "gradc-bundle"\)/);
    await expect(load(join(root, "missing"))).rejects.toThrow(/cannot read .*missing\/manifest.json: no such folder/);
  });

  it("names the param and both shapes when the weights do not match", async () => {
    const fx = fixture();
    const weights = join(fx.dir, "weights.safetensors");
    saveSafetensors(weights, { W: { shape: [3, 2], data: new Float32Array(6) }, b: { shape: [3], data: new Float32Array(3) } });
    await expect(load(fx.dir)).rejects.toThrow(/param "W" is f32\[3,2\], but the manifest expects f32\[2,3\]/);
    saveSafetensors(weights, { W: { shape: [2, 3], data: new Float64Array(6) }, b: { shape: [3], data: new Float32Array(3) } });
    await expect(load(fx.dir)).rejects.toThrow(/param "W" is f64\[2,3\], but the manifest expects f32\[2,3\]/);
    saveSafetensors(weights, { W: { shape: [2, 3], data: new Float32Array(6) } });
    await expect(load(fx.dir)).rejects.toThrow(/param "b" \(f32\[3\]\) is missing/);
  });

  it("rejects slots outside the arena and modules without create()", async () => {
    const fx = fixture();
    const file = join(fx.dir, "manifest.json");
    writeFileSync(file, JSON.stringify({ ...fx.manifest, arena: { ...fx.manifest.arena, floats: 10 } }));
    await expect(load(fx.dir)).rejects.toThrow(/param "W" \(f32\[2,3\] at F\[8\]\) lies outside the F arena of 10 elements/);
    const fx2 = fixture();
    writeFileSync(join(fx2.dir, "forward.js"), "export const nothing = 1;\n");
    await expect(load(fx2.dir)).rejects.toThrow(/forward.js: does not export create\(F, I\)/);
    expect(readFileSync(join(fx2.dir, "step.ts"), "utf8")).toContain("function grad_W(F, I)");
  });
});
