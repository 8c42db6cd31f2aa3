// Thread scaling of gradc's steps and of the 512³ sgemm: the same bundle on
// one thread and on N (default: every core), timed in alternating rounds in
// one process so that both see the same load, with the median of each. On a
// shared machine only a load below 1 (`uptime`) makes the ratio meaningful.
// Run with `npx tsx bench/threads.ts [--threads N] [--rounds R] [workload…]`
// (workloads: mlpSgd mlpAdam xor transformer cnn sgemm; default all).
import os from "node:os";
import { gradcStep } from "./peers/gradc.js";
import { sgemmOperands, workloads } from "./peers/workloads.js";
import { sharedProduct } from "./sgemm.js";

const flag = (name: string): string | undefined => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
const threads = Number(flag("--threads") ?? os.availableParallelism());
const rounds = Number(flag("--rounds") ?? 15);
if (!(Number.isInteger(threads) && threads >= 2)) throw new Error(`threads: --threads must be an integer >= 2, not ${String(flag("--threads"))}`);
if (!(Number.isInteger(rounds) && rounds >= 1)) throw new Error(`threads: --rounds must be an integer >= 1, not ${String(flag("--rounds"))}`);
const named = process.argv.slice(2).filter((a, i, all) => !a.startsWith("--") && !all[i - 1]?.startsWith("--"));

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const fmt = (ms: number): string => (ms < 1 ? `${(ms * 1000).toFixed(1)} µs` : `${ms.toFixed(2)} ms`);

/** Median ms per call of `a` and `b`, alternating rounds of `calls` calls each (after a warm-up). */
function alternate(a: () => unknown, b: () => unknown, calls: number): [number, number] {
  for (let i = 0; i < 3 * calls; i++) {
    a();
    b();
  }
  const [ta, tb]: number[][] = [[], []];
  for (let r = 0; r < rounds; r++) {
    for (const [f, into] of [[a, ta], [b, tb]] as const) {
      const t = performance.now();
      for (let i = 0; i < calls; i++) f();
      into.push((performance.now() - t) / calls);
    }
  }
  return [median(ta), median(tb)];
}

console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? "cpu"} x${os.availableParallelism()}, load ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}; 1 thread vs ${threads}, ${rounds} alternating rounds, medians`);
for (const w of workloads()) {
  if (named.length && !named.includes(w.name)) continue;
  const one = await gradcStep(w, { threads: 1 });
  const many = await gradcStep(w, { threads });
  try {
    const t = performance.now();
    one.step();
    const calls = Math.max(1, Math.ceil(5 / Math.max(performance.now() - t, 1e-3)));
    const [t1, tn] = alternate(() => one.step(), () => many.step(), Math.min(calls, 2000));
    console.log(`${w.name.padEnd(12)} 1 thread ${fmt(t1).padStart(9)}   ${many.threads} threads ${fmt(tn).padStart(9)}   ${(t1 / tn).toFixed(2)}×`);
  } finally {
    await one.dispose();
    await many.dispose();
  }
}
if (!named.length || named.includes("sgemm")) {
  const { a, b, n } = sgemmOperands();
  const one = await sharedProduct(n, n, n, a, b, 1);
  const many = await sharedProduct(n, n, n, a, b, threads);
  try {
    const [t1, tn] = alternate(() => one.run(), () => many.run(), 4);
    const gf = (ms: number) => `${((2 * n ** 3) / ms / 1e6).toFixed(1)} GFLOP/s`;
    console.log(`sgemm ${n}³    1 thread ${gf(t1)}   ${many.pool.threads} threads ${gf(tn)}   ${(t1 / tn).toFixed(2)}×`);
  } finally {
    await one.close();
    await many.close();
  }
}
console.log(`load after: ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`);
