// The thread pool over a shared WebAssembly.Memory: the WebAssembly SIMD
// matmul split by column panels gives bit-identical results on 1, 2 and 4
// threads (and on 4 parts run one after another), agrees with a float64
// product, never uses more threads than cores, reports bad setups and traps
// clearly, and lets the process exit.
import { spawnSync } from "node:child_process";
import type { SpawnSyncReturns } from "node:child_process";
import { writeFileSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { sharedProduct } from "../../bench/sgemm.js";
import type { SharedProduct } from "../../bench/sgemm.js";
import { I32, encodeModule, get, i32, section, str, vec } from "../../compiler/backends/wasm/wasm.js";
import { MIN_PARALLEL_WORK, ThreadPool, partition } from "../../runtime/threads.js";
import { expectAllClose, randomArray } from "../helpers.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const [m, k, n] = [37, 70, 203];
const A = Float32Array.from(randomArray(m * k, 3));
const B = Float32Array.from(randomArray(k * n, 4));
const open: SharedProduct[] = [];
afterAll(async () => {
  for (const p of open) await p.close();
});

/** The product on `threads` threads, C as raw bits. */
async function bitsOn(threads: number): Promise<{ bits: Uint32Array; threads: number; product: SharedProduct }> {
  const p = await sharedProduct(m, n, k, A, B, threads);
  open.push(p);
  p.run(threads); // every thread takes a part, whatever the size
  return { bits: new Uint32Array(p.result().buffer), threads: p.pool.threads, product: p };
}

/** Runs a script of `lines` (importing from the repository by absolute paths) in a child Node under tsx, killed after `timeout` ms. */
function runChild(lines: readonly string[], timeout: number): SpawnSyncReturns<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "gradc-threads-"));
  try {
    const script = path.join(dir, "child.mts");
    writeFileSync(script, lines.join("\n"));
    return spawnSync(process.execPath, ["--import", "tsx", script], { cwd: root, encoding: "utf8", timeout });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A module of one export `name(from, to)` with `body` (its locals' count first) over an imported shared memory of one page, and that memory. */
function rangedExport(name: string, body: readonly number[]): { module: WebAssembly.Module; memory: WebAssembly.Memory } {
  const bytes = Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([[0x60, 0x02, I32, I32, 0x00]])),
    ...section(2, vec([[...str("env"), ...str("memory"), 0x02, 0x03, 0x01, 0x01]])),
    ...section(3, vec([[0x00]])),
    ...section(7, vec([[...str(name), 0x00, 0x00]])),
    ...section(10, vec([[body.length, ...body]])),
  ]);
  return { module: new WebAssembly.Module(bytes), memory: new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true }) };
}

