// A pool of worker threads over shared WebAssembly memories: every thread
// instantiates the same modules on the same memories, and a job — one exported
// function and a range [from, to) of its loop — is split into contiguous
// parts, one per thread, the calling thread taking the first. The split only
// decides who computes which part, never how a value is computed, so results
// do not depend on the thread count. Threads meet at a spin-then-wait
// barrier: an Atomics.wait wake-up alone costs ~70 µs, so each side spins a
// little on the shared counters before it sleeps. Each part is claimed before
// it runs, and the calling thread takes, after its own, any part whose worker
// has not started it: on a machine busier than its cores, a descheduled
// worker delays a job no more than running it on one thread would.
import os from "node:os";
import { Worker } from "node:worker_threads";
import type { PoolUnit, ProductPool } from "./wasmThreads.js";

/**
 * What a pool runs: modules, each with its shared memory (`shared: true`,
 * imported as `env.memory`) and the exported functions
 * `(from: number, to: number) => void` that jobs run, by index: the first
 * unit's exports, then the next one's.
 */
export interface ThreadPoolOptions {
  readonly units: readonly PoolUnit[];
  /** Threads wanted, the calling one included; never more than `os.availableParallelism()`. Default: that many. */
  readonly threads?: number;
  /** Spins on the shared counters before a thread sleeps in Atomics.wait (default 20,000: tens of µs). */
  readonly spin?: number;
}

// control words (Int32Array over a SharedArrayBuffer)
const GEN = 0; // bumped once per job; workers wait on it
const PENDING = 1; // parts of the current job not yet done; the caller waits on it
const FN = 2;
const FROM = 3;
const TO = 4;
const PARTS = 5; // threads taking part in this job
const STOP = 6;
const FAILED = 7; // 1 + the part that threw on a worker, 0 if none
const CLAIMS = 8; // then one word per thread: the last job whose part k was claimed (by worker k or the caller)

/**
 * Multiply-adds (or comparable units of work) below which a job stays on the
 * calling thread: with spin-then-wait, two threads pay off from about a 64³
 * matmul on this kind of machine (shared/PERFORMANCE.md); a plain Atomics.wait
 * wake-up (~70 µs) would need kernels well over 100 µs.
 */
export const MIN_PARALLEL_WORK = 64 ** 3;

/** The parts [from, to) of `parts` contiguous pieces of a range, as every thread computes them. */
export function partition(from: number, to: number, parts: number): [number, number][] {
  const n = to - from;
  return Array.from({ length: parts }, (_, k) => [from + Math.floor((n * k) / parts), from + Math.floor((n * (k + 1)) / parts)]);
}

// The worker: plain JavaScript, so it runs the same under tsx and from an emitted bundle.
const WORKER = `
const { parentPort, workerData } = require("node:worker_threads");
const { units, control, index, spin } = workerData;
const ctl = new Int32Array(control);
const table = units.flatMap(({ module, memory, exports: names }) => {
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  return names.map((n) => instance.exports[n]);
});
parentPort.postMessage("ready");
let seen = 0; // the generation when the pool was made
for (;;) {
  for (let i = 0; i < spin && Atomics.load(ctl, ${GEN}) === seen; i++);
  while (Atomics.load(ctl, ${GEN}) === seen) Atomics.wait(ctl, ${GEN}, seen);
  seen = Atomics.load(ctl, ${GEN});
  if (Atomics.load(ctl, ${STOP})) break;
  // claim this worker's part of job 'seen' unless the caller took it (or it has none): the job's words hold still while it is unclaimed
  const claimed = Atomics.load(ctl, ${CLAIMS} + index);
  if (claimed >= seen || Atomics.compareExchange(ctl, ${CLAIMS} + index, claimed, seen) !== claimed) continue;
  const parts = ctl[${PARTS}];
  const from = ctl[${FROM}], n = ctl[${TO}] - from;
  // this worker's part of partition(from, to, parts)
  const a = from + Math.floor((n * index) / parts), b = from + Math.floor((n * (index + 1)) / parts);
  try {
    if (b > a) table[ctl[${FN}]](a, b);
  } catch {
    Atomics.compareExchange(ctl, ${FAILED}, 0, index + 1);
  }
  if (Atomics.sub(ctl, ${PENDING}, 1) === 1) Atomics.notify(ctl, ${PENDING});
}
`;

/** Worker threads running parts of jobs beside the calling thread (see the file header). */
export class ThreadPool implements ProductPool {
  private readonly ctl: Int32Array;
  private closed = false;
  /** Jobs split across more than one thread so far. */
  jobs = 0;

  private constructor(
    private readonly workers: readonly Worker[],
    control: SharedArrayBuffer,
    private readonly table: readonly ((from: number, to: number) => void)[],
    private readonly names: readonly string[],
    private readonly spin: number,
  ) {
    this.ctl = new Int32Array(control);
  }

