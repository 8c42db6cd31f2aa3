// C = A·B (f32, m×k by k×n) with gradc's WebAssembly SIMD product over one
// shared memory, split by column panels across a thread pool: the sgemm row
// of the peers' benchmark, and what the thread tests run at 1, 2 and 4 threads.
import { TILE_COLS, TILE_ROWS, encodeModule, pagesFor } from "../compiler/backends/wasm/wasm.js";
import { productPanels } from "../compiler/backends/wasm/gemmWasm.js";
import { ThreadPool } from "../runtime/threads.js";
import { relaxedSimd } from "../runtime/wasmFeatures.js";

/** A product set up in shared memory: A and B packed, C row-major (colPanels·8 wide). */
export interface SharedProduct {
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly colPanels: number;
  /** Whether the product multiply-adds with relaxed SIMD's FMA (where the engine validates it, as the kernel files choose). */
  readonly fma: boolean;
  readonly pool: ThreadPool;
  /** Computes C over every column panel, split across the pool's threads as its size is worth (or in `parts`). */
  run(parts?: number): void;
  /** Runs the product's export alone on this thread over column panels [from, to). */
  runPanels(from: number, to: number): void;
  /** C[i, j] for i < m, j < n, row-major (a copy). */
  result(): Float32Array;
  /** Zeros C. */
  clear(): void;
  close(): Promise<void>;
}

/**
 * Packs row-major `a` (m×k) and `b` (k×n) into a shared memory the way the
 * compiled kernels do (A in panels of 4 rows, B in panels of 8 columns, both
 * walked p by p) and starts a pool of `threads` over the ranged product,
 * with FMA where relaxed SIMD validates (turned on here, as the runtime does).
 */
export async function sharedProduct(m: number, n: number, k: number, a: Float32Array, b: Float32Array, threads: number): Promise<SharedProduct> {
  const { rowPanels, colPanels, width, aSize, bSize, cSize } = productPanels(m, n, k);
  const atA = 0;
  const atB = atA + aSize;
  const atC = atB + bSize;
  const floats = atC + cSize;
  const pages = pagesFor(4 * floats);
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  const product = { name: "product", m, n, rowPanels, colPanels, k, a: 4 * atA, b: 4 * atB, c: 4 * atC };
  const fma = relaxedSimd();
  const module = new WebAssembly.Module(encodeModule([product], pages, { ranged: true, shared: true, kernel: { fma } }));
  const W = new Float32Array(memory.buffer);
  for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) W[atA + (Math.floor(i / TILE_ROWS) * k + p) * TILE_ROWS + (i % TILE_ROWS)] = a[i * k + p]!;
  for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) W[atB + (Math.floor(j / TILE_COLS) * k + p) * TILE_COLS + (j % TILE_COLS)] = b[p * n + j]!;
  const pool = await ThreadPool.create({ units: [{ module, memory, exports: ["product"] }], threads });
  const alone = new WebAssembly.Instance(module, { env: { memory } }).exports["product"] as (from: number, to: number) => void;
  return {
    m,
    n,
    k,
    colPanels,
    fma,
    pool,
    // chunked by its work, as a bundle's products are
    run: (parts) => pool.run(0, 0, colPanels, parts ?? pool.partsFor(m * n * k), undefined, m * n * k),
    runPanels: (from, to) => alone(from, to),
    result: () => {
      const out = new Float32Array(m * n);
      for (let i = 0; i < m; i++) out.set(W.subarray(atC + i * width, atC + i * width + n), i * n);
      return out;
    },
    clear: () => W.fill(0, atC, floats),
    close: () => pool.close(),
  };
}
