// WebAssembly on worker threads, through the runtime: an MNIST-sized MLP, a
// transformer block and a small CNN (its convolutions as products) compiled
// for the wasm backend give bit-identical losses, gradients and params on 1,
// 2 and 4 threads (a product is split by column panels or batches, an
// elementwise or row loop by its outermost loop's iterations, which decides
// only who computes a value), agree with the interpreter on 2 threads, really
// split their products and loops, and hand their threads back on close().
// With every ranged export split, however small (in 2 parts on worker
// threads, in 3 and 4 parts run in turn on the calling thread), odd shapes
// included, the bits stay the same.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { compile } from "../../compiler/compile.js";
import { graph } from "../../compiler/dsl/graph.js";
import * as nn from "../../compiler/dsl/nn.js";
import { grad } from "../../compiler/autodiff/grad.js";
import { interpret } from "../../compiler/interp/interpret.js";
import type { Graph } from "../../compiler/ir/graph.js";
import { createHostDevice } from "../../runtime/hostDevice.js";
import { load } from "../../runtime/load.js";
import type { Trainer } from "../../runtime/load.js";
import { ThreadPool, partition } from "../../runtime/threads.js";
import { instantiateUnits } from "../../runtime/jobs.js";
import type { PoolStarter } from "../../runtime/wasmThreads.js";
import { expectAllClose, randomArray } from "../helpers.js";

