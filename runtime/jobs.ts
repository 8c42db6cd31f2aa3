// The protocol of a thread pool over shared WebAssembly memories, the same on
// Node's worker_threads (runtime/threads.ts) and a page's Web Workers
// (runtime/browser/threads.ts). Every thread instantiates the same modules on
// the same memories; a job — one exported function, its arguments and a range
// [from, to) of its loop, passed last — is cut into contiguous chunks (a few
// per thread), which the calling thread and the workers claim one at a time
// from a shared counter until none is left. The cut only decides who computes
// which chunk, never how a value is computed, so results do not depend on the
// thread count. Threads meet at a spin-then-wait barrier (an Atomics.wait
// wake-up alone costs ~70 µs, so each side spins a little on the shared words
// first; a page's main thread may not wait at all and only spins). Claiming
// chunks balances the threads: on a machine busier than its cores, the calling
// thread takes every chunk a descheduled worker has not claimed, and waits
// only for the one it is running.
// Nothing here imports a Node module.
import type { PanelFn, PoolUnit } from "./wasmThreads.js";

/** Where each control word lives in the pool's Int32Array. */
export const WORDS = {
  /** Bumped once per job; workers wait on it. */
  gen: 0,
  /** Chunks of the current job not yet done; the caller waits on it. */
  pending: 1,
  fn: 2,
  from: 3,
  to: 4,
  /** Chunks of this job. */
  chunks: 5,
  stop: 6,
  /** 1 + the chunk that threw on a worker, 0 if none. */
  failed: 7,
  /** Arguments of the job's function before its range (in the f64 words before these, ARGS_BYTES). */
  args: 8,
  /** The next chunk to claim, tagged with its job: (gen & TAG_MASK) << CHUNK_BITS | chunk. */
  next: 9,
} as const;
export type Words = typeof WORDS;

/** Arguments a job's function may take before its range. */
export const MAX_ARGS = 32;

/** The control buffer starts with the jobs' arguments (MAX_ARGS f64 words); the Int32 words follow. */
export const ARGS_BYTES = 8 * MAX_ARGS;

const NO_ARGS: readonly number[] = [];

/** Bits of the claim word that count chunks (a job has fewer than 2^CHUNK_BITS); the rest tag the job. */
export const CHUNK_BITS = 12;
const TAG_MASK = (1 << (31 - CHUNK_BITS)) - 1;

/** Chunks a job is cut into per thread worth running it, at least (ThreadPool's default). */
export const CHUNKS_PER_THREAD = 4;

/**
 * Work (multiply-adds) of a chunk, at most, where the range allows: a big
 * product (an MLP's 784×256 layer, ~1.3 ms on one thread) cut into only 4
 * chunks a thread leaves the thread that ends first waiting for most of a
 * chunk; cut at this size (~50 µs here) the wait is a fraction of that, while a
 * claim costs well under a microsecond.
 */
export const CHUNK_WORK = 2 ** 20;

/** Bytes of the control buffer of a pool (of any number of threads). */
export const controlBytes = (): number => ARGS_BYTES + 4 * (WORDS.next + 1);

/** The control buffer's Int32 words and its arguments, as every thread views them. */
export const controlViews = (control: SharedArrayBuffer): { ctl: Int32Array; args: Float64Array } => ({
  ctl: new Int32Array(control, ARGS_BYTES),
  args: new Float64Array(control, 0, MAX_ARGS),
});

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
 * Claims and runs chunks of the current job (tagged `tag`) until none is
 * left, counting each one done; returns the first chunk that threw here, or
 * -1 (its error pushed on `errors`, and the job's `failed` word set before
 * the chunk counts as done).
 * Shared by workers and the calling thread; it has no free variables (Node
 * runs its source text in a worker), and no inner functions.
 */
