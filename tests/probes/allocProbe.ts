// Measures heap bytes per training step of any bundle, in a process of its
// own: run with --expose-gc --no-concurrent-recompilation so V8 optimizes the
// step path on the main thread, whatever else the machine is doing. The data
// is made from the manifest's train inputs (four batches of seeded values;
// i32 inputs get 0 or 1) and fed through a Batcher, as the trainer feeds it.
// Usage: node --expose-gc --no-concurrent-recompilation --max-semi-space-size=64 --import tsx allocProbe.ts <bundle dir>
// Prints {"rounds": [{bytes (per step), collections}, ...], "stepCount": n, "roundSteps": steps per round}.
import { Batcher, createRng, makeDataset } from "../../runtime/data.js";
import type { Column } from "../../runtime/data.js";
import { load } from "../../runtime/load.js";
import { PerformanceObserver } from "node:perf_hooks";

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("allocProbe: run node with --expose-gc");
const t = await load(process.argv[2]!);
const inputs = t.manifest.inputs.filter((i) => i.usedBy.includes("train"));
const batch = t.batchSize;
const examples = 4 * batch;
const rand = createRng(9);
const columns: Record<string, Column> = {};
for (const input of inputs) {
  const n = (examples * input.shape.slice(1).reduce((a, b) => a * b, 1)) | 0;
  columns[input.name] =
    input.arena === "I" ? Int32Array.from({ length: n }, () => (rand() < 0.5 ? 0 : 1)) : Float32Array.from({ length: n }, () => 2 * rand() - 1);
}
const batcher = new Batcher(makeDataset(columns, examples), inputs, batch);
const order = batcher.order(0, true, 1);
const run = (n: number) => {
  for (let i = 0; i < n; i++) {
    batcher.fill(order, (i % 4) * batch);
    t.step(batcher.batch);
  }
};
const warmStart = performance.now();
run(40_000);
// rounds of ~0.5 s (at most 200,000 steps): V8's own occasional allocations (code,
// feedback) are spread thin, and even 64 bytes a step stays inside the young
// generation (--max-semi-space-size=64), so garbage shows as growth, not a collection
const perSecond = 40_000 / ((performance.now() - warmStart) / 1000);
const roundSteps = Math.min(200_000, Math.max(20_000, Math.ceil(0.5 * perSecond)));
let collections = 0;
const observer = new PerformanceObserver((list) => (collections += list.getEntries().length));
observer.observe({ entryTypes: ["gc"] });
const settle = () => new Promise((r) => setTimeout(r, 20));
const rounds: { bytes: number; collections: number }[] = [];
while (rounds.length < 5) {
  gc();
  await settle();
  collections = 0;
  const before = process.memoryUsage().heapUsed;
  run(roundSteps);
  const bytes = (process.memoryUsage().heapUsed - before) / roundSteps;
  await settle();
  rounds.push({ bytes, collections });
}
observer.disconnect();
process.stdout.write(JSON.stringify({ rounds, stepCount: t.stepCount, roundSteps }) + "\n");