const root = mkdtempSync(path.join(os.tmpdir(), "gradc-wasm-threads-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const cores = os.availableParallelism();

/** MNIST's MLP at batch 32 (784 → 256 → 256 → 10). */
const mlp = graph("mlp", (g) => {
  const x = g.input("x", [32, 784]);
  const y = g.input("y", [32], "i32");
  const h1 = x.matmul(g.param("W1", [784, 256], { init: "heNormal" })).add(g.param("b1", [256])).relu();
  const h2 = h1.matmul(g.param("W2", [256, 256], { init: "heNormal" })).add(g.param("b2", [256])).relu();
  const logits = h2.matmul(g.param("W3", [256, 10], { init: "glorotUniform" })).add(g.param("b3", [10]));
  return { loss: nn.softmaxCrossEntropy(logits, y), outputs: { logits } };
});

/** A pre-norm transformer block: causal 4-head self-attention and a GELU MLP, each with a residual. */
const block = graph("block", (g) => {
  const [B, T, D] = [4, 16, 64];
  const x = g.input("x", [B, T, D]);
  const ln = (name: string, t: typeof x) => nn.layerNorm(t, g.param(`${name}.gamma`, [D], { init: 1 }), g.param(`${name}.beta`, [D]));
  const h = x.add(nn.multiHeadAttention(g, "attn", ln("ln1", x), { heads: 4, causal: true }));
  const hidden = ln("ln2", h).matmul(g.param("mlp.W1", [D, 4 * D], { init: "heNormal" })).add(g.param("mlp.b1", [4 * D])).gelu();
  const y = h.add(hidden.matmul(g.param("mlp.W2", [4 * D, D])).add(g.param("mlp.b2", [D])));
  return { loss: y.square().mean(), outputs: { y } };
});

/** A small CNN: two 3×3 convolutions (the second with stride 2), ReLU, 2×2 max pool, dense; its convolutions and their gradients run as WebAssembly products. */
const cnn = graph("cnn", (g) => {
  const x = g.input("x", [8, 14, 14, 3]);
  const y = g.input("y", [8], "i32");
  const h = x.conv2d(g.param("K1", [3, 3, 3, 12], { init: "heNormal" }), 1, "same").relu().maxPool2d(2);
  const c = h.conv2d(g.param("K2", [3, 3, 12, 16], { init: "heNormal" }), 2, "valid").relu();
  const logits = c.reshape([8, 3 * 3 * 16]).matmul(g.param("W", [3 * 3 * 16, 10], { init: "glorotUniform" })).add(g.param("b", [10]));
  return { loss: nn.softmaxCrossEntropy(logits, y), outputs: { logits } };
});

const feedsOf = (g: Graph, seed: number): Record<string, Float32Array | Int32Array> =>
  Object.fromEntries(
    g.inputs.map((t, i) => {
      const n = t.shape.reduce((a, b) => a * b, 1);
      return [t.name, t.dtype === "i32" ? Int32Array.from({ length: n }, (_, k) => (k * 7 + seed) % 10) : Float32Array.from(randomArray(n, seed + i))];
    }),
  );

/** The bits of a loss, its gradients and the params after `steps` updates, on `threads` (of the pools `startPool` makes, else Node's). */
async function run(
  dir: string,
  feeds: Record<string, Float32Array | Int32Array>,
  threads: number,
  steps: number,
  split: boolean,
  startPool?: PoolStarter,
): Promise<{ trainer: Trainer; bits: string[]; grads: Record<string, Float32Array | Float64Array> }> {
  const trainer = await load(dir, { threads, lr: 0.01, ...(startPool ? { device: (m, d, o) => createHostDevice(m, d, { ...o, startPool }) } : {}) });
  if (!startPool) expect(trainer.device.threads).toBe(split ? Math.min(threads, cores) : 1);
  const hex = (v: ArrayLike<number>) => Buffer.from(Float32Array.from(v).buffer).toString("hex");
  const first = trainer.gradients(feeds);
  const bits = [hex([first.loss]), ...Object.entries(first.grads).map(([n, g]) => `${n} ${hex(g)}`)];
  for (let s = 0; s < steps; s++) bits.push(hex([trainer.step(feeds)]));
  for (const n of trainer.params.names()) bits.push(`${n} ${hex(trainer.params.get(n))}`);
  return { trainer, bits, grads: first.grads };
}

describe.each([
  { g: mlp, steps: 3, split: true },
  { g: block, steps: 1, split: true },
  { g: cnn, steps: 2, split: true },
])("the $g.name on the wasm backend's threads", ({ g, steps, split }) => {
  it("gives bit-identical losses, gradients and params on 1, 2 and 4 threads, and agrees with the interpreter", async () => {
    const dir = compile(g, { outDir: path.join(root, g.name), backend: "wasm", optimizer: { name: "adam", lr: 0.01 } }).outDir;
    const feeds = feedsOf(g, 3);
    const one = await run(dir, feeds, 1, steps, split);
    await one.trainer.close();
    for (const threads of [2, 4]) {
      const r = await run(dir, feeds, threads, steps, split);
      await r.trainer.close();
      expect(r.bits, `${threads} threads`).toEqual(one.bits);
      if (threads === 2) {
        const want = interpret(grad(g), feeds);
        for (const [name, v] of Object.entries(r.grads)) expectAllClose(v, want.grads[name]!.data, { rtol: 2e-3, atol: 2e-5 });
      }
    }
  }, 180_000);
});

describe("products on threads", () => {
  it("are split across the pool (large ones) and the pool is handed back on close()", async () => {
    const dir = path.join(root, "mlp");
    let pool: ThreadPool | undefined;
    const trainer = await load(dir, {
      threads: 2,
      device: (m, d, o) => createHostDevice(m, d, { ...o, startPool: async (units, threads) => (pool = await ThreadPool.create({ units, threads })) }),
    });
    trainer.step(feedsOf(mlp, 5));
    if (cores >= 2) {
      expect(pool!.jobs).toBeGreaterThan(0);
      const jobs = pool!.jobs;
      await trainer.close();
      // after close the products run on the calling thread: no job reaches the closed pool
      trainer.step(feedsOf(mlp, 6));
      expect(pool!.jobs).toBe(jobs);
    } else {
      expect(pool).toBeUndefined();
      await trainer.close();
    }
    expect(trainer.device.threads).toBe(1);
  }, 180_000);

  it("refuses a thread count that is not a positive integer", async () => {
    await expect(load(path.join(root, "mlp"), { threads: 0 })).rejects.toThrow(/threads must be an integer >= 1 \(got 0\)/);
    await expect(load(path.join(root, "mlp"), { threads: 1.5 })).rejects.toThrow(/threads must be an integer >= 1/);
  });
});

/** A transformer-like block of odd sizes (3 × 7 tokens of 24, 2 heads, GELU MLP of 40), so that splits fall inside SIMD groups and row pairs. */
const oddBlock = graph("oddBlock", (g) => {
  const [B, T, D] = [3, 7, 24];
  const x = g.input("x", [B, T, D]);
  const ln = (name: string, t: typeof x) => nn.layerNorm(t, g.param(`${name}.gamma`, [D], { init: 1 }), g.param(`${name}.beta`, [D]));
  const h = x.add(nn.multiHeadAttention(g, "attn", ln("ln1", x), { heads: 2, causal: true }));
  const hidden = ln("ln2", h).matmul(g.param("mlp.W1", [D, 40], { init: "heNormal" })).add(g.param("mlp.b1", [40])).gelu();
  const y = h.add(hidden.matmul(g.param("mlp.W2", [40, D])).add(g.param("mlp.b2", [D])));
  return { loss: y.square().mean(), outputs: { y } };
});

/** A pool on the calling thread that runs every job in `parts` parts, one after another (each as a worker would), and records which exports it split. */
function partsInTurn(parts: number, split: Set<string>): PoolStarter {
  return async (units) => {
    const { table, names } = instantiateUnits(units);
    return {
      threads: parts,
      partsFor: () => parts,
      run: (fn, from, to, p, args = []) => {
        split.add(names[fn]!);
        for (const [a, b] of partition(from, to, p)) if (b > a) table[fn]!(...args, a, b);
      },
      close: async () => {},
    };
  };
}

describe.each([
  { g: mlp, steps: 2 },
  { g: block, steps: 1 },
  { g: oddBlock, steps: 2 },
])("the $g.name with every ranged export split", ({ g, steps }) => {
  it("gives the bits of one thread in 2 parts on worker threads and in 3 and 4 parts, its loops split too", async () => {
    const dir = compile(g, { outDir: path.join(root, `${g.name}-split`), backend: "wasm", optimizer: { name: "adam", lr: 0.01 } }).outDir;
    const feeds = feedsOf(g, 4);
    const one = await run(dir, feeds, 1, steps, false);
    await one.trainer.close();
    let pool: ThreadPool | undefined;
    const workers: PoolStarter = async (units, threads) => (pool = await ThreadPool.create({ units, threads, minWork: 1 }));
    const two = await run(dir, feeds, 2, steps, true, workers);
    await two.trainer.close();
    expect(two.bits, "2 parts on worker threads").toEqual(one.bits);
    if (cores >= 2) expect(pool!.jobs).toBeGreaterThan(0);
    for (const parts of [3, 4]) {
      const split = new Set<string>();
      const r = await run(dir, feeds, parts, steps, true, partsInTurn(parts, split));
      await r.trainer.close();
      expect(r.bits, `${parts} parts`).toEqual(one.bits);
      // products, elementwise loops (k#N) and row loops (k#rN) alike
      const names = [...split];
      expect(names.some((n) => !n.includes("#")), names.join(" ")).toBe(true);
      expect(names.some((n) => /#\d+$/.test(n)), names.join(" ")).toBe(true);
      expect(names.some((n) => /#r\d+$/.test(n)), names.join(" ")).toBe(true);
    }
  }, 180_000);
});
