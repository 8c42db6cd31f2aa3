// The protocol of a thread pool over shared WebAssembly memories, the same on
// Node's worker_threads (runtime/threads.ts) and a page's Web Workers
// (runtime/browser/threads.ts). Every thread instantiates the same modules on
// the same memories; a job — one exported function and a range [from, to) of
// its loop — is split into contiguous parts, part k for thread k, the calling
// thread taking part 0. The split only decides who computes which part, never
// how a value is computed, so results do not depend on the thread count.
// Threads meet at a spin-then-wait barrier (an Atomics.wait wake-up alone
// costs ~70 µs, so each side spins a little on the shared words first; a
// page's main thread may not wait at all and only spins). Each part is
// claimed before it runs, and the calling thread takes, after its own, any
// part whose worker has not started it: on a machine busier than its cores, a
// descheduled worker delays a job no more than running it on one thread would.
// Nothing here imports a Node module.
import type { PanelFn, PoolUnit } from "./wasmThreads.js";

/** Where each control word lives in the pool's Int32Array. */
export const WORDS = {
  /** Bumped once per job; workers wait on it. */
  gen: 0,
  /** Parts of the current job not yet done; the caller waits on it. */
  pending: 1,
  fn: 2,
  from: 3,
  to: 4,
  /** Threads taking part in this job. */
  parts: 5,
  stop: 6,
  /** 1 + the part that threw on a worker, 0 if none. */
  failed: 7,
  /** Then one word per thread: the last job whose part k was claimed (by worker k or the caller). */
  claims: 8,
} as const;
export type Words = typeof WORDS;

/** Bytes of the control buffer of a pool of `threads`. */
export const controlBytes = (threads: number): number => 4 * (WORDS.claims + threads);

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

/** What a worker receives: the units to instantiate, the control words and its index. */
export interface WorkerStart {
  readonly units: readonly PoolUnit[];
  readonly control: SharedArrayBuffer;
  readonly index: number;
  readonly spin: number;
  readonly words: Words;
}

/** The exports of `units` in job order, each instantiated on its memory, with their names. */
export function instantiateUnits(units: readonly PoolUnit[]): { table: PanelFn[]; names: string[] } {
  const table: PanelFn[] = [];
  const names: string[] = [];
  for (const u of units) {
    if (!(typeof SharedArrayBuffer === "function" && u.memory.buffer instanceof SharedArrayBuffer)) {
      throw new Error("thread pool: the memory must be a shared WebAssembly.Memory ({ shared: true, maximum })");
    }
    const instance = new WebAssembly.Instance(u.module, { env: { memory: u.memory } });
    for (const n of u.exports) {
      const f = instance.exports[n];
      if (typeof f !== "function") throw new Error(`thread pool: the module exports no function "${n}"`);
      table.push(f as PanelFn);
      names.push(n);
    }
  }
  return { table, names };
}

/**
 * A worker's loop: waits for each job, claims its own part unless the caller
 * took it, runs it, and counts it done; returns when the pool stops. It has
 * no free variables (Node runs its source text in a worker), and no inner
 * functions.
 */
export function serveJobs(ctl: Int32Array, table: readonly PanelFn[], index: number, spin: number, w: Words): void {
  let seen = Atomics.load(ctl, w.gen);
  for (;;) {
    for (let i = 0; i < spin && Atomics.load(ctl, w.gen) === seen; i++);
    while (Atomics.load(ctl, w.gen) === seen) Atomics.wait(ctl, w.gen, seen);
    seen = Atomics.load(ctl, w.gen);
    if (Atomics.load(ctl, w.stop)) return;
    // the job's words hold still while this part is unclaimed: the caller cannot finish the job without it
    const claimed = Atomics.load(ctl, w.claims + index);
    if (claimed >= seen || Atomics.compareExchange(ctl, w.claims + index, claimed, seen) !== claimed) continue;
    const parts = ctl[w.parts]!;
    const from = ctl[w.from]!;
    const n = ctl[w.to]! - from;
    // this worker's part of partition(from, to, parts)
    const a = from + Math.floor((n * index) / parts);
    const b = from + Math.floor((n * (index + 1)) / parts);
    try {
      if (b > a) table[ctl[w.fn]!]!(a, b);
    } catch {
      Atomics.compareExchange(ctl, w.failed, 0, index + 1);
    }
    if (Atomics.sub(ctl, w.pending, 1) === 1) Atomics.notify(ctl, w.pending);
  }
}

