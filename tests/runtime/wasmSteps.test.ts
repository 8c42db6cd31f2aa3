// A wasm bundle's warm training step on the host device: its kernels (the
// convolution's packing, pooling, products, elementwise and row loops)
// allocate nothing on the JavaScript heap, measured with V8's sampling heap
// profiler over many steps; on an arena outside the module's memory the same
// kernels give the same values.
import { afterAll, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { compile } from "../../compiler/compile.js";
import { graph, nn } from "../../index.js";
import { load } from "../../runtime/load.js";
import { floatArena } from "../../runtime/hostDevice.js";
import type { StepModule } from "../../runtime/manifest.js";
import type { HostDevice } from "../../runtime/device.js";
import { allocated } from "../heap.js";
import { expectAllClose } from "../helpers.js";

const root = mkdtempSync(join(os.tmpdir(), "gradc-wasm-steps-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** conv 3×3 → ReLU → max pool → dense, softmax cross-entropy: every kind of WebAssembly work a CNN step has. */
const cnn = graph("cnn", (g) => {
  const x = g.input("x", [4, 16, 16, 4]);
  const labels = g.input("labels", [4], "i32");
  const h = x.conv2d(g.param("K", [3, 3, 4, 8], { init: "heNormal" }), 1, "same").add(g.param("kb", [8])).relu().maxPool2d(2);
  return { loss: nn.softmaxCrossEntropy(nn.dense(g, "out", h.reshape([4, 512]), 10), labels) };
});

it("a warm CNN step allocates (almost) nothing in its kernels: no view, no closure, nothing per call", async () => {
  const dir = join(root, "cnn");
  compile(cnn, { optimizer: { name: "sgd", lr: 0.01 }, backend: "wasm", outDir: dir });
  const step = readFileSync(join(dir, "step.js"), "utf8");
  // the convolution's packing and the pooling are WebAssembly data movement
  for (const call of ["$pack", "$unpack", "$run"]) expect(step).toContain(call);
  const t = await load(dir);
  const device = t.device as HostDevice;
  device.writeScalar(t.manifest.hyper.lr, 0.01);
  const x = Float32Array.from({ length: 4 * 16 * 16 * 4 }, (_, i) => Math.sin(i));
  t.device.write(t.manifest.inputs.find((i) => i.name === "x")!, x);
  t.device.write(t.manifest.inputs.find((i) => i.name === "labels")!, [1, 5, 9, 3]);
  // warm: the JavaScript around the WebAssembly optimized (unoptimized code boxes doubles)
  for (let i = 0; i < 1000; i++) device.run("step");
  const steps = 200;
  const { byCaller } = await allocated(() => {
    for (let i = 0; i < steps; i++) device.run("step");
  });
  // the bundle's kernel files (run as step.ts where a TypeScript loader resolves the .js import), builtins they call included
  const kernels = [...byCaller].filter(([file]) => /\/(step|forward)\.[jt]s(\?|$)/.test(file)).reduce((n, [, b]) => n + b, 0);
  // a typed-array view (subarray) is about 100 bytes: one per step would show as 100 here
  expect(kernels / steps).toBeLessThan(48);
  expect(Number.isFinite(t.device.scalar(t.manifest.loss!))).toBe(true);
  await t.close();
}, 120_000);

/** An MLP with products big enough to split across two threads, its packing, epilogues and update split too. */
const mlp = graph("mlp", (g) => {
  const x = g.input("x", [64, 256]);
  const labels = g.input("labels", [64], "i32");
  const h = nn.dense(g, "h", x, 256).relu();
  return { loss: nn.softmaxCrossEntropy(nn.dense(g, "out", h, 10), labels) };
});

it("a warm step on two threads allocates (almost) nothing in the pool: no argument list per job or per chunk", async () => {
  const dir = join(root, "mlp");
  compile(mlp, { optimizer: { name: "sgd", lr: 0.01 }, backend: "wasm", outDir: dir });
  const t = await load(dir, { threads: 2 });
  const device = t.device as HostDevice;
  if ((device.threads ?? 1) < 2) {
    await t.close();
    return; // one core: nothing is split
  }
  device.writeScalar(t.manifest.hyper.lr, 0.01);
  t.device.write(t.manifest.inputs.find((i) => i.name === "x")!, Float32Array.from({ length: 64 * 256 }, (_, i) => Math.sin(i)));
  t.device.write(t.manifest.inputs.find((i) => i.name === "labels")!, Array.from({ length: 64 }, (_, i) => i % 10));
  for (let i = 0; i < 1000; i++) device.run("step");
  const steps = 200;
  const { byCaller } = await allocated(() => {
    for (let i = 0; i < steps; i++) device.run("step");
  });
  // the split exports' calls and the chunks they run (with their arguments: packing and elementwise exports take them)
  const pool = [...byCaller].filter(([file]) => /runtime\/(jobs|wasmThreads)\.[jt]s/.test(file)).reduce((n, [, b]) => n + b, 0);
  const kernels = [...byCaller].filter(([file]) => /\/(step|forward)\.[jt]s(\?|$)/.test(file)).reduce((n, [, b]) => n + b, 0);
  // an argument list is about 50 bytes, and a step runs a dozen split jobs of 8 chunks each
  expect(pool / steps).toBeLessThan(256);
  expect(kernels / steps).toBeLessThan(48);
  await t.close();
}, 120_000);

it("the CNN step gives the same values on an arena outside the module's memory (data movement on copies in the scratch)", async () => {
  const dir = join(root, "cnn");
  const t = await load(dir);
  const m = t.manifest;
  const mod = (await import(pathToFileURL(join(dir, m.files.step)).href)) as StepModule;
  const inMemory = floatArena(m, mod);
  const plain = new Float32Array(m.arena.floats);
  expect(plain.buffer).not.toBe(inMemory.buffer);
  const I = new Int32Array(Math.max(1, m.arena.ints));
  for (const F of [inMemory, plain]) {
    for (const p of m.params) F.set(Float32Array.from({ length: p.shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.cos(i + p.offset)), p.offset);
    const x = m.inputs.find((i) => i.name === "x")!;
    F.set(Float32Array.from({ length: 4 * 16 * 16 * 4 }, (_, i) => Math.sin(i)), x.offset);
    F[m.hyper.lr.offset] = 0.01;
  }
  I.set([1, 5, 9, 3], m.inputs.find((i) => i.name === "labels")!.offset);
  const [a, b] = [mod.create(inMemory, I), mod.create(plain, I)];
  for (let i = 0; i < 3; i++) {
    a.step();
    b.step();
  }
  // the same values (the exp and log of loops in WebAssembly are approximations within a few ulps)
  expectAllClose(plain, inMemory, { rtol: 1e-5, atol: 1e-6 });
  await t.close();
}, 120_000);