  /** Starts `threads - 1` workers and resolves once each has instantiated the modules. */
  static async create(options: ThreadPoolOptions): Promise<ThreadPool> {
    const cores = os.availableParallelism();
    const wanted = options.threads ?? cores;
    if (!Number.isInteger(wanted) || wanted < 1) throw new Error(`thread pool: threads must be an integer >= 1, got ${wanted}`);
    const table: ((from: number, to: number) => void)[] = [];
    const names: string[] = [];
    for (const u of options.units) {
      if (!(u.memory.buffer instanceof SharedArrayBuffer)) {
        throw new Error("thread pool: the memory must be a shared WebAssembly.Memory ({ shared: true, maximum })");
      }
      const instance = new WebAssembly.Instance(u.module, { env: { memory: u.memory } });
      for (const n of u.exports) {
        const f = instance.exports[n];
        if (typeof f !== "function") throw new Error(`thread pool: the module exports no function "${n}"`);
        table.push(f as (from: number, to: number) => void);
        names.push(n);
      }
    }
    const threads = Math.min(wanted, cores);
    const spin = options.spin ?? 20_000;
    const control = new SharedArrayBuffer(4 * (CLAIMS + threads));
    const workers: Worker[] = [];
    const ready: Promise<void>[] = [];
    for (let index = 1; index < threads; index++) {
      const w = new Worker(WORKER, {
        eval: true,
        workerData: { units: options.units.map((u) => ({ module: u.module, memory: u.memory, exports: u.exports })), control, index, spin },
      });
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
    return new ThreadPool(workers, control, table, names, spin);
  }

  /** Threads taking part in a job, the calling one included. */
  get threads(): number {
    return this.workers.length + 1;
  }

  /** How many parts a job of `work` multiply-adds is worth: one per MIN_PARALLEL_WORK, at most one per thread. */
  partsFor(work: number): number {
    return Math.max(1, Math.min(this.threads, Math.floor(work / MIN_PARALLEL_WORK)));
  }

  /**
   * Runs export `fn` (an index into `exports`) over [from, to), split into
   * one contiguous part per thread; returns when every part is done. With
   * `parts` = 1 (or a range shorter than the thread count) it runs on the
   * calling thread alone: kernels too small to pay for a barrier stay there.
   */
  run(fn: number, from: number, to: number, parts = this.threads): void {
    if (this.closed) throw new Error("thread pool: run after close()");
    const f = this.table[fn];
    if (!f) throw new Error(`thread pool: no export at index ${fn} (there are ${this.table.length})`);
    const p = Math.max(1, Math.min(parts, this.threads, to - from));
    if (p === 1) {
      if (to > from) f(from, to);
      return;
    }
    const c = this.ctl;
    const gen = c[GEN]! + 1;
    c[FN] = fn;
    c[FROM] = from;
    c[TO] = to;
    c[PARTS] = p;
    c[FAILED] = 0;
    // workers past the parts have none in this job
    for (let k = p; k < this.threads; k++) c[CLAIMS + k] = gen;
    this.jobs++;
    Atomics.store(c, PENDING, p - 1);
    Atomics.store(c, GEN, gen);
    Atomics.notify(c, GEN);
    let error: unknown;
    let failedPart = 0;
    const n = to - from;
    const part = (k: number): void => {
      const a = from + Math.floor((n * k) / p);
      const b = from + Math.floor((n * (k + 1)) / p);
      try {
        if (b > a) f(a, b);
      } catch (e) {
        if (error === undefined) [error, failedPart] = [e, k];
      }
    };
    part(0);
    // a part whose worker has not started it yet (descheduled on a busy machine) is taken here: who computes a part never changes its values
    for (let k = p - 1; k >= 1; k--) {
      const claimed = Atomics.load(c, CLAIMS + k);
      if (claimed < gen && Atomics.compareExchange(c, CLAIMS + k, claimed, gen) === claimed) {
        part(k);
        Atomics.sub(c, PENDING, 1);
      }
    }
    // the workers finish their parts even when one here threw, so the next job starts clean
    for (let i = 0; i < this.spin && Atomics.load(c, PENDING) !== 0; i++);
    for (let left = Atomics.load(c, PENDING); left !== 0; left = Atomics.load(c, PENDING)) Atomics.wait(c, PENDING, left);
    if (error !== undefined) {
      throw new Error(`thread pool: "${this.names[fn]}" trapped on part ${failedPart} of [${from}, ${to}) (${error instanceof Error ? error.message : String(error)})`);
    }
    const failed = Atomics.load(c, FAILED);
    if (failed) throw new Error(`thread pool: "${this.names[fn]}" trapped on part ${failed - 1} of [${from}, ${to})`);
  }

  /** Stops and terminates the workers; the pool cannot run after this. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.ctl, STOP, 1);
    Atomics.add(this.ctl, GEN, 1);
    Atomics.notify(this.ctl, GEN);
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
