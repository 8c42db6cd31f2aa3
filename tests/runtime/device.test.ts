// The runtime Device: chosen by manifest.backend, the only way the trainer
// reaches a bundle's buffers, and shaped so that an asynchronous device fits.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { compile } from "../../compiler/compile.js";
import type { Graph } from "../../compiler/ir/graph.js";
import { load } from "../../runtime/load.js";
import { createDevice } from "../../runtime/nodeDevices.js";
import { isHostDevice } from "../../runtime/device.js";
import type { Device, EntryPoint, KernelList } from "../../runtime/device.js";
import type { Manifest, Slot } from "../../runtime/manifest.js";
import type { SlotView } from "../../runtime/arena.js";
import { learningRate } from "../../runtime/schedule.js";
import { NumericsError } from "../../runtime/numerics.js";
import { writeFixture } from "./fixture.js";
import { finite, sqrtAtZero, zeroRow } from "./models/nonFinite.js";

const root = mkdtempSync(join(tmpdir(), "gradc-device-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fixture = () => writeFixture(join(root, `fixture-${n++}`));

function build(g: Graph, options: { dtype?: "f32" | "f64" } = {}): string {
  const outDir = join(root, `${g.name}-${n++}`);
  compile(g, { optimizer: { name: "adam", lr: 0.05 }, ...options, outDir });
  return outDir;
}

const batches = [
  { x: [0, 0, 0, 1, 1, 0, 1, 1], y: [0, 1, 1, 0] },
  { x: [0.5, -1, 2, 0.25, -0.5, 1, 1.5, -2], y: [1, 0, 0.5, -1] },
];

/** A device that answers every run and read a little later, as a GPU's would. */
class DeferredDevice implements Device {
  readonly synchronous = false;
  readonly backend: string;
  runs = 0;
  constructor(private readonly inner: Device) {
    this.backend = inner.backend;
  }
  private later<T>(f: () => T | Promise<T>): Promise<T> {
    return new Promise((res) => setTimeout(res, 0)).then(f);
  }
  write(slot: Slot, values: ArrayLike<number>): void {
    this.inner.write(slot, values);
  }
  writeScalar(slot: Slot, value: number): void {
    this.inner.writeScalar(slot, value);
  }
  read(slot: Slot): Promise<SlotView> {
    return this.later(() => this.inner.read(slot));
  }
  scalar(slot: Slot): Promise<number> {
    return this.later(() => this.inner.scalar(slot));
  }
  norm(slot: Slot): Promise<number> {
    return this.later(() => this.inner.norm(slot));
  }
  run(entry: EntryPoint): Promise<void> {
    this.runs++;
    return this.later(() => this.inner.run(entry));
  }
  kernels(list: KernelList): readonly string[] {
    return this.inner.kernels(list);
  }
  runKernel(name: string): Promise<void> {
    return this.later(() => this.inner.runKernel(name));
  }
}

const deferred = async (m: Manifest, dir: string): Promise<Device> => new DeferredDevice(await createDevice(m, dir));

describe("Device: chosen by manifest.backend", () => {
  it("runs ts and wasm bundles on the host device, and names the backends it knows otherwise", async () => {
    const fx = fixture();
    const t = await load(fx.dir);
    expect(t.device.backend).toBe("ts");
    expect(t.synchronous).toBe(true);
    expect(isHostDevice(t.device)).toBe(true);
    const file = join(fx.dir, "manifest.json");
    writeFileSync(file, JSON.stringify({ ...fx.manifest, backend: "wasm" }));
    const w = await load(fx.dir);
    expect(w.device.backend).toBe("wasm");
    expect(w.step({ x: new Float32Array(8), y: [0, 1, 2, 0] })).toBeCloseTo(Math.log(3), 6);
    writeFileSync(file, JSON.stringify({ ...fx.manifest, backend: "tpu" }));
    await expect(load(fx.dir)).rejects.toThrow(`${file}: backend "tpu" has no device in this runtime (it runs "ts", "wasm", "gpu")`);
    writeFileSync(file, JSON.stringify({ ...fx.manifest, backend: "toString" }));
    await expect(load(fx.dir)).rejects.toThrow(/backend "toString" has no device/);
  });

  it("a host device's views are live: writing one writes the slot the kernels read", async () => {
    const t = await load(fixture().dir);
    const d = t.device;
    if (!isHostDevice(d)) throw new Error("expected a host device");
    const W = t.manifest.params.find((p) => p.name === "W")!;
    d.view(W).fill(0.25);
    expect(Array.from(t.params.get("W"))).toEqual([0.25, 0.25, 0.25, 0.25, 0.25, 0.25]);
    // reads are copies
    d.read(W).fill(7);
    expect(t.params.get("W")[0]).toBe(0.25);
    expect(d.norm(W)).toBeCloseTo(Math.sqrt(6 * 0.0625), 12);
  });
});

describe("Device: entry points", () => {
  it("gradients then update is step, bit for bit, and the update reads the gradient slots in between", async () => {
    const dir = build(finite);
    const whole = await load(dir);
    const split = await load(dir);
    const d = split.device;
    if (!isHostDevice(d)) throw new Error("expected a host device");
    const m = split.manifest;
    expect(d.kernels("update").length).toBeGreaterThan(0);
    expect(d.kernels("gradients").length).toBeGreaterThan(0);
    for (let i = 0; i < 6; i++) {
      const batch = batches[i % 2]!;
      const loss = whole.step(batch);
      for (const input of m.inputs) d.write(input, batch[input.name as "x" | "y"]);
      d.writeScalar(m.hyper.lr, learningRate(split.optimizer, i));
      d.writeScalar(m.hyper.step, i + 1);
      d.run("gradients");
      expect(d.scalar(m.loss!)).toBe(loss);
      d.run("update");
    }
    for (const name of ["W1", "W2"]) expect(Array.from(split.params.get(name))).toEqual(Array.from(whole.params.get(name)));
    // zeroing a gradient between the two (as an all-reduce would rewrite it) changes what the update does
    const before = split.params.get("W1");
    const m0 = split.manifest.state.find((s) => s.param === "W1" && s.slot === "m")!;
    d.write(m0, new Float32Array(10));
    const v0 = split.manifest.state.find((s) => s.param === "W1" && s.slot === "v")!;
    d.write(v0, new Float32Array(10));
    d.run("gradients");
    d.write(m.params.find((p) => p.name === "W1")!.grad!, new Float32Array(10));
    d.run("update");
    expect(Array.from(split.params.get("W1"))).toEqual(Array.from(before));
  });

  it("an asynchronous device trains exactly like the host one through the Async forms", async () => {
    const dir = build(finite);
    const host = await load(dir);
    const later = await load(dir, { device: deferred });
    expect(later.synchronous).toBe(false);
    for (let i = 0; i < 5; i++) {
      const batch = batches[i % 2]!;
      expect(await later.stepAsync(batch)).toBe(host.step(batch));
    }
    expect(later.stepCount).toBe(5);
    expect(Array.from(await later.params.getAsync("W1"))).toEqual(Array.from(host.params.get("W1")));
    expect(await later.gradNormAsync("W2")).toBe(host.gradNorm("W2"));
    const g = await later.gradientsAsync(batches[0]!);
    const h = host.gradients(batches[0]!);
    expect(g.loss).toBe(h.loss);
    expect(Array.from(g.grads["W1"]!)).toEqual(Array.from(h.grads["W1"]!));
    expect(Array.from((await later.predictAsync(batches[1]!))["pred"]!)).toEqual(Array.from(host.predict(batches[1]!)["pred"]!));
    // a checkpoint saved from the asynchronous device restores onto the host one
    const file = join(root, "async.safetensors");
    await later.saveAsync(file);
    const back = await load(dir);
    back.restore(file);
    expect(back.stepCount).toBe(5);
    expect(back.step(batches[0]!)).toBe(host.step(batches[0]!));
  });

  it("the plain forms on an asynchronous device name the Async form to use, and run nothing", async () => {
    const dir = build(finite);
    let device: DeferredDevice | undefined;
    const t = await load(dir, { device: async (m, d) => (device = new DeferredDevice(await createDevice(m, d))) });
    expect(() => t.step(batches[0]!)).toThrow('step(batch): the "wasm" device runs asynchronously; use await stepAsync(batch)');
    expect(() => t.gradients(batches[0]!)).toThrow(/use await gradientsAsync\(batch\)/);
    expect(() => t.predict(batches[0]!)).toThrow(/use await predictAsync\(inputs\)/);
    expect(() => t.gradNorm("W1")).toThrow(/use await gradNormAsync\(name\)/);
    expect(() => t.params.get("W1")).toThrow(/use await params.getAsync\(name\)/);
    expect(() => t.save(join(root, "never.safetensors"))).toThrow(/use await saveAsync\(path\)/);
    expect(device!.runs).toBe(0);
    expect(t.stepCount).toBe(0);
  });

  it("--check-numerics goes through the device, asynchronous or not", async () => {
    const dir = build(sqrtAtZero, { dtype: "f64" });
    const t = await load(dir, { checkNumerics: true, device: deferred });
    const fault = await t.stepAsync(zeroRow).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(fault).toBeInstanceOf(NumericsError);
    expect((fault as NumericsError).fault.phase).toBe("gradients");
    expect((fault as NumericsError).fault.step).toBe(1);
    expect((fault as NumericsError).fault.src).toMatch(/^grad of sqrt at .*nonFinite\.ts:\d+$/);
    // nothing was updated
    expect(Array.from(await t.params.getAsync("w"))).toEqual([0.5, 0.5]);
  });
});