describe("thread pool", () => {
  it("splits a range into contiguous parts that cover it", () => {
    expect(partition(0, 10, 4)).toEqual([[0, 2], [2, 5], [5, 7], [7, 10]]);
    expect(partition(3, 4, 2)).toEqual([[3, 3], [3, 4]]);
  });

  it("keeps jobs too small to pay for a barrier on the calling thread", async () => {
    const p = await sharedProduct(8, 16, 4, Float32Array.from(randomArray(32, 7)), Float32Array.from(randomArray(64, 8)), 2);
    open.push(p);
    expect(p.pool.partsFor(MIN_PARALLEL_WORK - 1)).toBe(1);
    expect(p.pool.partsFor(0)).toBe(1);
    expect(p.pool.partsFor(MIN_PARALLEL_WORK)).toBe(1);
    expect(p.pool.partsFor(2 * MIN_PARALLEL_WORK)).toBe(p.pool.threads);
    expect(p.pool.partsFor(1e12)).toBe(p.pool.threads);
  }, 60_000);

  it("runs the matmul by column panels with bit-identical results on 1, 2 and 4 threads", async () => {
    const one = await bitsOn(1);
    expect(one.threads).toBe(1);
    // correct: against a float64 product of the same f32 operands
    const want = new Float64Array(m * n);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) for (let p = 0; p < k; p++) want[i * n + j]! += A[i * k + p]! * B[p * n + j]!;
    expectAllClose(new Float32Array(one.bits.buffer), want, { rtol: 1e-5, atol: 1e-5 });
    for (const t of [2, 4]) {
      const r = await bitsOn(t);
      expect(r.threads).toBe(Math.min(t, os.availableParallelism()));
      expect(r.bits, `${t} threads`).toEqual(one.bits);
      // again on the same pool: the barrier resets between jobs
      r.product.clear();
      r.product.run(t);
      expect(new Uint32Array(r.product.result().buffer), `${t} threads, second job`).toEqual(one.bits);
    }
    // 4 parts one after another on this thread: the split of a 4-thread pool on any machine
    const seq = one.product;
    seq.clear();
    for (const [from, to] of partition(0, seq.colPanels, 4)) seq.runPanels(from, to);
    expect(new Uint32Array(seq.result().buffer)).toEqual(one.bits);
  }, 120_000);

  it("refuses a memory that is not shared and an export the module lacks", async () => {
    const product = { name: "product", m: 4, n: 8, rowPanels: 1, colPanels: 1, k: 1, a: 0, b: 16, c: 48 };
    const plain = new WebAssembly.Memory({ initial: 1 });
    const module = new WebAssembly.Module(encodeModule([product], 1, { ranged: true }));
    await expect(ThreadPool.create({ units: [{ module, memory: plain, exports: ["product"] }] })).rejects.toThrow(/shared WebAssembly.Memory/);
    const shared = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    const sharedModule = new WebAssembly.Module(encodeModule([product], 1, { ranged: true, shared: true }));
    await expect(ThreadPool.create({ units: [{ module: sharedModule, memory: shared, exports: ["nope"] }] })).rejects.toThrow(/no function "nope"/);
    await expect(ThreadPool.create({ units: [{ module: sharedModule, memory: shared, exports: ["product"] }], threads: 0 })).rejects.toThrow(/threads must be/);
  });

  it("reports a part's trap (on a worker or taken by the caller) and runs the next job cleanly", async () => {
    // trap(from, to): unreachable unless from is 0, so every part but the first traps, whichever thread runs it
    const { module, memory } = rangedExport("trap", [0x00, ...get(0), 0x04, 0x40, 0x00, 0x0b, 0x0b]);
    const pool = await ThreadPool.create({ units: [{ module, memory, exports: ["trap"] }], threads: 2 });
    try {
      if (pool.threads < 2) return; // one core: no worker to trap
      expect(() => pool.run(0, 0, 10)).toThrow(/"trap" trapped on part [1-9] of \[0, 10\)/);
      expect(() => pool.run(0, 0, 10, 1)).not.toThrow();
      expect(() => pool.run(0, 0, 10)).toThrow(/"trap" trapped on part [1-9]/);
      // a job that does not trap runs cleanly after them
      expect(() => pool.run(0, 0, 1, 2)).not.toThrow();
    } finally {
      await pool.close();
    }
    expect(() => pool.run(0, 0, 10)).toThrow(/after close/);
  }, 60_000);

  it("cuts a job into its chunks per thread, or into chunks of at most the pool's chunk work where its work and range allow", async () => {
    // calls(from, to) atomically adds 1 to cell 0: how many chunks ran
    const { module, memory } = rangedExport("calls", [0x00, ...i32(0), ...i32(1), 0xfe, 0x1e, 0x02, 0x00, 0x1a, 0x0b]);
    const pool = await ThreadPool.create({ units: [{ module, memory, exports: ["calls"] }], threads: 2, chunks: 3, chunkWork: 1000 });
    const cell = new Int32Array(memory.buffer, 0, 1);
    const chunks = (to: number, work?: number): number => {
      cell[0] = 0;
      pool.run(0, 0, to, 2, [], work);
      return cell[0]!;
    };
    try {
      if (pool.threads < 2) return; // one core: every job runs whole on the caller
      expect(chunks(100)).toBe(6);
      expect(chunks(100, 5000)).toBe(6);
      expect(chunks(100, 40_500)).toBe(41);
      // at most one chunk per iteration
      expect(chunks(10, 40_500)).toBe(10);
      expect(chunks(4)).toBe(4);
    } finally {
      await pool.close();
    }
  }, 60_000);

  it("never lets a worker left in one job claim a chunk of the next (a million tiny jobs of alternating sizes, counted cell by cell)", () => {
    // count(from, to) adds 1 to the i32 cells [from, to): a chunk run twice, or skipped, shows in the counts. Jobs
    // alternate 2 and 8 chunks so that a worker still leaving the last job meets the next one's larger chunk count;
    // a claim against the wrong job left the caller waiting forever, so this runs in a child with a time limit.
    const r = runChild(
      [
        `import { I32, get, i32, section, set, str, uleb, vec } from ${JSON.stringify(path.join(root, "compiler/backends/wasm/wasm.ts"))};`,
        `import { ThreadPool } from ${JSON.stringify(path.join(root, "runtime/threads.ts"))};`,
        `const body = [0x00, 0x02, 0x40, 0x03, 0x40, ...get(0), ...get(1), 0x4e, 0x0d, 0x01,`,
        `  ...get(0), ...i32(2), 0x74, ...get(0), ...i32(2), 0x74, 0x28, 0x02, 0x00, ...i32(1), 0x6a, 0x36, 0x02, 0x00,`,
        `  ...get(0), ...i32(1), 0x6a, ...set(0), 0x0c, 0x00, 0x0b, 0x0b, 0x0b];`,
        `const bytes = Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...section(1, vec([[0x60, 0x02, I32, I32, 0x00]])),`,
        `  ...section(2, vec([[...str("env"), ...str("memory"), 0x02, 0x03, 0x01, 0x01]])), ...section(3, vec([[0x00]])),`,
        `  ...section(7, vec([[...str("count"), 0x00, 0x00]])), ...section(10, vec([[...uleb(body.length), ...body]]))]);`,
        `const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });`,
        `const pool = await ThreadPool.create({ units: [{ module: new WebAssembly.Module(bytes), memory, exports: ["count"] }], threads: 2 });`,
        `const want = new Int32Array(64);`,
        `for (let j = 0; j < 1_000_000; j++) { const n = j % 2 ? 64 : 2; pool.run(0, 0, n, 2); for (let i = 0; i < n; i++) want[i]++; }`,
        `const got = new Int32Array(memory.buffer, 0, 64);`,
        `const bad = want.findIndex((v, i) => v !== got[i]);`,
        `console.log(bad < 0 ? "counts ok" : \`cell \${bad}: \${got[bad]} runs, want \${want[bad]}\`, "threads", pool.threads);`,
        `await pool.close();`,
      ],
      150_000,
    );
    expect(r.error, `${r.stderr} (a timeout here is the caller waiting forever)`).toBeUndefined();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^counts ok threads [12]/);
  }, 180_000);

  it("lets the process exit without close(): idle workers are unref'd", () => {
    const r = runChild(
      [
        `import { sharedProduct } from ${JSON.stringify(path.join(root, "bench/sgemm.ts"))};`,
        `const p = await sharedProduct(8, 16, 4, new Float32Array(32).fill(1), new Float32Array(64).fill(2), 2);`,
        `p.run(2);`,
        `console.log("C00", p.result()[0], "threads", p.pool.threads);`,
      ],
      90_000,
    );
    expect(r.error, r.stderr).toBeUndefined();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^C00 8 threads [12]/);
  }, 120_000);
});
