// The benchmark's model: the MLP of PERFORMANCE.md (batch 128, 784→256→256→10,
// ReLU, softmax cross-entropy, Adam), compiled into a bundle whose step()
// runs on arenas set up here the way the runtime sets them up.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { graph } from "../compiler/dsl/graph.js";
import * as nn from "../compiler/dsl/nn.js";
import type { Graph } from "../compiler/ir/graph.js";
import { compile } from "../compiler/compile.js";
import type { CompileOptions } from "../compiler/config.js";
import type { CompileSummary } from "../compiler/bundle/summary.js";
import type { Manifest, StepModule } from "../runtime/manifest.js";
import { floatArena } from "../runtime/hostDevice.js";
import { loadSafetensors } from "../runtime/safetensors.js";
import { load } from "../runtime/load.js";
import { relaxedSimd } from "../runtime/wasmFeatures.js";

export const BATCH = 128;
/** Layer widths, input first. */
export const SIZES = [784, 256, 256, 10] as const;
export const LR = 0.001;

/** The MLP as a gradc graph: params W1, b1, W2, b2, W3, b3. */
export const mlp: Graph = graph("mlp", (g) => {
  const x = g.input("x", [BATCH, SIZES[0]]);
  const y = g.input("y", [BATCH], "i32");
  let h = x;
  for (let l = 1; l < SIZES.length; l++) {
    const W = g.param(`W${l}`, [SIZES[l - 1]!, SIZES[l]!], { init: l < SIZES.length - 1 ? "heNormal" : "glorotUniform" });
    const b = g.param(`b${l}`, [SIZES[l]!]);
    h = h.matmul(W).add(b);
    if (l < SIZES.length - 1) h = h.relu();
  }
  return { loss: nn.softmaxCrossEntropy(h, y), outputs: { logits: h } };
});

/** One batch like MNIST's: pixels in [0, 1), labels below 10 (seeded). */
export function batch(seed = 1): { x: Float32Array; y: Int32Array } {
  let s = seed >>> 0;
  const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  return { x: Float32Array.from({ length: BATCH * SIZES[0] }, rand), y: Int32Array.from({ length: BATCH }, () => Math.floor(rand() * 10)) };
}

/** A compiled training step bound to its arenas. */
export interface CompiledStep {
  readonly manifest: Manifest;
  readonly summary: CompileSummary;
  /** One Adam step on the batch in the arenas. */
  step(): void;
  loss(): number;
  /** The initial weights, by param name (for the hand-written step). */
  readonly weights: Readonly<Record<string, Float32Array>>;
  dispose(): void;
}

/** Compiles the MLP with `options` into a temporary folder and loads its step. */
export async function compiledStep(options: Omit<CompileOptions, "outDir">, data = batch()): Promise<CompiledStep> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "gradc-bench-"));
  const r = compile(mlp, { optimizer: { name: "adam", lr: LR }, ...options, outDir: path.join(dir, "mlp") });
  const m = r.manifest;
  // relaxed SIMD on before the module compiles, as the runtime does (the products' FMA)
  relaxedSimd();
  const mod = (await import(pathToFileURL(path.join(r.outDir, m.files.step)).href)) as StepModule;
  // the arena where the runtime places it: in the step module's WebAssembly memory when it offers one
  const F = floatArena(m, mod);
  const I = new Int32Array(Math.max(1, m.arena.ints));
  const weights = loadSafetensors(path.join(r.outDir, m.files.weights)).tensors;
  const initial: Record<string, Float32Array> = {};
  for (const p of m.params) {
    initial[p.name] = Float32Array.from(weights[p.name]!.data);
    F.set(initial[p.name]!, p.offset);
  }
  F.set(data.x, m.inputs.find((i) => i.name === "x")!.offset);
  I.set(data.y, m.inputs.find((i) => i.name === "y")!.offset);
  const kernels = mod.create(F, I);
  let t = 0;
  return {
    manifest: m,
    summary: r.summary,
    step: () => {
      F[m.hyper.lr.offset] = LR;
      I[m.hyper.step.offset] = ++t;
      kernels.step();
    },
    loss: () => F[m.loss!.offset]!,
    weights: initial,
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The MLP on the gpu backend (gpu.js on WebGPU), loaded by the runtime, from `weights`: each step uploads the batch and downloads the loss. */
export async function gpuStep(weights: Readonly<Record<string, Float32Array>>, data = batch()): Promise<{ step(): Promise<number>; dispose(): void }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "gradc-bench-gpu-"));
  compile(mlp, { optimizer: { name: "adam", lr: LR }, backend: "gpu", outDir: path.join(dir, "mlp") });
  const t = await load(path.join(dir, "mlp"));
  for (const [name, w] of Object.entries(weights)) t.params.set(name, w);
  const feeds = { x: data.x, y: data.y };
  // closing releases the GPU, without which Node does not exit
  return { step: () => t.stepAsync(feeds), dispose: () => void t.close().finally(() => rmSync(dir, { recursive: true, force: true })) };
}
