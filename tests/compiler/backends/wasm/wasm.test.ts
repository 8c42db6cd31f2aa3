// Matmul products in WebAssembly SIMD: the module encodes and computes the
// product of packed panels; large f32 matmuls with prologues, transposed
// operands, edge tiles and epilogues agree with the JavaScript kernels and
// the interpreter; an emitted bundle instantiates the module once and its
// kernels allocate nothing.
import { readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { Project, SyntaxKind } from "ts-morph";
import { graph } from "../../../../compiler/dsl/graph.js";
import * as nn from "../../../../compiler/dsl/nn.js";
import { grad } from "../../../../compiler/autodiff/grad.js";
import { interpret } from "../../../../compiler/interp/interpret.js";
import { kernelsOf } from "../../../../compiler/lower/schedule.js";
import { TILE_COLS, TILE_ROWS, assembleModule, encodeModule, fmaPatch, pagesFor } from "../../../../compiler/backends/wasm/wasm.js";
import type { KernelShape } from "../../../../compiler/backends/wasm/wasm.js";
import { relaxedSimd } from "../../../../runtime/wasmFeatures.js";
import { matmulT } from "../../../../compiler/ops/matmul.js";
import { expectAllClose, randomArray } from "../../../helpers.js";
import { cleanupBundles, compileAndLoad, execute } from "../../harness/harness.js";
import type { Executed } from "../../harness/harness.js";
import type { Graph } from "../../../../compiler/ir/graph.js";

afterAll(cleanupBundles);

/** Whether relaxed SIMD validates here (turned on as the runtime turns it on). */
const relaxed = relaxedSimd();

/** One product's module over panels packed from row-major A (m×k) and B (k×n) in a memory of its own, and its export. */
function packedProduct(m: number, n: number, k: number, kernel: Partial<KernelShape>, seed: number) {
  const rows = kernel.rows ?? TILE_ROWS;
  const rowPanels = Math.ceil(m / rows);
  const colPanels = Math.ceil(n / TILE_COLS);
  const a = 0;
  const b = a + rowPanels * rows * k;
  const c = b + colPanels * TILE_COLS * k;
  const bytes = encodeModule([{ name: "mm", m, n, rowPanels, colPanels, k, a: 4 * a, b: 4 * b, c: 4 * c }], 1, { kernel });
  expect(WebAssembly.validate(bytes)).toBe(true);
  const memory = new WebAssembly.Memory({ initial: pagesFor(4 * (c + rowPanels * rows * colPanels * TILE_COLS)) });
  const mm = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports["mm"] as () => void;
  const W = new Float32Array(memory.buffer);
  const A = Float32Array.from(randomArray(m * k, seed));
  const B = Float32Array.from(randomArray(k * n, seed + 1));
  for (let i = 0; i < rowPanels * rows; i++) for (let p = 0; p < k; p++) W[a + (Math.floor(i / rows) * k + p) * rows + (i % rows)] = i < m ? A[i * k + p]! : 0;
  for (let j = 0; j < colPanels * TILE_COLS; j++) for (let p = 0; p < k; p++) W[b + (Math.floor(j / TILE_COLS) * k + p) * TILE_COLS + (j % TILE_COLS)] = j < n ? B[p * n + j]! : 0;
  W.fill(NaN, c);
  mm();
  return { A, B, C: (i: number, j: number) => W[c + i * colPanels * TILE_COLS + j]!, bytes };
}

describe("the WebAssembly module", () => {
  // every kernel shape the encoder offers, FMA where the engine has it: k-loops unrolled 1, 2 and 3 times, tiles of 4 and 5 rows
  const shapes: Partial<KernelShape>[] = [false, ...(relaxed ? [true] : [])].flatMap((fma) => [
    { fma },
    { fma, unroll: 2 },
    { fma, unroll: 3 },
    { fma, rows: 5 },
  ]);
  it.each(shapes)("computes C = A·B from packed panels, k = 1, 2, 3 and m, n, k no multiple of the tile or the unroll, to f32 rounding (%o)", (kernel) => {
    for (const [m, n, k] of [[1, 1, 1], [3, 9, 1], [5, 8, 2], [6, 11, 3], [9, 17, 5], [13, 24, 7], [4, 16, 8]] as const) {
      const { A, B, C } = packedProduct(m, n, k, kernel, m * 100 + k);
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          // float64 reference; each f32 step rounds by at most 2^-24 of the partial sums, which stay under the sum of |a·b|
          let [exact, size] = [0, 0];
          for (let p = 0; p < k; p++) {
            exact += A[i * k + p]! * B[p * n + j]!;
            size += Math.abs(A[i * k + p]! * B[p * n + j]!);
          }
          expect(Math.abs(C(i, j) - exact), `C[${i}, ${j}] of ${m}×${n} over ${k}`).toBeLessThanOrEqual(2 * k * 2 ** -24 * size);
        }
      }
    }
  });

  it("with FMA rounds once per multiply-add: where relaxed SIMD validates, the sums differ from multiply then add in their last bits", () => {
    if (!relaxed) return;
    const [m, n, k] = [8, 16, 64];
    const plain = packedProduct(m, n, k, { fma: false }, 7);
    const fused = packedProduct(m, n, k, { fma: true }, 7);
    let differ = 0;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        // each a·b exact in f64 (24-bit factors), and each sum rounded to f32 with it: the FMA's sums, in the same order
        let s = 0;
        for (let p = 0; p < k; p++) s = Math.fround(s + fused.A[i * k + p]! * fused.B[p * n + j]!);
        expect(fused.C(i, j)).toBe(s);
        if (plain.C(i, j) !== fused.C(i, j)) differ++;
      }
    }
    expect(differ).toBeGreaterThan(0);
  });

  it("lists its products' multiply-adds, where the FMA patch makes it the module encoded with FMA, byte for byte", () => {
    const product = { name: "mm", m: 9, n: 17, rowPanels: 3, colPanels: 3, k: 5, a: 0, b: 1024, c: 4096 };
    const batched = { ...product, name: "bmm", rowPanels: 2, m: 9, batches: 3, aBatch: 512, bBatch: 768, cBatch: 1024 };
    // a function besides the products (its body: size, no locals, end)
    const functions = [{ name: "other", params: [], body: [2, 0, 0x0b] }];
    for (const [kernel, perProduct] of [[{}, 8], [{ unroll: 3 }, 8 * (3 + 2)], [{ rows: 5, unroll: 2 }, 10 * (2 + 1)]] as const) {
      for (const ranged of [false, true]) {
        const options = { functions, ranged, kernel: { ...kernel, fma: false } };
        const plain = assembleModule([product, batched], 1, options);
        expect(Array.from(plain.bytes)).toEqual(Array.from(encodeModule([product, batched], 1, options)));
        expect(WebAssembly.validate(plain.bytes)).toBe(true);
        // the k-loop's body once, and the rest of k after it straight-line, in each product
        expect(plain.sites).toHaveLength(2 * perProduct);
        const fused = encodeModule([product, batched], 1, { ...options, kernel: { ...kernel, fma: true } });
        expect(Array.from(fmaPatch(plain.bytes, plain.sites))).toEqual(Array.from(fused));
        if (relaxed) expect(WebAssembly.validate(fused)).toBe(true);
      }
    }
  });

  it("names its functions (a name section): traces and profiles show the kernel, not wasm-function[i]", () => {
    // C placed past the memory's end: the product traps
    const bytes = encodeModule([{ name: "matmul_x_W1", m: 4, n: 8, rowPanels: 1, colPanels: 1, k: 2, a: 0, b: 64, c: 70000 }], 1);
    const module = new WebAssembly.Module(bytes);
    expect(WebAssembly.Module.customSections(module, "name")).toHaveLength(1);
    const memory = new WebAssembly.Memory({ initial: 1 });
    const mm = new WebAssembly.Instance(module, { env: { memory } }).exports["matmul_x_W1"] as () => void;
    let stack = "";
    try {
      mm();
    } catch (e) {
      stack = (e as Error).stack ?? "";
    }
    expect(stack).toMatch(/at matmul_x_W1 \(wasm:/);
  });
});

