// Compile time and step time (median) of the XOR and MNIST bundles.
// Run with `npx tsx bench/stepTime.ts`; bundles go to a temp folder.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import xor, { config as xorConfig } from "../examples/xor/model.js";
import mnist, { config as mnistConfig } from "../examples/mnist/model.js";
import { compile } from "../compiler/compile.js";
import type { CompileResult } from "../compiler/compile.js";
import type { Graph } from "../compiler/ir/graph.js";
import type { ModelConfig } from "../compiler/config.js";
import type { StepModule } from "../runtime/manifest.js";
import { loadSafetensors } from "../runtime/safetensors.js";

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Fills the inputs with values like the real data: floats in [0, 1), labels below `classes`. */
function fillInputs(r: CompileResult, F: Float32Array | Float64Array, I: Int32Array, classes: number): void {
  let seed = 1;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (const input of r.manifest.inputs) {
    const n = input.shape.reduce((a, b) => a * b, 1);
    for (let i = 0; i < n; i++) {
      if (input.arena === "F") F[input.offset + i] = rand();
      else I[input.offset + i] = Math.floor(rand() * classes);
    }
  }
}

interface Result {
  readonly name: string;
  readonly compileMs: number[];
  readonly stepMs: number;
}

async function bench(name: string, g: Graph, config: ModelConfig, dir: string, opts: { warmup: number; samples: number; stepsPerSample: number; classes: number }): Promise<Result> {
  const compileMs: number[] = [];
  let r: CompileResult | undefined;
  for (let k = 0; k < 3; k++) {
    r = compile(g, { optimizer: config.optimizer!, outDir: path.join(dir, `${name}-${k}`) });
    compileMs.push(r.timings.total);
  }
  const m = r!.manifest;
  const mod = (await import(pathToFileURL(path.join(r!.outDir, m.files.step)).href)) as StepModule & { WASM?: { arena?: (floats: number) => Float32Array | undefined } };
  // the arena where the runtime places it: in the step module's WebAssembly memory when it offers one
  const F = m.dtype === "f64" ? new Float64Array(m.arena.floats) : (mod.WASM?.arena?.(m.arena.floats) ?? new Float32Array(m.arena.floats));
  const I = new Int32Array(Math.max(1, m.arena.ints));
  const weights = loadSafetensors(path.join(r!.outDir, m.files.weights)).tensors;
  for (const p of m.params) F.set(weights[p.name]!.data as Float32Array, p.offset);
  fillInputs(r!, F, I, opts.classes);
  const kernels = mod.create(F, I);
  let t = 0;
  const step = () => {
    F[m.hyper.lr.offset] = m.optimizer.lr;
    I[m.hyper.step.offset] = ++t;
    kernels.step();
  };
  for (let i = 0; i < opts.warmup; i++) step();
  const times: number[] = [];
  for (let s = 0; s < opts.samples; s++) {
    const t0 = performance.now();
    for (let i = 0; i < opts.stepsPerSample; i++) step();
    times.push((performance.now() - t0) / opts.stepsPerSample);
  }
  return { name, compileMs, stepMs: median(times) };
}

const dir = mkdtempSync(path.join(os.tmpdir(), "gradc-bench-"));
try {
  const results = [
    await bench("xor", xor, xorConfig, dir, { warmup: 5000, samples: 51, stepsPerSample: 200, classes: 2 }),
    await bench("mnist", mnist, mnistConfig, dir, { warmup: 10, samples: 31, stepsPerSample: 1, classes: 10 }),
  ];
  console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? "cpu"} x${os.cpus().length}`);
  for (const r of results) {
    const [cold, ...warm] = r.compileMs;
    console.log(
      `${r.name.padEnd(6)} compile ${cold!.toFixed(0)} ms (first in process), ${median(warm).toFixed(0)} ms (again)` +
        `   step ${r.stepMs < 1 ? `${(r.stepMs * 1000).toFixed(1)} µs` : `${r.stepMs.toFixed(2)} ms`} (median)`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
