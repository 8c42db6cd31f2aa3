// The MNIST MLP training step (PERFORMANCE.md: batch 128, 784→256→256→10,
// softmax cross-entropy, Adam) compiled with fusion (matmul products in
// WebAssembly SIMD), with fusion but every kernel in TypeScript, without
// fusion, and written by hand in plain JavaScript, timed with benny. All four
// start from the same weights and batch; their first losses must agree.
import b from "benny";
import { writeFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { HandwrittenStep } from "./handwritten.js";
import { batch, compiledStep, gpuStep } from "./mlp.js";
import { gpuAdapterName } from "../runtime/gpuAdapter.js";
import type { CompiledStep } from "./mlp.js";

type Summary = Awaited<ReturnType<typeof b.suite>>;

/** What the suite measured, saved with benny's own JSON. */
export interface MnistStepResult {
  readonly msPerStep: Readonly<Record<"fused" | "fusedTs" | "unfused" | "handwritten" | "gpu", number>>;
  /** The WebGPU adapter the gpu column ran on (Dawn on Mesa's llvmpipe is a CPU). */
  readonly gpuAdapter: string;
  /** How many times faster the fused step is than the unfused and the hand-written ones (and the same for fused TypeScript only). */
  readonly speedup: {
    readonly overUnfused: number;
    readonly overHandwritten: number;
    readonly tsOverUnfused: number;
    readonly tsOverHandwritten: number;
  };
  readonly kernels: { readonly fused: number; readonly unfused: number };
  readonly peakBytes: { readonly fused: number; readonly unfused: number };
  readonly firstLoss: Readonly<Record<string, number>>;
}

/** Runs the suite; results go to `folder` (benny's JSON and mnist-step.summary.json). */
export async function mnistStepSuite(folder: string, options: { maxTime?: number } = {}): Promise<MnistStepResult> {
  const data = batch(1);
  const fused: CompiledStep = await compiledStep({}, data);
  const fusedTs: CompiledStep = await compiledStep({ wasm: false }, data);
  const unfused: CompiledStep = await compiledStep({ fusion: false }, data);
  const hand = new HandwrittenStep(fused.weights, data.x, data.y);
  // one step each from the same weights: the losses agree to float32 rounding
  fused.step();
  fusedTs.step();
  unfused.step();
  hand.step();
  const gpu = await gpuStep(fused.weights, data);
  const firstLoss = { fused: fused.loss(), fusedTs: fusedTs.loss(), unfused: unfused.loss(), handwritten: hand.loss(), gpu: await gpu.step() };
  for (const [name, loss] of Object.entries(firstLoss)) {
    if (Math.abs(loss - firstLoss.fused) > 1e-4 * Math.abs(firstLoss.fused)) {
      throw new Error(`mnist step: ${name}'s first loss ${loss} differs from the fused step's ${firstLoss.fused}`);
    }
  }
  const cases = { maxTime: options.maxTime ?? 5, minSamples: 10 };
  const summary: Summary = await b.suite(
    "mnist-step",
    b.add("fused", () => fused.step(), cases),
    b.add("fusedTs", () => fusedTs.step(), cases),
    b.add("unfused", () => unfused.step(), cases),
    b.add("handwritten", () => hand.step(), cases),
    b.add("gpu", async () => {
      await gpu.step();
    }, cases),
    b.cycle(),
    b.complete(),
    b.save({ file: "mnist-step", folder, format: "json", details: true }),
  );
  // the median time of one step (benny's ops/s is rounded to an integer)
  const ms = (name: string) => 1000 * summary.results.find((r) => r.name === name)!.details.median;
  const result: MnistStepResult = {
    msPerStep: { fused: ms("fused"), fusedTs: ms("fusedTs"), unfused: ms("unfused"), handwritten: ms("handwritten"), gpu: ms("gpu") },
    gpuAdapter: await gpuAdapterName(),
    speedup: {
      overUnfused: ms("unfused") / ms("fused"),
      overHandwritten: ms("handwritten") / ms("fused"),
      tsOverUnfused: ms("unfused") / ms("fusedTs"),
      tsOverHandwritten: ms("handwritten") / ms("fusedTs"),
    },
    kernels: { fused: fused.summary.kernels.step, unfused: unfused.summary.kernels.step },
    peakBytes: { fused: fused.summary.memory.peakBytes, unfused: unfused.summary.memory.peakBytes },
    firstLoss,
  };
  mkdirSync(folder, { recursive: true });
  writeFileSync(path.join(folder, "mnist-step.summary.json"), JSON.stringify(result, null, 2) + "\n");
  for (const c of [fused, fusedTs, unfused, gpu]) c.dispose();
  return result;
}
