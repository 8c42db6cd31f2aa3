// Elementwise loop nests in WebAssembly SIMD (simdLoops.ts): which nests the
// pass hands to the module, that chains of exact operations give the bits
// the JavaScript kernels give (forward, backward and the optimizer updates,
// over sizes with a tail and broadcast operands), that exp, log, tanh and
// sigmoid stay within their documented bounds, and that the MNIST bundle runs
// its fused epilogues and its Adam update in the module.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { compile } from "../../../../compiler/compile.js";
import { inspectText } from "../../../../compiler/inspect/command.js";
import { watModule } from "../../../../compiler/backends/wasm/wat.js";
import { SIMD_MATH_FNS, simdMathModule } from "../../../../compiler/backends/wasm/simdMath.js";
import * as mnist from "../../../../examples/mnist/model.js";
import { SIMD_MATH_ERROR } from "../../../../compiler/backends/wasm/simdMath.js";
import type { SimdMathFn } from "../../../../compiler/backends/wasm/simdMath.js";
import { graph } from "../../../../compiler/dsl/graph.js";
import * as nn from "../../../../compiler/dsl/nn.js";
import type { Graph } from "../../../../compiler/ir/graph.js";
import type { OptimizerSpec } from "../../../../runtime/manifest.js";
import { visitKir } from "../../../../compiler/kernel/kir.js";
import { isSimdCall } from "../../../../compiler/backends/wasm/simdLoops.js";
import { expectAllClose, randomArray } from "../../../helpers.js";
import { cleanupBundles, execute } from "../../harness/harness.js";
import type { Executed } from "../../harness/harness.js";

const root = mkdtempSync(path.join(tmpdir(), "gradc-simd-"));
afterAll(() => {
  cleanupBundles();
  rmSync(root, { recursive: true, force: true });
});

/** The elementwise externs of a run's kernels. */
const simdCalls = (r: Executed): string[] => {
  const out: string[] = [];
  for (const k of r.schedule.kernels) visitKir(k.body, { stmt: (s) => void (s.k === "extern" && isSimdCall(s.call) && out.push(`${k.name}:${s.call}`)) });
  return out;
};

/** Exact operations only: add, sub, mul, div, max, min, abs, neg, relu, where, comparisons; a [37, 23] layer (a tail of 3 per row) with a broadcast bias. */
const exact = graph("exact", (g) => {
  const x = g.input("x", [37, 23]);
  const b = g.param("b", [23], { init: { name: "uniform", min: -0.5, max: 0.5 } });
  const s = g.param("s", [37, 23], { init: { name: "uniform", min: 0.5, max: 1.5 } });
  const h = x.add(b).relu().mul(s).sub(x.abs().div(s));
  const k = h.maximum(x.neg()).minimum(x.mul(3));
  return { loss: k.square().mean().add(h.mul(x).mean()), outputs: { k } };
});

const steps = (backend: "ts" | "wasm", g: Graph, optimizer: OptimizerSpec, feeds: Record<string, Float32Array>, n: number): { run: Executed; losses: number[] } => {
  const run = execute(g, { backend, optimizer });
  const losses: number[] = [];
  for (let t = 1; t <= n; t++) {
    for (const [name, v] of Object.entries(feeds)) run.input(name, v);
    run.hyper(0.05, t);
    run.step();
    losses.push(run.loss());
  }
  return { run, losses };
};