/** Layers over sizes that are no multiple of the tiles, every transposition, a prologue and epilogues. */
const odd = graph("odd", (g) => {
  const x = g.input("x", [33, 70]);
  const W1 = g.param("W1", [70, 21], { init: "heNormal" });
  const W2t = g.param("W2t", [40, 21], { init: "glorotUniform" });
  const b1 = g.param("b1", [21], { init: { name: "uniform", min: -0.2, max: 0.2 } });
  const h = x.matmul(W1).add(b1).relu();
  // B transposed; the operand is tanh(h) computed while packing
  const z = matmulT(h.tanh(), W2t, false, true).sigmoid();
  // A transposed: a [21, 40] product over the 33 rows
  const gram = matmulT(h, z, true, false);
  return { loss: gram.square().mean().add(z.mean()), outputs: { z } };
});
const feeds = { x: randomArray(33 * 70, 3) };

/** Attention's batched products over [B, H, S, D] (sizes no multiple of the tiles): q·kᵀ scaled, a softmax, then ·v; a batched product with a broadcast weight. */
const attention = ([B, H, S, D]: readonly [number, number, number, number]) => graph("batched", (g) => {
  const x = g.input("x", [B, H, S, D]);
  const q = x.mul(g.param("wq", [D], { init: { name: "uniform", min: 0.5, max: 1.5 } }));
  const k = x.tanh();
  const scores = matmulT(q, k, false, true).mul(1 / Math.sqrt(D));
  const attn = nn.softmax(scores);
  const out = attn.matmul(x.sigmoid());
  const proj = out.matmul(g.param("wo", [D, 17], { init: "glorotUniform" }));
  return { loss: proj.square().mean(), outputs: { attn } };
});