export function runChunks(ctl: Int32Array, args: Float64Array, table: readonly PanelFn[], tag: number, call: number[], w: Words, bits: number, errors: unknown[]): number {
  let failed = -1;
  for (;;) {
    const v = Atomics.load(ctl, w.next);
    // another job's claims (this one is done), or no chunk left
    if (v >>> bits !== tag || (v & ((1 << bits) - 1)) >= ctl[w.chunks]!) return failed;
    if (Atomics.compareExchange(ctl, w.next, v, v + 1) !== v) continue;
    // the job's words hold still while a claimed chunk is not done: the caller cannot finish the job without it
    const chunk = v & ((1 << bits) - 1);
    const chunks = ctl[w.chunks]!;
    const from = ctl[w.from]!;
    const n = ctl[w.to]! - from;
    const a = from + Math.floor((n * chunk) / chunks);
    const b = from + Math.floor((n * (chunk + 1)) / chunks);
    try {
      const f = table[ctl[w.fn]!]!;
      const x = args;
      // the job's arguments, then this chunk's range: passed one by one up to the arities kernels have (a spread
      // call allocates its argument list on every chunk of every job of a step), spread beyond them
      if (b > a) {
        switch (ctl[w.args]!) {
          case 0: f(a, b); break;
          case 1: f(x[0]!, a, b); break;
          case 2: f(x[0]!, x[1]!, a, b); break;
          case 3: f(x[0]!, x[1]!, x[2]!, a, b); break;
          case 4: f(x[0]!, x[1]!, x[2]!, x[3]!, a, b); break;
          case 5: f(x[0]!, x[1]!, x[2]!, x[3]!, x[4]!, a, b); break;
          case 6: f(x[0]!, x[1]!, x[2]!, x[3]!, x[4]!, x[5]!, a, b); break;
          case 7: f(x[0]!, x[1]!, x[2]!, x[3]!, x[4]!, x[5]!, x[6]!, a, b); break;
          case 8: f(x[0]!, x[1]!, x[2]!, x[3]!, x[4]!, x[5]!, x[6]!, x[7]!, a, b); break;
          default: {
            call.length = 0;
            for (let i = 0; i < ctl[w.args]!; i++) call.push(x[i]!);
            call.push(a, b);
            f(...call);
          }
        }
      }
    } catch (e) {
      Atomics.compareExchange(ctl, w.failed, 0, chunk + 1);
      if (failed < 0) {
        failed = chunk;
        errors.push(e);
      }
    }
    if (Atomics.sub(ctl, w.pending, 1) === 1) Atomics.notify(ctl, w.pending);
  }
}

/**
 * A worker's loop: waits for each job, runs chunks of it (`claim`, which is
 * runChunks) while any is left; returns when the pool stops. It has no free
 * variables and no inner functions.
 */
export function serveJobs(
  ctl: Int32Array,
  args: Float64Array,
  table: readonly PanelFn[],
  spin: number,
  w: Words,
  bits: number,
  claim: (ctl: Int32Array, args: Float64Array, table: readonly PanelFn[], tag: number, call: number[], w: Words, bits: number, errors: unknown[]) => number,
): void {
  const call: number[] = [];
  const errors: unknown[] = [];
  const mask = (1 << (31 - bits)) - 1;
  let seen = Atomics.load(ctl, w.gen);
  for (;;) {
    for (let i = 0; i < spin && Atomics.load(ctl, w.gen) === seen; i++);
    while (Atomics.load(ctl, w.gen) === seen) Atomics.wait(ctl, w.gen, seen);
    seen = Atomics.load(ctl, w.gen);
    if (Atomics.load(ctl, w.stop)) return;
    claim(ctl, args, table, seen & mask, call, w, bits, errors);
    errors.length = 0;
  }
}

