// Compile time, first-step time and steady step time (median) of gradc's
// bundles for the bench workloads (bench/peers/workloads.ts: the MLP with SGD
// and Adam, XOR, the transformer block, the CNN). The first step() of a
// freshly loaded bundle includes V8's lazy compilation of its JavaScript and
// WebAssembly; it is reported as a multiple of the steady median.
// Run with `npx tsx bench/stepTime.ts [--backend ts|wasm] [--threads N]`
// (default: every core, as a trainer runs); bundles go to temp folders.
import os from "node:os";
import { gradcStep } from "./peers/gradc.js";
import { workloads } from "./peers/workloads.js";

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const fmt = (ms: number): string => (ms < 1 ? `${(ms * 1000).toFixed(1)} µs` : `${ms.toFixed(2)} ms`);

const flag = (name: string): string | undefined => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
const backend = flag("--backend") ?? "wasm";
if (backend !== "ts" && backend !== "wasm") throw new Error(`stepTime: --backend must be ts or wasm, not ${String(backend)}`);
const threads = Number(flag("--threads") ?? os.availableParallelism());
if (!(Number.isInteger(threads) && threads >= 1)) throw new Error(`stepTime: --threads must be an integer >= 1, not ${String(flag("--threads"))}`);

console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? "cpu"} x${os.availableParallelism()}, backend ${backend}, ${threads} thread${threads > 1 ? "s" : ""} asked`);
for (const w of workloads()) {
  const s = await gradcStep(w, { wasm: backend === "wasm", threads });
  try {
    const t0 = performance.now();
    s.step();
    const first = performance.now() - t0;
    // enough steps per sample that a sample takes about a millisecond or more
    const perSample = Math.max(1, Math.ceil(1 / Math.max(first / 50, 1e-4)));
    for (let i = 0; i < Math.min(2000, 20 * perSample); i++) s.step();
    const times: number[] = [];
    for (let k = 0; k < 31; k++) {
      const t = performance.now();
      for (let i = 0; i < perSample; i++) s.step();
      times.push((performance.now() - t) / perSample);
    }
    const steady = median(times);
    console.log(
      `${w.name.padEnd(12)} ${s.threads} thr  compile ${s.compileMs.total.toFixed(0).padStart(5)} ms   load ${s.loadMs.toFixed(1).padStart(6)} ms` +
        `   first step ${fmt(first).padStart(9)}   steady ${fmt(steady).padStart(9)} (median)   first/steady ${(first / steady).toFixed(1)}×`,
    );
  } finally {
    await s.dispose();
  }
}
