// Measures heap bytes per training step of any bundle, in a process of its
// own: run with --expose-gc --no-concurrent-recompilation so V8 optimizes the
// step path on the main thread, whatever else the machine is doing. The data
// is made from the manifest's train inputs (four batches of seeded values;
// i32 inputs get 0 or 1) and fed through a Batcher, as the trainer feeds it.
// Usage: node --expose-gc --no-concurrent-recompilation --import tsx allocProbe.ts <bundle dir>
// Prints {"perStep": [bytes, ...], "stepCount": n}.
import { Batcher, createRng, makeDataset } from "../../runtime/data.js";
import type { Column } from "../../runtime/data.js";
import { load } from "../../runtime/load.js";

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
run(40_000);
const perStep: number[] = [];
while (perStep.length < 5) {
  gc();
  const before = process.memoryUsage().heapUsed;
  run(20_000);
  perStep.push((process.memoryUsage().heapUsed - before) / 20_000);
}
process.stdout.write(JSON.stringify({ perStep, stepCount: t.stepCount }) + "\n");
