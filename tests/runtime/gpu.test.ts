// The gpu backend on WebGPU: Dawn (the `webgpu` package) on this machine, on
// Mesa's llvmpipe. One Dawn instance for the file; small models. Its kernels
// are checked against the interpreter (f32 tolerance) and the ts backend's
// gradients; XOR trains; checkpoints move between gpu and wasm exactly; a
// step downloads nothing but the loss.
import { afterAll, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { pathToFileURL } from "node:url";
import os from "node:os";
import { join } from "node:path";
import { compile } from "../../compiler/compile.js";
import type { CompileOptions } from "../../compiler/config.js";
import { concat, graph, nn } from "../../index.js";
import type { Graph } from "../../compiler/ir/graph.js";
import { interpret } from "../../compiler/interp/interpret.js";
import { load } from "../../runtime/load.js";
import type { Trainer } from "../../runtime/load.js";
import type { GpuDevice, GpuModule } from "../../runtime/gpuDevice.js";
import { config as xorConfig, xorModel } from "../../examples/xor/model.js";
import { mnistModel } from "../../examples/mnist/model.js";
import { main } from "../../runtime/trainer.js";
import { run as gradc } from "../../compiler/cli.js";
import { expectAllClose } from "../helpers.js";
import { allocated } from "../heap.js";
import { DAWN_GLES, DAWN_NATIVE, dawnAttempts, gpuAdapterName } from "../../runtime/gpuAdapter.js";

const root = mkdtempSync(join(os.tmpdir(), "gradc-gpu-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let count = 0;
const build = (g: Graph, options: Omit<CompileOptions, "outDir"> = {}): string => {
  const dir = join(root, `b${count++}`);
  compile(g, { optimizer: { name: "adam", lr: 0.01 }, ...options, outDir: dir });
  return dir;
};

// a loaded machine compiles WGSL slowly: generous, fixed timeouts
const SLOW = 240_000;

/** A small graph through many kinds of kernels: dense layers, conv, max pool (a scatter in its gradient), an embedding (a scatter too), softmax cross-entropy. */
const mixed = graph("mixed", (g) => {
  const x = g.input("x", [2, 6, 6, 1]);
  const ids = g.input("ids", [2, 3], "i32");
  const y = g.input("y", [2], "i32");
  const W = g.param("conv.W", [3, 3, 1, 2], { init: "heNormal" });
  const h = x.conv2d(W, 1, "same").relu().maxPool2d(2).reshape([2, 18]);
  const e = nn.embedding(g, "emb", ids, 5, 4).reshape([2, 12]);
  const z = concat([h, e.tanh(), e.sigmoid().softplus()], 1);
  const logits = nn.dense(g, "out", z, 3);
  return { loss: nn.softmaxCrossEntropy(logits, y), outputs: { logits } };
});
const mixedBatch = {
  x: Array.from({ length: 72 }, (_, i) => Math.sin(i * 0.7)),
  ids: [0, 4, 2, 3, 3, 1],
  y: [2, 0],
};

const xorBatch = { x: [0, 0, 0, 1, 1, 0, 1, 1], y: [0, 1, 1, 0] };

/** A deep narrow MLP: many small kernels per step (about ten per layer). */
const deep = graph("deep", (g) => {
  let h = g.input("x", [4, 2]);
  const y = g.input("y", [4], "i32");
  for (let i = 0; i < 8; i++) h = nn.dense(g, `l${i}`, h, 4).tanh();
  return { loss: nn.softmaxCrossEntropy(nn.dense(g, "out", h, 2), y) };
});

describe("the gpu backend on WebGPU (Dawn)", () => {
  it("computes the loss, the outputs and every gradient as the interpreter and the ts backend do", async () => {
    const gpu = await load(build(mixed, { backend: "gpu" }));
    const ts = await load(build(mixed, { backend: "ts" }));
    expect(gpu.device.backend).toBe("gpu");
    for (const name of gpu.params.names()) ts.params.set(name, await gpu.params.getAsync(name));
    const params = Object.fromEntries(await Promise.all(gpu.params.names().map(async (n) => [n, Array.from(await gpu.params.getAsync(n))] as const)));
    const want = interpret(mixed, mixedBatch, params);
    const got = await gpu.gradientsAsync(mixedBatch);
    expect(got.loss).toBeCloseTo(want.loss!, 5);
    const host = ts.gradients(mixedBatch);
    for (const [name, g] of Object.entries(host.grads)) {
      // equal to the ts backend's to 1e-5 relative (of the gradient's largest element)
      const scale = Math.max(...Array.from(g, Math.abs));
      expectAllClose(got.grads[name], g, { rtol: 1e-5, atol: 1e-5 * scale });
    }
    const out = await gpu.predictAsync(mixedBatch);
    expectAllClose(out["logits"], want.outputs["logits"]!.data, { rtol: 1e-5, atol: 1e-5 });
  }, SLOW);

  it("trains XOR to a loss below 1e-3 in 1000 Adam steps, downloading only the loss", async () => {
    const t = await load(build(xorModel(), { backend: "gpu" }));
    const device = t.device as GpuDevice;
    let loss = Infinity;
    const before = device.downloads;
    for (let i = 0; i < 1000; i++) loss = await t.stepAsync(xorBatch);
    expect(device.downloads - before).toBe(1000);
    expect(loss).toBeLessThan(1e-3);
  }, SLOW);

  it("a warm step is one command buffer the device records itself: no gpu.js kernel call, no per-kernel host allocation", async () => {
    const { WebGPUKernel } = (await import("gpu.js")) as unknown as { WebGPUKernel: { prototype: { _runInternal(this: unknown, ...a: unknown[]): unknown } } };
    const original = WebGPUKernel.prototype._runInternal;
    let calls = 0;
    WebGPUKernel.prototype._runInternal = function (...a: unknown[]) {
      calls++;
      return original.apply(this, a);
    };
    const batch = { x: [0, 0, 0, 1, 1, 0, 1, 1], y: [0, 1, 1, 0] };
    try {
      const t = await load(build(deep, { backend: "gpu" }));
      const device = t.device as GpuDevice;
      const kernels = device.kernels("gradients").length + device.kernels("update").length;
      expect(kernels).toBeGreaterThan(80);
      // the first two steps run every kernel through gpu.js (which builds both kernels of each function)
      await t.stepAsync(batch);
      expect(calls).toBeGreaterThanOrEqual(kernels);
      for (let i = 0; i < 30; i++) await t.stepAsync(batch);
      calls = 0;
      const submits = device.submits;
      const downloads = device.downloads;
      const steps = 40;
      let last = 0;
      const { total, byFile } = await allocated(async () => {
        for (let i = 0; i < steps; i++) last = await t.stepAsync(batch);
      });
      expect(Number.isFinite(last)).toBe(true);
      expect(calls).toBe(0);
      expect(device.submits - submits).toBe(steps);
      expect(device.downloads - downloads).toBe(steps);
      // gpu.js's own call path costs about 4 KB a kernel (over 350 KB a step here); what is left
      // is per step: the loss's download and its promises, one command encoder, the trainer's step
      expect(total / steps).toBeLessThan(24_000);
      expect((byFile.get("gpu.js/src/backend/web-gpu/kernel.js") ?? 0) / steps).toBeLessThan(2_000);
      expect((byFile.get("runtime/gpuDevice.ts") ?? 0) / steps / kernels).toBeLessThan(32);
      await t.close();
    } finally {
      WebGPUKernel.prototype._runInternal = original;
    }
  }, SLOW);

  it("a checkpoint saved on gpu restores on wasm exactly, and one saved on wasm restores on gpu", async () => {
    const gpu = await load(build(xorModel(), { backend: "gpu" }));
    const wasm = await load(build(xorModel(), { backend: "wasm" }));
    for (let i = 0; i < 5; i++) await gpu.stepAsync(xorBatch);
    const file = join(root, "gpu.safetensors");
    await gpu.saveAsync(file);
    wasm.restore(file);
    expect(wasm.stepCount).toBe(5);
    for (const name of gpu.params.names()) expect(Array.from(wasm.params.get(name))).toEqual(Array.from(await gpu.params.getAsync(name)));
    for (let i = 0; i < 3; i++) wasm.step(xorBatch);
    const back = join(root, "wasm.safetensors");
    wasm.save(back);
    const again: Trainer = await load(build(xorModel(), { backend: "gpu" }));
    again.restore(back);
    expect(again.stepCount).toBe(8);
    for (const name of wasm.params.names()) expect(Array.from(await again.params.getAsync(name))).toEqual(Array.from(wasm.params.get(name)));
  }, SLOW);

  it("gradc train runs a gpu bundle: its own data, 1000 steps, a checkpoint", async () => {
    const dir = build(xorModel(), { backend: "gpu", training: xorConfig.training! });
    const summary = (await main(dir, [], { log: () => {}, progress: false }))!;
    expect(summary.steps).toBe(1000);
    expect(summary.finalLoss).toBeLessThan(1e-3);
    expect(existsSync(join(dir, "checkpoints", "latest.safetensors"))).toBe(true);
  }, SLOW);

  it("gives each param, its gradient and each optimizer-state slot a device buffer of its own, so a kernel writes only what it computes", async () => {
    const dir = build(xorModel(), { backend: "gpu" });
    const mod = (await import(pathToFileURL(join(dir, "kernels.gpu.js")).href)) as GpuModule;
    const rootOf = (label: string) => mod.ROOTS.findIndex((r) => r.label === label);
    const sizes = { W1: 16, b1: 8, W2: 8, b2: 1 };
    for (const [p, size] of Object.entries(sizes)) {
      for (const label of [p, `d${p}`, `m(${p})`, `v(${p})`]) {
        expect(rootOf(label), label).toBeGreaterThanOrEqual(0);
        expect(mod.ROOTS[rootOf(label)]!.size, label).toBe(size);
      }
    }
    // the update of W1 writes W1 and its two state slots, nothing else
    const adam = mod.KERNELS.find((k) => k.name === "adam_W1")!;
    expect(adam.parts.map((x) => mod.ROOTS[x.out]!.label).sort()).toEqual(["W1", "m(W1)", "v(W1)"]);
    // every root a gradient kernel writes is at most the size of what it computes: never a whole block
    const total = Object.values(sizes).reduce((a, b) => a + b, 0);
    for (const k of mod.KERNELS) for (const x of k.parts) expect(mod.ROOTS[x.out]!.size, k.name).toBeLessThan(total);
  }, SLOW);

  it("close() releases the GPU: the device refuses work after it, and `node train.js` exits when training is done, with gradient norms logged", async () => {
    const t = await load(build(xorModel(), { backend: "gpu" }));
    await t.stepAsync(xorBatch);
    await t.close();
    await expect(t.stepAsync(xorBatch)).rejects.toThrow("gpu: the device was closed; load the bundle again");
    // while Dawn holds a device Node never exits: a trainer that did not release it would hit the timeout
    const dir = build(xorModel(), { backend: "gpu", training: xorConfig.training! });
    const r = spawnSync(process.execPath, [join(dir, "train.js"), "--steps", "20", "--grad-norms", "10", "--no-progress"], { cwd: process.cwd(), encoding: "utf8", timeout: 180_000 });
    expect(r.error).toBeUndefined();
    expect(r.signal).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/final loss \d/);
    const norms = readFileSync(join(dir, "logs", "grad_norms.csv"), "utf8").trim().split("\n");
    // steps 1, 10 and 20, one row per param
    expect(norms.length).toBe(1 + 3 * 4);
    expect(norms[1]).toMatch(/^1,W1,\d+\.\d+(e-?\d+)?,$/);
  }, SLOW);

  it("the MNIST MLP takes the same Adam steps on gpu as on wasm (the full run: README)", async () => {
    const gpu = await load(build(mnistModel(), { backend: "gpu", optimizer: { name: "adam", lr: 0.001 } }));
    const wasm = await load(build(mnistModel(), { backend: "wasm", optimizer: { name: "adam", lr: 0.001 } }));
    for (const name of wasm.params.names()) gpu.params.set(name, wasm.params.get(name));
    for (let i = 0; i < 4; i++) {
      const batch = { x: Array.from({ length: 32 * 784 }, (_, j) => ((j * 7919 + i * 104729) % 256) / 255), y: Array.from({ length: 32 }, (_, j) => (j * 3 + i) % 10) };
      const want = wasm.step(batch);
      expect(await gpu.stepAsync(batch)).toBeCloseTo(want, 4);
    }
    for (const name of wasm.params.names()) expectAllClose(await gpu.params.getAsync(name), wasm.params.get(name), { rtol: 1e-3, atol: 1e-5 });
    await gpu.close();
  }, SLOW);

  it("asks Dawn's own backend (Vulkan here) first only where the Vulkan loader is installed, OpenGL ES (llvmpipe) last; the device names the adapter it got", async () => {
    const loader = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib/x86_64-linux-gnu", "/lib64"].some((d) => existsSync(join(d, "libvulkan.so.1")));
    expect(dawnAttempts()).toEqual(loader ? [DAWN_NATIVE, DAWN_GLES] : [DAWN_GLES]);
    expect(DAWN_GLES).toEqual({ flags: ["backend=opengles"], options: { featureLevel: "compatibility" } });
    const t = await load(build(xorModel(), { backend: "gpu" }));
    expect(t.device.adapter).toBe(`WebGPU: ${await gpuAdapterName()}`);
    // this machine has no GPU: Mesa's software rasterizer answers
    expect(t.device.adapter).toMatch(/llvmpipe/);
    await t.close();
  }, SLOW);

  it('backend "auto" compiles for gpu where Dawn has an adapter and for wasm where it has none, and the manifest says which and why', async () => {
    const dir = join(root, "auto-gpu");
    const result = compile(xorModel(), { backend: "auto", optimizer: { name: "adam", lr: 0.01 }, outDir: dir });
    expect(result.manifest.backend).toBe("gpu");
    expect(result.manifest.backendChoice?.reason).toMatch(/^a WebGPU adapter answered: ./);
    const t = await load(dir);
    expect(t.device.backend).toBe("gpu");
    expect(Number.isFinite(await t.stepAsync(xorBatch))).toBe(true);
    await t.close();
    // no adapter: EGL looks for an X display that is not there
    const saved = process.env["EGL_PLATFORM"];
    process.env["EGL_PLATFORM"] = "x11";
    try {
      const none = compile(xorModel(), { backend: "auto", optimizer: { name: "adam", lr: 0.01 }, outDir: join(root, "auto-none") });
      expect(none.manifest.backend).toBe("wasm");
      expect(none.manifest.backendChoice).toEqual({ asked: "auto", reason: "no WebGPU adapter: WebGPU (Dawn) found no adapter (EGL_PLATFORM=x11)" });
      expect((await load(join(root, "auto-none"))).device.backend).toBe("wasm");
    } finally {
      if (saved === undefined) delete process.env["EGL_PLATFORM"];
      else process.env["EGL_PLATFORM"] = saved;
    }
  }, SLOW);

  it("gradc inspect --grad W2 --shader prints the WGSL gpu.js generated for each function of the slice; a wasm bundle is refused", async () => {
    const cli = async (...argv: string[]) => {
      const out: string[] = [];
      const err: string[] = [];
      const code = await gradc(argv, { out: (t) => out.push(t), err: (t) => err.push(t) });
      return { code, out: out.join("\n"), err: err.join("\n") };
    };
    const dir = build(xorModel(), { backend: "gpu" });
    const r = await cli("inspect", dir, "--grad", "W2", "--shader");
    expect(r.code, r.err).toBe(0);
    const head = /^\/\/ dLoss\/dW2: (\d+) backward kernels: the WGSL gpu\.js generated for each function \(adapter: .+\)$/m.exec(r.out);
    expect(head).not.toBeNull();
    const fns = [...r.out.matchAll(/^\/\/ (\w+): (\w+)$/gm)];
    expect(fns.length).toBeGreaterThanOrEqual(Number(head![1]));
    // every function's WGSL entry point, once per function
    expect([...r.out.matchAll(/^@compute @workgroup_size\(/gm)].length).toBe(fns.length);
    expect(r.out).toMatch(/var<storage, read_write> result : array<f32>;/);
    const wasm = build(xorModel(), { backend: "wasm" });
    const refused = await cli("inspect", wasm, "--grad", "W2", "--shader");
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/--shader prints the shaders of a gpu bundle's kernels; .* holds "wasm" kernels \(compile with --backend gpu\)/);
  }, SLOW);

  it("refuses f64 at compile time, naming the backend", () => {
    expect(() => build(xorModel(), { backend: "gpu", dtype: "f64" })).toThrow('compile: backend "gpu" computes in float32 only; dtype "f64" needs backend "ts" or "wasm"');
  });
});
