// Node's thread pool over shared WebAssembly memories: worker_threads that
// run runtime/jobs.ts's protocol (the split, the spin-then-wait barrier, parts
// claimed before they run) beside the calling thread.
import os from "node:os";
import { Worker } from "node:worker_threads";
import type { PoolUnit, ProductPool } from "./wasmThreads.js";
import { ARGS_BYTES, CHUNKS_PER_THREAD, CHUNK_WORK, CHUNK_BITS, JobRunner, MAX_ARGS, MIN_PARALLEL_WORK, WORDS, controlBytes, instantiateUnits, runChunks, serveJobs } from "./jobs.js";
import type { WorkerStart } from "./jobs.js";

export { MIN_PARALLEL_WORK, partition } from "./jobs.js";

/**
 * What a pool runs: modules, each with its shared memory (`shared: true`,
 * imported as `env.memory`) and the exported functions
 * `(...args, from, to) => void` that jobs run (their arguments, then the
 * range), by index: the first unit's exports, then the next one's.
 */
export interface ThreadPoolOptions {
  readonly units: readonly PoolUnit[];
  /** Threads wanted, the calling one included; never more than `os.availableParallelism()`. Default: that many. */
  readonly threads?: number;
  /** Spins on the shared counters before a thread sleeps in Atomics.wait (default 20,000: tens of µs). */
  readonly spin?: number;
  /** Work (multiply-adds) per part below which a job is not split (default MIN_PARALLEL_WORK; 1 splits every job, as tests do). */
  readonly minWork?: number;
  /** Chunks a job is cut into per thread worth running it, claimed one at a time, at least (default CHUNKS_PER_THREAD). */
  readonly chunks?: number;
  /** Work of a chunk, at most, where a job's range allows (default CHUNK_WORK). */
  readonly chunkWork?: number;
}

// The worker: plain JavaScript (jobs.ts's loop by its source text), so it runs the same under tsx and from an emitted bundle.
const WORKER = `
const { parentPort, workerData } = require("node:worker_threads");
const { units, control, spin, words } = workerData;
const table = units.flatMap(({ module, memory, exports: names }) => {
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  return names.map((n) => instance.exports[n]);
});
parentPort.postMessage("ready");
(${serveJobs.toString()})(new Int32Array(control, ${ARGS_BYTES}), new Float64Array(control, 0, ${MAX_ARGS}), table, spin, words, ${CHUNK_BITS}, ${runChunks.toString()});
`;

/** Worker threads running parts of jobs beside the calling thread (see runtime/jobs.ts). */
export class ThreadPool implements ProductPool {
  private closed = false;

  private constructor(
    private readonly workers: readonly Worker[],
    private readonly runner: JobRunner,
  ) {}

  /** Starts `threads - 1` workers and resolves once each has instantiated the modules. */
  static async create(options: ThreadPoolOptions): Promise<ThreadPool> {
    const cores = os.availableParallelism();
    const wanted = options.threads ?? cores;
    if (!Number.isInteger(wanted) || wanted < 1) throw new Error(`thread pool: threads must be an integer >= 1, got ${wanted}`);
    const { table, names } = instantiateUnits(options.units);
    const threads = Math.min(wanted, cores);
    const spin = options.spin ?? 20_000;
    const minWork = options.minWork ?? MIN_PARALLEL_WORK;
    if (!(minWork > 0)) throw new Error(`thread pool: minWork must be positive, got ${minWork}`);
    const chunks = options.chunks ?? CHUNKS_PER_THREAD;
    if (!(Number.isInteger(chunks) && chunks >= 1)) throw new Error(`thread pool: chunks must be an integer >= 1, got ${chunks}`);
    const chunkWork = options.chunkWork ?? CHUNK_WORK;
    if (!(chunkWork > 0)) throw new Error(`thread pool: chunkWork must be positive, got ${chunkWork}`);
    const control = new SharedArrayBuffer(controlBytes());
    const workers: Worker[] = [];
    const ready: Promise<void>[] = [];
    for (let index = 1; index < threads; index++) {
      const workerData: WorkerStart = { units: options.units.map((u) => ({ module: u.module, memory: u.memory, exports: u.exports })), control, index, spin, words: WORDS };
      const w = new Worker(WORKER, { eval: true, workerData });
      ready.push(
        new Promise<void>((resolve, reject) => {
          w.once("message", () => resolve());
          w.once("error", (e) => reject(new Error(`thread pool: worker ${index} failed to start: ${e.message}`)));
        }),
      );
      workers.push(w);
    }
    try {
      await Promise.all(ready);
    } catch (e) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw e;
    }
    // idle workers never keep the process alive
    for (const w of workers) w.unref();
    return new ThreadPool(workers, new JobRunner(control, table, names, threads, spin, true, minWork, chunks, chunkWork));
  }

  /** Threads taking part in a job, the calling one included. */
  get threads(): number {
    return this.runner.threads;
  }

  /** Jobs split across more than one thread so far. */
  get jobs(): number {
    return this.runner.jobs;
  }

  /** How many parts a job of `work` multiply-adds is worth: one per MIN_PARALLEL_WORK, at most one per thread. */
  partsFor(work: number): number {
    return this.runner.partsFor(work);
  }

  /** Runs export `fn` with `args` over [from, to) in `parts` (default: one per thread), chunked by its `work`; see JobRunner.run. */
  run(fn: number, from: number, to: number, parts = this.threads, args?: readonly number[], work?: number): void {
    this.runner.run(fn, from, to, parts, args, work);
  }

  /** Stops and terminates the workers; the pool cannot run after this. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.runner.stop();
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
