// A page's thread pool over the kernels' shared WebAssembly memories: module
// Web Workers (runtime/browser/poolWorker.ts) running runtime/jobs.ts's
// protocol beside the page's main thread, which may not sleep in
// Atomics.wait and spins instead while the workers finish. Shared memory
// needs a cross-origin-isolated page (`gradc serve` sends COOP/COEP).
import { JobRunner, WORDS, controlBytes, instantiateUnits } from "../jobs.js";
import type { WorkerStart } from "../jobs.js";
import type { PoolStarter, ProductPool } from "../wasmThreads.js";

/** Threads a page trains on by default, the main one included (never more than the browser reports cores). */
export const PAGE_THREADS = 2;

/** Starts `threads - 1` Web Workers over `units` and resolves once each has instantiated them. */
export const webPool: PoolStarter = async (units, wanted): Promise<ProductPool> => {
  const threads = Math.max(1, Math.min(wanted, navigator.hardwareConcurrency || 1));
  const { table, names } = instantiateUnits(units);
  const spin = 20_000;
  const control = new SharedArrayBuffer(controlBytes());
  const workers: Worker[] = [];
  const ready: Promise<void>[] = [];
  for (let index = 1; index < threads; index++) {
    const w = new Worker(new URL("./poolWorker.js", import.meta.url), { type: "module", name: `gradc pool ${index}` });
    workers.push(w);
    ready.push(
      new Promise<void>((resolve, reject) => {
        w.onmessage = (e: MessageEvent<unknown>) => {
          const error = (e.data as { error?: string } | null)?.error;
          if (error === undefined) resolve();
          else reject(new Error(`thread pool: worker ${index} failed to start: ${error}`));
        };
        w.onerror = (e) => reject(new Error(`thread pool: worker ${index} failed to start: ${e.message}`));
      }),
    );
    const start: WorkerStart = { units: units.map((u) => ({ module: u.module, memory: u.memory, exports: u.exports })), control, index, spin, words: WORDS };
    w.postMessage(start);
  }
  try {
    await Promise.all(ready);
  } catch (e) {
    for (const w of workers) w.terminate();
    throw e;
  }
  const runner = new JobRunner(control, table, names, threads, spin, false);
  return {
    threads,
    partsFor: (work) => runner.partsFor(work),
    run: (fn, from, to, parts, args, work) => runner.run(fn, from, to, parts, args, work),
    close: async () => {
      runner.stop();
      for (const w of workers) w.terminate();
    },
  };
};
