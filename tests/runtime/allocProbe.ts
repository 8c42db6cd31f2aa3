// Measures heap bytes per training step of a loaded bundle, in a process of its
// own: run with --expose-gc --no-concurrent-recompilation so V8 optimizes the
// step path on the main thread, whatever else the machine is doing.
// Usage: node --expose-gc --no-concurrent-recompilation --import tsx allocProbe.ts <bundle dir>
import { Batcher, makeDataset } from "../../runtime/data.js";
import { load } from "../../runtime/load.js";
import { blobs } from "./fixture.js";

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("allocProbe: run node with --expose-gc");
const t = await load(process.argv[2]!);
const d = blobs(64, 2, 3, 9);
const batcher = new Batcher(makeDataset({ x: d.x, y: d.y }, 64), t.manifest.inputs, 4);
const order = batcher.order(0, true, 1);
const run = (n: number) => {
  for (let i = 0; i < n; i++) {
    batcher.fill(order, (i % 16) * 4);
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
