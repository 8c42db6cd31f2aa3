// Copy loops (copyRows.ts): a product's operand packing without a prologue
// and the gathers of transposes run in the module as word copies. The same
// step.js runs its packing as the module's copies (the arena in the module's
// memory) and as its JavaScript reference loops (an arena outside it); the
// products, which read the packed panels, must then give the same bits, for
// every transposition of the operands, panels cut short at the edges (zeros
// past them) and batched products.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { compile } from "../../../../compiler/compile.js";
import { graph } from "../../../../compiler/dsl/graph.js";
import type { Graph } from "../../../../compiler/ir/graph.js";
import { accessOf } from "../../../../compiler/backends/wasm/copyRows.js";
import { addE, mulE, num, ref } from "../../../../compiler/kernel/kir.js";
import { floatArena } from "../../../../runtime/hostDevice.js";
import { loadKernels } from "../../../../runtime/nodeDevices.js";
import type { StepModule } from "../../../../runtime/manifest.js";
import { randomArray } from "../../../helpers.js";

const root = mkdtempSync(path.join(os.tmpdir(), "gradc-copy-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Every transposition of a product's operands at sizes that cut the 4-row and 8-column panels short, and a batched product with a transposed operand. */
const products = graph("products", (g) => {
  const [m, k, n] = [45, 67, 41];
  const x = g.input("x", [m, k]);
  const xt = g.input("xt", [k, m]);
  const W = g.param("W", [k, n], { init: { name: "uniform", min: -0.5, max: 0.5 } });
  const Wt = g.param("Wt", [n, k], { init: { name: "uniform", min: -0.5, max: 0.5 } });
  const a = x.matmul(W);
  const b = xt.transpose().matmul(Wt.transpose());
  const q = g.input("q", [2, 2, 38, 70]);
  const kk = g.input("k", [2, 2, 38, 70]);
  const Q = g.param("Q", [70, 70], { init: { name: "uniform", min: -0.5, max: 0.5 } });
  const scores = q.matmul(Q).matmul(kk.transpose([0, 1, 3, 2]));
  return { loss: a.mul(b).mean().add(scores.square().mean()) };
});

/** One step of the bundle's step.js on an arena in the module's memory (`inModule`) or outside it: the loss and the params after it, as bits. */
async function stepBits(g: Graph, inModule: boolean): Promise<{ bits: string[]; copies: number }> {
  const r = compile(g, { optimizer: { name: "sgd", lr: 0.1 }, outDir: path.join(root, `${g.name}-${inModule ? "module" : "js"}`) });
  const m = r.manifest;
  const file = path.join(r.outDir, m.files.step);
  const mod = await loadKernels(async () => (await import(pathToFileURL(file).href)) as StepModule);
  const F = inModule ? floatArena(m, mod) : new Float32Array(m.arena.floats);
  expect(F.buffer instanceof SharedArrayBuffer).toBe(inModule);
  const I = new Int32Array(Math.max(1, m.arena.ints));
  m.params.forEach((p, i) => F.set(randomArray(p.shape.reduce((a, b) => a * b, 1), 100 + i, -0.5, 0.5), p.offset));
  m.inputs.forEach((t, i) => F.set(randomArray(t.shape.reduce((a, b) => a * b, 1), 200 + i, -1, 1), t.offset));
  F[m.hyper.lr.offset] = 0.1;
  I[m.hyper.step.offset] = 1;
  mod.create(F, I).step();
  const bits = [F[m.loss!.offset]!, ...m.params.flatMap((p) => Array.from(F.subarray(p.offset, p.offset + p.shape.reduce((a, b) => a * b, 1))))].map((v) => new Uint32Array(Float32Array.of(v).buffer)[0]!.toString(16));
  const copies = (readFileSync(file, "utf8").match(/rows copied in WebAssembly/g) ?? []).length;
  return { bits, copies };
}

describe("copy loops in WebAssembly", () => {
  it("pack every operand form (panels cut short, batched, transposed; row-major operands by 4×4 transposes) as the JavaScript reference loops pack them: the same bits", async () => {
    const copied = await stepBits(products, true);
    const js = await stepBits(products, false);
    // the forward's and the backward's packings run as copies
    expect(copied.copies).toBeGreaterThanOrEqual(8);
    expect(copied.bits.length).toBe(js.bits.length);
    expect(copied.bits).toEqual(js.bits);
  });

  it("address accesses by their indexes' affine terms and constant, and refuse the others", () => {
    const e = addE(mulE(ref("u"), 3136), addE(mulE(ref("p"), 4), addE(num(100352), ref("t"))));
    const a = accessOf("W", e)!;
    expect(Object.fromEntries(a.terms)).toEqual({ u: 3136, p: 4, t: 1 });
    expect(a.c).toBe(100352);
    // one key for accesses of a buffer that differ by a constant, another for another buffer
    expect(accessOf("W", addE(e, 7))!.key).toBe(a.key);
    expect(accessOf("F", e)!.key).not.toBe(a.key);
    // u·3 − u·3 leaves no term; a product of two names and an idiv are not affine
    expect(accessOf("W", { k: "bin", op: "-", a: mulE(ref("u"), 3), b: mulE(ref("u"), 3) })!.terms.size).toBe(0);
    expect(accessOf("W", { k: "bin", op: "*", a: ref("u"), b: ref("p") })).toBeUndefined();
    expect(accessOf("W", { k: "bin", op: "idiv", a: ref("u"), b: num(4) })).toBeUndefined();
  });
});