describe("elementwise loops in WebAssembly SIMD", () => {
  const feeds = { x: Float32Array.from(randomArray(37 * 23, 5)) };
  const optimizers: OptimizerSpec[] = [{ name: "sgd", lr: 0.05 }, { name: "momentum", lr: 0.05, momentum: 0.9, nesterov: true }, { name: "adam", lr: 0.05 }, { name: "adamw", lr: 0.05, weightDecay: 0.01 }];
  it.each(optimizers)("exact chains and the $name update give the JavaScript kernels' bits", (optimizer) => {
    const ts = steps("ts", exact, optimizer, feeds, 3);
    const wasm = steps("wasm", exact, optimizer, feeds, 3);
    // the forward chain, its gradients and the update all run in the module
    const calls = simdCalls(wasm.run);
    expect(calls.some((c) => c.startsWith(`${optimizer.name}_`))).toBe(true);
    expect(calls.length).toBeGreaterThanOrEqual(3);
    // the arena lies in the module's memory, so the module (not the JavaScript reference loops) computed them
    expect(wasm.run.F.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(ts.run.F.buffer).not.toBeInstanceOf(SharedArrayBuffer);
    expect(wasm.losses).toEqual(ts.losses);
    for (const p of ["b", "s"]) expect(wasm.run.param(p)).toEqual(ts.run.param(p));
    expect(wasm.run.output("k")).toEqual(ts.run.output("k"));
  });
});

describe("row loops in WebAssembly SIMD (reductions over the last axis and their epilogues)", () => {
  // 37 rows (a row left after the pairs) of 29
  const rows = graph("rows", (g) => {
    const x = g.input("x", [37, 29]);
    const gamma = g.param("gamma", [29], { init: { name: "uniform", min: 0.5, max: 1.5 } });
    const beta = g.param("beta", [29], { init: { name: "uniform", min: -0.5, max: 0.5 } });
    const ln = nn.layerNorm(x, gamma, beta);
    const exact = { ln, sum: x.sum(-1), mean: x.mean(-1), max: x.max(-1) };
    const outputs = { ...exact, softmax: nn.softmax(x), lse: nn.logsumexp(x) };
    return { loss: ln.square().mean().add(outputs.softmax.mul(x).mean()), outputs };
  });
  const feeds = { x: randomArray(37 * 29, 11, -3, 3) };
  it("layer norm, sum, mean and max give the JavaScript kernels' bits (each row summed in order); softmax and log-sum-exp stay within simdMath's bounds", () => {
    const [ts, wasm] = (["ts", "wasm"] as const).map((backend) => {
      const r = execute(rows, { backend, optimizer: { name: "adam", lr: 0.01 } });
      r.input("x", feeds.x);
      r.hyper(0.01, 1);
      r.step();
      r.forward();
      return r;
    });
    const calls = simdCalls(wasm!);
    expect(calls.filter((c) => c.includes(":rows#")).length).toBeGreaterThanOrEqual(2);
    for (const o of ["ln", "sum", "mean", "max"]) expect(wasm!.output(o), o).toEqual(ts!.output(o));
    for (const p of ["gamma", "beta"]) expect(wasm!.param(p), p).toEqual(ts!.param(p));
    expect(wasm!.loss()).toBe(ts!.loss());
    expectAllClose(wasm!.output("softmax"), ts!.output("softmax"), { rtol: 4e-7, atol: 1e-9 });
    expectAllClose(wasm!.output("lse"), ts!.output("lse"), { rtol: 4e-7, atol: 1e-9 });
  });
});

describe("column sums and totals in WebAssembly (blocks of columns two at a time, a total in one lane)", () => {
  // bias gradients: 300 rows summed per column, 40 columns (five blocks of 8) and 8 (one block); the loss a total over every element
  const cols = graph("cols", (g) => {
    const x = g.input("x", [300, 40]);
    const z = g.input("z", [300, 8]);
    const b = g.param("b", [40], { init: { name: "uniform", min: -0.5, max: 0.5 } });
    const c = g.param("c", [8], { init: { name: "uniform", min: -0.5, max: 0.5 } });
    return { loss: x.add(b).square().mean().add(z.add(c).mul(z).sum()) };
  });
  const feeds = { x: Float32Array.from(randomArray(300 * 40, 21, -2, 2)), z: Float32Array.from(randomArray(300 * 8, 22, -2, 2)) };
  it("give the JavaScript kernels' bits (each column and the total summed in order)", () => {
    const ts = steps("ts", cols, { name: "sgd", lr: 0.05 }, feeds, 2);
    const wasm = steps("wasm", cols, { name: "sgd", lr: 0.05 }, feeds, 2);
    const rows = simdCalls(wasm.run).filter((c) => c.includes(":rows#"));
    // the two bias gradients and a total at least
    expect(rows.length).toBeGreaterThanOrEqual(3);
    const bodies = wasm.run.schedule.kernels.flatMap((k) => k.body);
    const text = JSON.stringify(bodies);
    expect(text).toContain("in WebAssembly (one row, f64x2 lane 0)");
    expect(wasm.run.F.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(wasm.losses).toEqual(ts.losses);
    for (const p of ["b", "c"]) expect(wasm.run.param(p), p).toEqual(ts.run.param(p));
  });
});

/** Units in the last place between two f32 values of the same sign (their bit patterns' distance). */
function ulpDistance(a: number, b: number): number {
  const bits = new Int32Array(new Float32Array([a, b]).buffer);
  return Math.abs(bits[0]! - bits[1]!);
}

describe("exp, log, tanh and sigmoid in elementwise loops", () => {
  // [41, 7]: a tail of 3 after each 4 elements of a row
  const g = graph("math", (g) => {
    const x = g.input("x", [41, 7]);
    const p = g.input("p", [41, 7]);
    const outputs = { exp: x.exp(), log: p.log(), tanh: x.tanh(), sigmoid: x.sigmoid() };
    return { loss: outputs.exp.mean().add(outputs.log.mean()), outputs };
  });
  it("stay within simdMath's documented ulps of the JavaScript kernels (Math.* in doubles, rounded to f32)", () => {
    const feeds = { x: randomArray(41 * 7, 8, -9, 9), p: randomArray(41 * 7, 9, 1e-3, 50) };
    const [ts, wasm] = (["ts", "wasm"] as const).map((backend) => {
      const r = execute(g, { backend });
      for (const [name, v] of Object.entries(feeds)) r.input(name, v);
      r.forward();
      return r;
    });
    expect(simdCalls(wasm!).length).toBeGreaterThanOrEqual(1);
    expect(wasm!.F.buffer).toBeInstanceOf(SharedArrayBuffer);
    for (const fn of ["exp", "log", "tanh", "sigmoid"] as SimdMathFn[]) {
      const [want, got] = [ts!.output(fn), wasm!.output(fn)];
      const worst = Math.max(...got.map((v, i) => ulpDistance(v, want[i]!)));
      // the module's error against the exact value, plus the JavaScript kernels' rounding to f32
      expect(worst, fn).toBeLessThanOrEqual(Math.ceil(SIMD_MATH_ERROR[fn].ulps + 0.5));
    }
  });
});

describe("the MNIST bundle", () => {
  it("runs its fused epilogues (bias, ReLU, ReLU's mask) and its Adam update in WebAssembly", async () => {
    const outDir = path.join(root, "mnist");
    compile(mnist.default, { ...mnist.config, outDir });
    const source = readFileSync(path.join(outDir, "step.ts"), "utf8");
    const mod = (await import(pathToFileURL(path.join(outDir, "step.js")).href)) as { WASM: { module: WebAssembly.Module; arena?: (n: number) => Float32Array | undefined } };
    const exports = WebAssembly.Module.exports(mod.WASM.module).map((e) => e.name);
    // the Adam update of every param, one loop, is an export of the module, and its kernel calls it
    expect(exports).toContain("adam_params#0");
    expect(source).toMatch(/function adam_params\([^]*?\(WASM\.threads\?\.\["adam_params#0"\] \?\? wasm\["adam_params#0"\]\)\(/);
    // the first layer's bias + ReLU after its product, and the ReLU masks of the backward pass
    const relu = exports.filter((e) => /^matmul_\w*relu\w*#\d+$/.test(e));
    const masks = exports.filter((e) => /^grad_matmul_\w*where#\d+$/.test(e));
    expect(relu.length).toBeGreaterThanOrEqual(2);
    expect(masks.length).toBeGreaterThanOrEqual(2);
    for (const e of [...relu, ...masks]) expect(source).toContain(`wasm[${JSON.stringify(e)}])(`);
    const arena = mod.WASM.arena?.(1024);
    expect(arena?.buffer).toBeInstanceOf(SharedArrayBuffer);
    // gradc inspect --wat: every function of the module, under its kernel; --kernel NAME: that kernel's
    const wat = inspectText(outDir, { wat: true });
    for (const e of exports) expect(wat).toContain(`(func $${e} (export ${JSON.stringify(e)})`);
    expect(wat).toMatch(/^;; step\.js's module \(import "env" "memory" \(memory \d+ \d+ shared\)\)\n;; where relaxed SIMD validates, each product's .*f32x4\.relaxed_madd/m);
    const adam = inspectText(outDir, { wat: true, kernel: "adam_params" });
    expect(adam.startsWith(";; kernel adam_params (step.js)\n(func $adam_params#0 (export \"adam_params#0\") (param i32 i32 i32 i32 f64 f64 i32 i32)")).toBe(true);
    for (const op of ["f64x2.sqrt", "f64x2.div", "f32x4.demote_f64x2_zero", "v128.load64_zero"]) expect(adam).toContain(op);
    expect(() => inspectText(outDir, { wat: true, kernel: "max_h_sub_exp_sum_add" })).toThrow(/runs no WebAssembly/);
  }, 60_000);
});

describe("the WebAssembly text (gradc inspect --wat)", () => {
  it("prints every instruction the math functions use, relaxed SIMD's madd included", () => {
    for (const fma of [false, true]) {
      const { memory, functions } = watModule(simdMathModule(SIMD_MATH_FNS, 1, { fma }));
      expect(memory).toBe('(import "env" "memory" (memory 1))');
      expect(functions.map((f) => f.name)).toEqual([...SIMD_MATH_FNS]);
      expect(functions[0]!.text.startsWith("(func $exp (export \"exp\") (param i32 i32) (local")).toBe(true);
      expect(functions.some((f) => f.text.includes("f32x4.relaxed_madd"))).toBe(fma);
    }
  });
});