/** The calling thread's side of a pool: posts jobs, claims chunks of them beside the workers, waits for the rest. */
export class JobRunner {
  private readonly ctl: Int32Array;
  private readonly args: Float64Array;
  private readonly call: number[] = [];
  /** What a chunk on this thread threw, per job (kept: a job allocates nothing). */
  private readonly errors: unknown[] = [];
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
    /** Work below which a job stays on the calling thread (see partsFor). */
    private readonly minWork = MIN_PARALLEL_WORK,
    /** Chunks a job is cut into per part, at least. */
    private readonly chunksPerPart = CHUNKS_PER_THREAD,
    /** Work of a chunk, at most, where the job's range has iterations enough (see CHUNK_WORK). */
    private readonly chunkWork = CHUNK_WORK,
  ) {
    ({ ctl: this.ctl, args: this.args } = controlViews(control));
  }

  /** How many parts a job of `work` multiply-adds is worth: one per MIN_PARALLEL_WORK (or the pool's minimum), at most one per thread. */
  partsFor(work: number): number {
    return Math.max(1, Math.min(this.threads, Math.floor(work / this.minWork)));
  }

  /**
   * Runs export `fn` (an index into the units' exports) with `args` (at most
   * MAX_ARGS) over [from, to), cut into `parts` × the pool's chunks per part,
   * or more where the job's `work` makes chunks bigger than the pool's chunk
   * work (at most one per iteration), which every thread claims one at a time;
   * returns when every chunk is done. With `parts` = 1 (or a range of one
   * iteration) it runs on the calling thread alone: kernels too small to pay
   * for a barrier stay there.
   */
  run(fn: number, from: number, to: number, parts = this.threads, args: readonly number[] = NO_ARGS, work = 0): void {
    if (this.stopped) throw new Error("thread pool: run after close()");
    const f = this.table[fn];
    if (!f) throw new Error(`thread pool: no export at index ${fn} (there are ${this.table.length})`);
    if (args.length > MAX_ARGS) throw new Error(`thread pool: "${this.names[fn]}" takes ${args.length} arguments before its range; a job takes at most ${MAX_ARGS}`);
    const p = Math.max(1, Math.min(parts, this.threads, to - from));
    if (p === 1) {
      if (to > from) f(...args, from, to);
      return;
    }
    const c = this.ctl;
    const w = WORDS;
    const gen = (c[w.gen]! + 1) & TAG_MASK;
    // First the claim word: tagged with the new job and past any chunk. A worker still in the last job's
    // runChunks may have loaded the old claim word and be about to compare it with the chunk count; once the
    // claim word has changed, its compare-exchange fails and it leaves, so it never claims a chunk of the
    // old job against the new job's words (which would run a mixed job and leave `pending` one short).
    Atomics.store(c, w.next, (gen << CHUNK_BITS) | ((1 << CHUNK_BITS) - 1));
    c[w.fn] = fn;
    c[w.from] = from;
    c[w.to] = to;
    c[w.chunks] = Math.min(to - from, Math.max(p * this.chunksPerPart, Math.ceil(work / this.chunkWork)), (1 << CHUNK_BITS) - 1);
    c[w.failed] = 0;
    c[w.args] = args.length;
    for (let i = 0; i < args.length; i++) this.args[i] = args[i]!;
    this.jobs++;
    Atomics.store(c, w.pending, c[w.chunks]!);
    Atomics.store(c, w.next, gen << CHUNK_BITS);
    Atomics.store(c, w.gen, gen);
    Atomics.notify(c, w.gen);
    const errors = this.errors;
    errors.length = 0;
    const mine = runChunks(c, this.args, this.table, gen, this.call, w, CHUNK_BITS, errors);
    // the workers finish the chunks they claimed even when one here threw, so the next job starts clean
    if (this.canWait) {
      for (let i = 0; i < this.spin && Atomics.load(c, w.pending) !== 0; i++);
      for (let left = Atomics.load(c, w.pending); left !== 0; left = Atomics.load(c, w.pending)) Atomics.wait(c, w.pending, left);
    } else {
      while (Atomics.load(c, w.pending) !== 0);
    }
    if (mine >= 0) {
      const e = errors[0];
      throw new Error(`thread pool: "${this.names[fn]}" trapped on part ${mine} of [${from}, ${to}) (${e instanceof Error ? e.message : String(e)})`);
    }
    const failed = Atomics.load(c, w.failed);
    if (failed) throw new Error(`thread pool: "${this.names[fn]}" trapped on part ${failed - 1} of [${from}, ${to})`);
  }

  /** Stops the workers' loops; the runner cannot run after this. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    Atomics.store(this.ctl, WORDS.stop, 1);
    Atomics.store(this.ctl, WORDS.gen, (this.ctl[WORDS.gen]! + 1) & TAG_MASK);
    Atomics.notify(this.ctl, WORDS.gen);
  }
}