/** The calling thread's side of a pool: posts jobs, runs its parts (and any unstarted ones), waits for the rest. */
export class JobRunner {
  private readonly ctl: Int32Array;
  /** Jobs split across more than one thread so far. */
  jobs = 0;
  private stopped = false;

  constructor(
    control: SharedArrayBuffer,
    private readonly table: readonly PanelFn[],
    private readonly names: readonly string[],
    /** Threads taking part in a job, the calling one included. */
    readonly threads: number,
    private readonly spin: number,
    /** Whether this thread may sleep in Atomics.wait (not a page's main thread). */
    private readonly canWait: boolean,
  ) {
    this.ctl = new Int32Array(control);
  }

  /** How many parts a job of `work` multiply-adds is worth: one per MIN_PARALLEL_WORK, at most one per thread. */
  partsFor(work: number): number {
    return Math.max(1, Math.min(this.threads, Math.floor(work / MIN_PARALLEL_WORK)));
  }

  /**
   * Runs export `fn` (an index into the units' exports) over [from, to),
   * split into one contiguous part per thread; returns when every part is
   * done. With `parts` = 1 (or a range shorter than the thread count) it runs
   * on the calling thread alone: kernels too small to pay for a barrier stay there.
   */
  run(fn: number, from: number, to: number, parts = this.threads): void {
    if (this.stopped) throw new Error("thread pool: run after close()");
    const f = this.table[fn];
    if (!f) throw new Error(`thread pool: no export at index ${fn} (there are ${this.table.length})`);
    const p = Math.max(1, Math.min(parts, this.threads, to - from));
    if (p === 1) {
      if (to > from) f(from, to);
      return;
    }
    const c = this.ctl;
    const w = WORDS;
    const gen = c[w.gen]! + 1;
    c[w.fn] = fn;
    c[w.from] = from;
    c[w.to] = to;
    c[w.parts] = p;
    c[w.failed] = 0;
    // workers past the parts have none in this job
    for (let k = p; k < this.threads; k++) c[w.claims + k] = gen;
    this.jobs++;
    Atomics.store(c, w.pending, p - 1);
    Atomics.store(c, w.gen, gen);
    Atomics.notify(c, w.gen);
    let error: unknown;
    let failedPart = 0;
    const n = to - from;
    for (let k = 0; k < p; k++) {
      // part 0 is this thread's; a later part only while no worker has started it
      if (k > 0) {
        const claimed = Atomics.load(c, w.claims + k);
        if (claimed >= gen || Atomics.compareExchange(c, w.claims + k, claimed, gen) !== claimed) continue;
      }
      const a = from + Math.floor((n * k) / p);
      const b = from + Math.floor((n * (k + 1)) / p);
      try {
        if (b > a) f(a, b);
      } catch (e) {
        if (error === undefined) [error, failedPart] = [e, k];
      }
      if (k > 0) Atomics.sub(c, w.pending, 1);
    }
    // the workers finish their parts even when one here threw, so the next job starts clean
    if (this.canWait) {
      for (let i = 0; i < this.spin && Atomics.load(c, w.pending) !== 0; i++);
      for (let left = Atomics.load(c, w.pending); left !== 0; left = Atomics.load(c, w.pending)) Atomics.wait(c, w.pending, left);
    } else {
      while (Atomics.load(c, w.pending) !== 0);
    }
    if (error !== undefined) {
      throw new Error(`thread pool: "${this.names[fn]}" trapped on part ${failedPart} of [${from}, ${to}) (${error instanceof Error ? error.message : String(error)})`);
    }
    const failed = Atomics.load(c, w.failed);
    if (failed) throw new Error(`thread pool: "${this.names[fn]}" trapped on part ${failed - 1} of [${from}, ${to})`);
  }

  /** Stops the workers' loops; the runner cannot run after this. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    Atomics.store(this.ctl, WORDS.stop, 1);
    Atomics.add(this.ctl, WORDS.gen, 1);
    Atomics.notify(this.ctl, WORDS.gen);
  }
}