/** Each run's loss, gradients and `output` (from input x) agree with the interpreter's. */
function agree(runs: readonly Executed[], g: Graph, x: Float64Array, output: string): void {
  const want = interpret(grad(g), { x });
  for (const run of runs) {
    run.input("x", x);
    run.gradients();
    run.forward();
    expectAllClose([run.loss()], [want.loss!], { rtol: 1e-4, atol: 1e-6 });
    for (const [p, v] of Object.entries(want.grads)) expectAllClose(run.grad(p), v.data, { rtol: 2e-3, atol: 1e-5 });
    expectAllClose(run.output(output), want.outputs[output]!.data, { rtol: 1e-4, atol: 1e-6 });
  }
}

describe("WebAssembly matmul kernels", () => {
  it("run the products of large f32 matmuls, and agree with the JavaScript kernels and the interpreter", () => {
    const on = execute(odd);
    const off = execute(odd, { wasm: false });
    const natives = kernelsOf(on.schedule, "gradients").filter((k) => k.extern);
    expect(natives.length).toBeGreaterThanOrEqual(5);
    expect(kernelsOf(off.schedule, "gradients").some((k) => k.extern)).toBe(false);
    agree([on, off], odd, feeds.x, "z");
  });

  it.each([
    [2, 3, 21, 12],
    // one batch: still a batched product, its range the one batch
    [1, 1, 40, 32],
  ] as const)("run batched products (attention's [B, H, S, D] = [%i, %i, %i, %i]) whole in one call, and agree with the JavaScript kernels and the interpreter", (...dims) => {
    const batched = attention(dims);
    const batchedFeeds = { x: randomArray(dims.reduce<number>((a, b) => a * b, 1), 5) };
    const on = execute(batched);
    const off = execute(batched, { wasm: false });
    const natives = kernelsOf(on.schedule, "gradients").filter((k) => k.extern);
    // q·kᵀ, attn·v and ·wo forward; their operands' gradients backward
    expect(natives.length).toBeGreaterThanOrEqual(6);
    expect(natives.filter((k) => k.extern!.data["batches"] === dims[0] * dims[1]).length).toBeGreaterThanOrEqual(4);
    agree([on, off], batched, batchedFeeds.x, "attn");
  });

  it("stay in JavaScript for f64 bundles and small products", () => {
    expect(execute(odd, { dtype: "f64" }).schedule.kernels.some((k) => k.extern)).toBe(false);
    const small = graph("small", (g) => ({ loss: g.input("x", [4, 8]).matmul(g.param("W", [8, 8])).sum() }));
    expect(execute(small).schedule.kernels.some((k) => k.extern)).toBe(false);
  });

  it("an emitted bundle instantiates the module once; its kernels call it and allocate nothing", async () => {
    const b = await compileAndLoad(odd);
    b.input("x", feeds.x);
    b.gradients();
    const want = interpret(grad(odd), feeds);
    for (const [p, g] of Object.entries(want.grads)) expectAllClose(b.grad(p), g.data, { rtol: 2e-3, atol: 1e-5 });
    const source = readFileSync(path.join(b.result.outDir, "step.ts"), "utf8");
    expect(source.match(/new WebAssembly\.Instance/g)).toHaveLength(1);
    // FMA where the engine validates it (the harness turns relaxed SIMD on, as the runtime does)
    const step = (await import(pathToFileURL(path.join(b.result.outDir, "step.js")).href)) as { WASM: { fma: boolean } };
    expect(step.WASM.fma).toBe(relaxed);
    const sf = new Project({ useInMemoryFileSystem: true }).createSourceFile("step.ts", source);
    const kernels = sf.getFunctions().filter((f) => f.getName() !== "create");
    const calls = kernels.flatMap((k) => k.getDescendantsOfKind(SyntaxKind.CallExpression).map((c) => c.getExpression().getText()));
    // each product: its export, or the same export split across threads when the runtime set them
    const products = /^\(WASM\.threads\?\.(\w+) \?\? wasm\.\1\)$/;
    expect(calls.filter((c) => products.test(c)).length).toBeGreaterThanOrEqual(5);
    // each elementwise loop nest: its export (or the same export split across threads), when the arena is in the module's memory
    const loops = /^\(WASM\.threads\?\.\["(?<loop>\w+#r?\d+)"\] \?\? wasm\["\k<loop>"\]\)$/;
    expect(calls.filter((c) => loops.test(c)).length).toBeGreaterThanOrEqual(2);
    for (const c of calls) expect(c).toMatch(new RegExp(`^Math\\.\\w+$|^wasmArenas\\.get$|${products.source}|${loops.source}`));
    for (const k of kernels) {
      for (const kind of [SyntaxKind.NewExpression, SyntaxKind.ArrayLiteralExpression, SyntaxKind.ObjectLiteralExpression, SyntaxKind.ArrowFunction]) {
        expect(k.getDescendantsOfKind(kind), `${kind} in ${k.getName()}`).toEqual([]);
      }
    }
  });
});
