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
import { grad } from "../../../../compiler/autodiff/grad.js";
import { interpret } from "../../../../compiler/interp/interpret.js";
import { kernelsOf } from "../../../../compiler/lower/schedule.js";
import { TILE_COLS, TILE_ROWS, encodeModule, pagesFor } from "../../../../compiler/backends/wasm/wasm.js";
import { matmulT } from "../../../../compiler/ops/matmul.js";
import { expectAllClose, randomArray } from "../../../helpers.js";
import { cleanupBundles, compileAndLoad, execute } from "../../harness/harness.js";

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

describe("WebAssembly matmul kernels", () => {
  it("run the products of large f32 matmuls, and agree with the JavaScript kernels and the interpreter", () => {
    const on = execute(odd);
    const off = execute(odd, { wasm: false });
    const natives = kernelsOf(on.schedule, "gradients").filter((k) => k.extern);
    expect(natives.length).toBeGreaterThanOrEqual(5);
    expect(kernelsOf(off.schedule, "gradients").some((k) => k.extern)).toBe(false);
    const want = interpret(grad(odd), feeds);
    for (const run of [on, off]) {
      run.input("x", feeds.x);
      run.gradients();
      run.forward();
      expectAllClose([run.loss()], [want.loss!], { rtol: 1e-4, atol: 1e-6 });
      for (const [p, g] of Object.entries(want.grads)) expectAllClose(run.grad(p), g.data, { rtol: 2e-3, atol: 1e-5 });
      expectAllClose(run.output("z"), want.outputs["z"]!.data, { rtol: 1e-4, atol: 1e-6 });
    }
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
    expect(calls.filter((c) => c.startsWith("wasm.")).length).toBeGreaterThanOrEqual(5);
    for (const c of calls) expect(c).toMatch(/^(Math\.\w+|wasm\.\w+)$/);
    for (const k of kernels) {
      for (const kind of [SyntaxKind.NewExpression, SyntaxKind.ArrayLiteralExpression, SyntaxKind.ObjectLiteralExpression, SyntaxKind.ArrowFunction]) {
        expect(k.getDescendantsOfKind(kind), `${kind} in ${k.getName()}`).toEqual([]);
      }
    }
  });
});
