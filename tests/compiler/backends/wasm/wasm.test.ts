// Matmul products in WebAssembly SIMD: the module encodes and computes the
// product of packed panels; large f32 matmuls with prologues, transposed
// operands, edge tiles and epilogues agree with the JavaScript kernels and
// the interpreter; an emitted bundle instantiates the module once and its
// kernels allocate nothing.
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Project, SyntaxKind } from "ts-morph";
import { graph } from "../../../../compiler/dsl/graph.js";
import * as nn from "../../../../compiler/dsl/nn.js";
import { grad } from "../../../../compiler/autodiff/grad.js";
import { interpret } from "../../../../compiler/interp/interpret.js";
import { kernelsOf } from "../../../../compiler/lower/schedule.js";
import { TILE_COLS, TILE_ROWS, encodeModule, pagesFor } from "../../../../compiler/backends/wasm/wasm.js";
import { matmulT } from "../../../../compiler/ops/matmul.js";
import { expectAllClose, randomArray } from "../../../helpers.js";
import { cleanupBundles, compileAndLoad, execute } from "../../harness/harness.js";
import type { Executed } from "../../harness/harness.js";
import type { Graph } from "../../../../compiler/ir/graph.js";

afterAll(cleanupBundles);

describe("the WebAssembly module", () => {
  it("computes C = A·B from panels of 4 rows of A and 8 columns of B", () => {
    const [m, k, n] = [6, 5, 11];
    const rowPanels = Math.ceil(m / TILE_ROWS);
    const colPanels = Math.ceil(n / TILE_COLS);
    const a = 0;
    const b = a + rowPanels * TILE_ROWS * k;
    const c = b + colPanels * TILE_COLS * k;
    const bytes = encodeModule([{ name: "mm", m, n, rowPanels, colPanels, k, a: 4 * a, b: 4 * b, c: 4 * c }], 1);
    expect(WebAssembly.validate(bytes)).toBe(true);
    const memory = new WebAssembly.Memory({ initial: pagesFor(4 * (c + rowPanels * TILE_ROWS * colPanels * TILE_COLS)) });
    const mm = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports["mm"] as () => void;
    const W = new Float32Array(memory.buffer);
    const A = randomArray(m * k, 1);
    const B = randomArray(k * n, 2);
    for (let i = 0; i < rowPanels * TILE_ROWS; i++) for (let p = 0; p < k; p++) W[a + (Math.floor(i / 4) * k + p) * 4 + (i % 4)] = i < m ? A[i * k + p]! : 0;
    for (let j = 0; j < colPanels * TILE_COLS; j++) for (let p = 0; p < k; p++) W[b + (Math.floor(j / 8) * k + p) * 8 + (j % 8)] = j < n ? B[p * n + j]! : 0;
    mm();
    const got: number[] = [];
    const want: number[] = [];
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        got.push(W[c + i * colPanels * TILE_COLS + j]!);
        let s = 0;
        for (let p = 0; p < k; p++) s += Math.fround(A[i * k + p]!) * Math.fround(B[p * n + j]!);
        want.push(s);
      }
    }
    expectAllClose(got, want, { rtol: 1e-5, atol: 1e-6 });
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
    const sf = new Project({ useInMemoryFileSystem: true }).createSourceFile("step.ts", source);
    const kernels = sf.getFunctions().filter((f) => f.getName() !== "create");
    const calls = kernels.flatMap((k) => k.getDescendantsOfKind(SyntaxKind.CallExpression).map((c) => c.getExpression().getText()));
    // each product: its export, or the same export split across threads when the runtime set them
    const products = /^\(WASM\.threads\?\.(\w+) \?\? wasm\.\1\)$/;
    expect(calls.filter((c) => products.test(c)).length).toBeGreaterThanOrEqual(5);
    // each elementwise loop nest: its export, when the arena is in the module's memory
    const loops = /^wasm\["\w+#r?\d+"\]$/;
    expect(calls.filter((c) => loops.test(c)).length).toBeGreaterThanOrEqual(2);
    for (const c of calls) expect(c).toMatch(new RegExp(`^Math\\.\\w+$|^wasmArenas\\.get$|${products.source}|${loops.source}`));
    for (const k of kernels) {
      for (const kind of [SyntaxKind.NewExpression, SyntaxKind.ArrayLiteralExpression, SyntaxKind.ObjectLiteralExpression, SyntaxKind.ArrowFunction]) {
        expect(k.getDescendantsOfKind(kind), `${kind} in ${k.getName()}`).toEqual([]);
      }
    }
  });
});
