// Worker threads for the WebAssembly of a "wasm" bundle. Each kernel module
// (forward.js, step.js) with WebAssembly exports `WASM`: its module, its
// memory (shared where the host has SharedArrayBuffer) and the work of each
// ranged export: a product's multiply-adds (its range: column panels, or
// batches), an elementwise or row loop's in the same units (its range: the
// outermost loop's iterations). A pool of worker threads instantiates every
// module on its memory; each export worth splitting gets a function in
// `WASM.threads` that runs it over its range split across the threads, which
// the kernels call instead of the export. The split decides only which
// thread computes which columns, rows or elements, never how, so results are
// bit-identical for any thread count. Nothing here imports a Node module: the
// pool itself comes from the platform (runtime/threads.ts on Node).

/** A ranged export: its arguments (a product has none), then the range [from, to) of its outermost loop. */
export type PanelFn = (...args: number[]) => void;

/** What a kernel module with WebAssembly products exports as `WASM`. */
export interface WasmProducts {
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  /** Work of each ranged export, by name: a product's multiply-adds, a loop's in comparable units. */
  readonly work: Readonly<Record<string, number>>;
  /** Set here: the exports split across threads (the others run on the calling thread). */
  threads?: Readonly<Record<string, PanelFn>>;
  /** A module with elementwise loops: an f32 arena F of `floats` elements in its memory, which its loops then read and write in place (undefined where the memory cannot hold it). */
  readonly arena?: (floats: number) => Float32Array | undefined;
}

/** One module a pool's threads instantiate on a shared memory, and the exports its jobs may name. */
export interface PoolUnit {
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  readonly exports: readonly string[];
}

/** A pool of threads running parts of exports (runtime/threads.ts's ThreadPool on Node). */
export interface ProductPool {
  /** Threads taking part in a job, the calling one included. */
  readonly threads: number;
  /** How many parts a job of `work` multiply-adds is worth (1: it stays on the calling thread). */
  partsFor(work: number): number;
  /** Runs export `fn` (an index into the units' exports, in order) with `args` over [from, to) in `parts` contiguous parts (chunked by its `work`, when given). */
  run(fn: number, from: number, to: number, parts: number, args?: readonly number[], work?: number): void;
  close(): Promise<void>;
}

/** Starts a pool of `threads` threads over `units` (the platform's worker threads). */
export type PoolStarter = (units: readonly PoolUnit[], threads: number) => Promise<ProductPool>;

/** The `WASM` export of a kernel module, checked, or undefined when it has none (no products; a ts bundle). */
export function wasmProductsOf(mod: unknown, file: string): WasmProducts | undefined {
  const w = (mod as { WASM?: unknown }).WASM;
  if (w === undefined) return undefined;
  const x = w as Partial<WasmProducts>;
  const ok =
    typeof w === "object" && w !== null && x.module instanceof WebAssembly.Module && x.memory instanceof WebAssembly.Memory &&
    typeof x.work === "object" && x.work !== null && Object.values(x.work).every((v) => typeof v === "number") &&
    (x.arena === undefined || typeof x.arena === "function");
  if (!ok) throw new Error(`${file}: WASM must hold the products' module, memory and work; recompile the model with this version of gradc`);
  return w as WasmProducts;
}

/** Threads running a bundle's products; `close` hands them back (the products then run on the calling thread). */
export interface ProductThreads {
  readonly threads: number;
  close(): Promise<void>;
}

/** Whether a memory can be shared with worker threads. */
const isShared = (m: WebAssembly.Memory): boolean => typeof SharedArrayBuffer === "function" && m.buffer instanceof SharedArrayBuffer;

/**
 * Runs the products of `units` on `threads` threads (the calling one
 * included) from a pool that `start` makes. Undefined, and the products stay
 * on the calling thread, for one thread or where no memory is shared (a page
 * that is not cross-origin isolated). The kernel modules are the process's
 * (or page's): the threads serve every trainer of the bundle until `close`.
 */
export async function threadProducts(units: readonly WasmProducts[], threads: number, start: PoolStarter): Promise<ProductThreads | undefined> {
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`threads must be an integer >= 1 (got ${threads})`);
  const usable = units.filter((u) => isShared(u.memory) && Object.keys(u.work).length > 0);
  if (threads === 1 || !usable.length) return undefined;
  const pool = await start(usable.map((u) => ({ module: u.module, memory: u.memory, exports: Object.keys(u.work) })), threads);
  if (pool.threads === 1) {
    await pool.close();
    return undefined;
  }
  const mine: Readonly<Record<string, PanelFn>>[] = [];
  let base = 0;
  for (const u of usable) {
    const split: Record<string, PanelFn> = {};
    Object.entries(u.work).forEach(([name, work], i) => {
      const fn = base + i;
      const parts = pool.partsFor(work);
      // exports too small to pay for the barrier stay on the calling thread
      if (parts > 1) {
        // the arguments read one by one into one list per export (its arity is fixed): a rest parameter and its slice would allocate on every call of a step
        let args: number[] = [];
        split[name] = function (): void {
          const n = arguments.length;
          if (args.length !== n - 2) args = new Array<number>(n - 2).fill(0);
          for (let i = 0; i < n - 2; i++) args[i] = arguments[i] as number;
          pool.run(fn, arguments[n - 2] as number, arguments[n - 1] as number, parts, args, work);
        };
      }
    });
    base += Object.keys(u.work).length;
    u.threads = split;
    mine.push(split);
  }
  return {
    threads: pool.threads,
    close: async () => {
      // a later load of the same bundle may have set its own threads: leave those
      usable.forEach((u, i) => {
        if (u.threads === mine[i]) delete u.threads;
      });
      await pool.close();
    },
  };
}
