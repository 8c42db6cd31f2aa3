// Every op's emitted kernel against the reference interpreter, on random
// inputs, through a compiled bundle's forward kernels on every backend (f32 and f64 arenas where the backend has f64).
import { afterAll, describe, expect, it } from "vitest";
import { graph } from "../../../compiler/dsl/graph.js";
import type { GraphBuilder } from "../../../compiler/dsl/graph.js";
import type { Tensor } from "../../../compiler/ir/node.js";
import type { Graph } from "../../../compiler/ir/graph.js";
import { interpret } from "../../../compiler/interp/interpret.js";
import { ELEMENTWISE_OPS } from "../../../compiler/ops/elementwise.js";
import type { REDUCE } from "../../../compiler/ops/reduce.js";
import type { MOVEMENT } from "../../../compiler/ops/movement.js";
import type { MATMUL } from "../../../compiler/ops/matmul.js";
import type { INDEXING } from "../../../compiler/ops/indexing.js";
import type { CONV } from "../../../compiler/ops/conv.js";
import { concat } from "../../../compiler/dsl/functions.js";
import { expectAllClose, randomArray, randomInts } from "../../helpers.js";
import { BACKENDS, cleanupBundles, compileAndLoad } from "../harness/harness.js";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { compile } from "../../../compiler/compile.js";
import { load } from "../../../runtime/load.js";
import type { BackendName } from "../../../compiler/backends/index.js";

afterAll(cleanupBundles);

/** The operands every case draws from. */
interface Operands {
  readonly g: GraphBuilder;
  /** f32 [2,3,4] in [-2, 2), and positive in [0.1, 3). */
  readonly a: Tensor;
  readonly pos: Tensor;
  /** f32 [3,1] and a scalar input, for broadcasting. */
  readonly b: Tensor;
  readonly s: Tensor;
  /** i32 [2,3,4] and [4] in [-3, 3]. */
  readonly ia: Tensor;
  readonly ib: Tensor;
  /** bool [2,3,4]: a > b. */
  readonly c: Tensor;
  /** f32 [3,4] with ties (small integers). */
  readonly t: Tensor;
  /** i32 [2,3] row indices in [0, 4); an NHWC image [2,5,5,3] and a filter [3,3,3,4]. */
  readonly idx: Tensor;
  readonly img: Tensor;
  readonly filt: Tensor;
  /** An image [2,13,11,5] and a filter [3,3,5,6]: convolutions large enough for the wasm backend's products in f32. */
  readonly big: Tensor;
  readonly bigFilt: Tensor;
}

const FEEDS: Record<string, ArrayLike<number>> = {
  a: randomArray(24, 1, -2, 2),
  pos: randomArray(24, 2, 0.1, 3),
  b: randomArray(3, 3, -1, 1),
  s: [0.75],
  ia: Array.from(randomInts(24, 7, 4), (v) => v - 3),
  ib: Array.from(randomInts(4, 7, 5), (v) => v - 3),
  t: Array.from(randomInts(12, 3, 6)),
  idx: Array.from(randomInts(6, 4, 8)),
  img: randomArray(150, 9, -1, 1),
  filt: randomArray(108, 10, -0.5, 0.5),
  big: randomArray(2 * 13 * 11 * 5, 11, -1, 1),
  bigFilt: randomArray(3 * 3 * 5 * 6, 12, -0.5, 0.5),
};

type ElementwiseOp = (typeof ELEMENTWISE_OPS)[number];
type Case = (x: Operands) => Tensor[];

/** One row per elementwise op; the mapped type makes a new op without a case a type error. */
const ELEMENTWISE_CASES: { readonly [K in ElementwiseOp]: Case } = {
  neg: (x) => [x.a.neg(), x.ia.neg()],
  exp: (x) => [x.a.exp()],
  log: (x) => [x.pos.log()],
  sqrt: (x) => [x.pos.sqrt()],
  rsqrt: (x) => [x.pos.rsqrt()],
  abs: (x) => [x.a.abs(), x.ia.abs()],
  sign: (x) => [x.a.sign(), x.ia.sign()],
  sin: (x) => [x.a.sin()],
  cos: (x) => [x.a.cos()],
  tanh: (x) => [x.a.tanh()],
  sigmoid: (x) => [x.a.mul(20).sigmoid()],
  relu: (x) => [x.a.relu()],
  softplus: (x) => [x.a.mul(30).softplus()],
  pow: (x) => [x.pos.pow(0.5), x.a.pow(2), x.a.pow(3), x.pos.pow(-1.5)],
  leakyRelu: (x) => [x.a.leakyRelu(0.1)],
  cast: (x) => [x.a.mul(2.5).cast("i32"), round0(x.a).cast("bool"), x.ia.cast("f32"), x.c.cast("f32"), x.a.cast("f64")],
  // an output that is an alias of an input: its slot is the input's buffer
  stopGradient: (x) => [x.a.stopGradient(), x.a.stopGradient().add(1)],
  add: (x) => [x.a.add(x.b), x.a.add(0.5), x.s.add(x.a), x.ia.add(x.ib), x.b.add(x.a)],
  sub: (x) => [x.a.sub(x.b), x.b.sub(x.a), x.ia.sub(x.ib)],
  mul: (x) => [x.a.mul(x.b), x.a.mul(x.s), x.ia.mul(x.ib)],
  div: (x) => [x.a.div(x.b.abs().add(0.5)), x.ia.div(x.ib.abs().add(1))],
  maximum: (x) => [x.a.maximum(x.b), x.ia.maximum(x.ib)],
  minimum: (x) => [x.a.minimum(x.b), x.ia.minimum(x.ib)],
  greater: (x) => [x.a.greater(x.b), x.ia.greater(x.ib)],
  greaterEqual: (x) => [x.ia.greaterEqual(x.ib)],
  less: (x) => [x.a.less(x.s), x.ia.less(x.ib)],
  lessEqual: (x) => [x.ia.lessEqual(x.ib)],
  equal: (x) => [x.ia.equal(x.ib), x.t.equal(1)],
  where: (x) => [x.c.where(x.a, x.b), x.c.where(x.a, 0), x.c.where(-1, 2)],
};

/** Reductions, movement and matmul (ops with a `lower`), one row per op. */
const LOWERED_CASES: { readonly [K in keyof typeof REDUCE | keyof typeof MOVEMENT | keyof typeof MATMUL]: Case } = {
  sum: (x) => [x.a.sum(), x.a.sum(0), x.a.sum([0, 2], true), x.a.sum(-1), x.ia.sum(1)],
  max: (x) => [x.a.max(), x.a.max(1), x.a.max([0, 2], true), x.ia.max(-1)],
  min: (x) => [x.a.min(), x.a.min(2), x.t.min(0, true)],
  argmax: (x) => [x.t.argmax(0), x.t.argmax(1, true), x.a.argmax(-1), x.a.argmax(1), x.g.const([1, NaN, 3, NaN, 2, 2, -Infinity, Infinity], [2, 4]).argmax(-1)],
  reshape: (x) => [x.a.reshape([6, 4]), x.a.reshape([24]).add(1)],
  transpose: (x) => [x.a.transpose(), x.a.transpose([1, 0, 2]), x.a.transpose([0, 2, 1]), x.c.transpose()],
  broadcastTo: (x) => [x.b.broadcastTo([2, 3, 4]), x.s.broadcastTo([3, 2]), x.ib.broadcastTo([2, 4])],
  matmul: (x) => {
    const m = x.a.reshape([6, 4]);
    const w = x.pos.reshape([4, 6]);
    const batched = x.a.matmul(x.pos.reshape([2, 4, 3]));
    // batch axes broadcast: [2,1,3,4]·[3,4,2] → [2,3,3,2]
    const bc = x.a.reshape([2, 1, 3, 4]).matmul(x.pos.reshape([3, 4, 2]));
    // m = 6: a block of four rows and two single rows; m = 8: blocks only; m = 3: single rows only
    return [m.matmul(w), batched, bc, x.a.matmul(x.pos.reshape([4, 6])), x.a.reshape([8, 3]).matmul(x.pos.reshape([3, 8]))];
  },
};

/** Indexing, convolution and pooling, one row per op; backward primitives are applied directly. */
const INDEXING_CONV_CASES: { readonly [K in keyof typeof INDEXING | keyof typeof CONV]: Case } = {
  slice: (x) => [x.a.slice([0, 1, 1], [2, 2, -1]), x.ia.slice([1, 0, 0])],
  concat: (x) => [concat([x.a, x.pos], 1), concat([x.b, x.b.mul(2), x.b], 0), concat([x.ia, x.ia], -1)],
  pad: (x) => [x.a.pad([[1, 0], [0, 2], [1, 1]], 0.5), x.ia.pad([[0, 1], [0, 0], [2, 0]])],
  gather: (x) => [x.a.reshape([4, 6]).gather(x.idx), x.ia.reshape([4, 6]).gather(x.idx)],
  // duplicate indices add up
  scatterAdd: (x) => [x.a.ctx.apply("scatterAdd", [x.a, x.idx], { rows: 5 })],
  oneHot: (x) => [x.idx.oneHot(4), x.idx.oneHot(3)],
  conv2d: (x) => [
    x.img.conv2d(x.filt), x.img.conv2d(x.filt, 2, "same"), x.img.conv2d(x.filt, [1, 2], "same"),
    x.big.conv2d(x.bigFilt, 1, "same"), x.big.conv2d(x.bigFilt, [1, 2], "valid"), x.big.conv2d(x.bigFilt, [2, 1], "same"),
  ],
  conv2dBackpropInput: (x) => {
    const dy = x.img.conv2d(x.filt, 2, "same");
    const bigDy = x.big.conv2d(x.bigFilt, 2, "same");
    return [
      x.a.ctx.apply("conv2dBackpropInput", [dy, x.filt], { inputShape: [2, 5, 5, 3], strides: [2, 2], padding: "same" }),
      x.a.ctx.apply("conv2dBackpropInput", [bigDy, x.bigFilt], { inputShape: [2, 13, 11, 5], strides: [2, 2], padding: "same" }),
    ];
  },
  conv2dBackpropFilter: (x) => {
    const dy = x.img.conv2d(x.filt, 1, "valid");
    const bigDy = x.big.conv2d(x.bigFilt, [2, 1], "same");
    return [
      x.a.ctx.apply("conv2dBackpropFilter", [x.img, dy], { filterShape: [3, 3, 3, 4], strides: [1, 1], padding: "valid" }),
      x.a.ctx.apply("conv2dBackpropFilter", [x.big, bigDy], { filterShape: [3, 3, 5, 6], strides: [2, 1], padding: "same" }),
    ];
  },
  // ties (small integers) check that the first maximum wins
  maxPool2d: (x) => [x.img.maxPool2d(2), x.img.maxPool2d(3, 2, "same"), x.img.mul(2).cast("i32").cast("f32").maxPool2d(2, 1)],
  maxPool2dGrad: (x) => {
    const ties = x.img.mul(2).cast("i32").cast("f32");
    const dy = ties.maxPool2d(3, 2, "same").add(1);
    return [x.a.ctx.apply("maxPool2dGrad", [ties, dy], { size: [3, 3], strides: [2, 2], padding: "same" })];
  },
  avgPool2d: (x) => [x.img.avgPool2d(2), x.img.avgPool2d(3, 2, "same")],
  avgPool2dGrad: (x) => {
    const dy = x.img.avgPool2d(3, 2, "same");
    return [x.a.ctx.apply("avgPool2dGrad", [dy], { inputShape: [2, 5, 5, 3], size: [3, 3], strides: [2, 2], padding: "same" })];
  },
};

/** Values with |v| <= 0.5 snapped to exactly zero, so a cast to bool sees both cases. */
function round0(t: Tensor): Tensor {
  return t.abs().greater(0.5).where(t, 0);
}

/** One graph whose outputs are every case of `table`, named `op_k`. */
function caseGraph(name: string, table: Readonly<Record<string, Case>>): Graph {
  return graph(name, (g) => {
    const x: Operands = {
      g,
      a: g.input("a", [2, 3, 4]),
      pos: g.input("pos", [2, 3, 4]),
      b: g.input("b", [3, 1]),
      s: g.input("s", []),
      ia: g.input("ia", [2, 3, 4], "i32"),
      ib: g.input("ib", [4], "i32"),
      t: g.input("t", [3, 4]),
      idx: g.input("idx", [2, 3], "i32"),
      img: g.input("img", [2, 5, 5, 3]),
      filt: g.input("filt", [3, 3, 3, 4]),
      big: g.input("big", [2, 13, 11, 5]),
      bigFilt: g.input("bigFilt", [3, 3, 5, 6]),
      get c() {
        return this.a.greater(this.b);
      },
    };
    const outputs: Record<string, Tensor> = {};
    for (const [op, make] of Object.entries(table)) make(x).forEach((t, k) => (outputs[`${op}_${k}`] = t));
    return { outputs };
  });
}

async function checkAgainstInterpreter(g: Graph, precision: "f32" | "f64", backend: BackendName): Promise<number> {
  const b = await compileAndLoad(g, { dtype: precision, backend });
  for (const [name, v] of Object.entries(FEEDS)) b.input(name, v);
  b.forward();
  const expected = interpret(g, FEEDS, {}, { precision }).outputs;
  const tol = precision === "f64" ? { rtol: 1e-12, atol: 1e-12 } : { rtol: 2e-6, atol: 1e-6 };
  for (const [name, want] of Object.entries(expected)) {
    const got = b.output(name);
    // matmul accumulates in the arena's precision; the interpreter rounds once at the end
    const t = /^(matmul|conv)/.test(name) && precision === "f32" ? { rtol: 1e-5, atol: 1e-5 } : tol;
    try {
      expectAllClose(got, want.data, t);
    } catch (e) {
      throw new Error(`output ${name}: ${(e as Error).message}`);
    }
  }
  return Object.keys(expected).length;
}

it("covers every elementwise op with a case", () => {
  expect(Object.keys(ELEMENTWISE_CASES).sort()).toEqual([...ELEMENTWISE_OPS].sort());
});

describe.each(BACKENDS)("emitted kernels agree with the interpreter (%s backend)", (backend) => {
  // WGSL has no float64: the gpu backend refuses f64 compiles (checked below)
  for (const precision of backend === "gpu" ? (["f32"] as const) : (["f32", "f64"] as const)) {
    it(`elementwise ops (expr), broadcast and literal operands, ${precision}`, async () => {
      const n = await checkAgainstInterpreter(caseGraph(`elementwise_${precision}`, ELEMENTWISE_CASES), precision, backend);
      expect(n).toBeGreaterThan(50);
    });

    it(`reductions, movement and matmul (lower), ${precision}`, async () => {
      const n = await checkAgainstInterpreter(caseGraph(`lowered_${precision}`, LOWERED_CASES), precision, backend);
      expect(n).toBeGreaterThan(25);
    });

    it(`indexing, convolution and pooling (lower), ${precision}`, async () => {
      const n = await checkAgainstInterpreter(caseGraph(`indexing_${precision}`, INDEXING_CONV_CASES), precision, backend);
      expect(n).toBeGreaterThan(20);
    });
  }
});

// The same cases through the runtime's gpu device on WebGPU (Dawn on this machine's llvmpipe): the WGSL gpu.js makes of each kernel, run on the device
describe("emitted kernels agree with the interpreter on WebGPU (the gpu device, Dawn)", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "gradc-ops-gpu-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, table, least] of [["elementwise", ELEMENTWISE_CASES, 50], ["lowered", LOWERED_CASES, 25], ["indexing", INDEXING_CONV_CASES, 20]] as const) {
    it(`${name} ops, f32`, async () => {
      const g = caseGraph(`${name}_dawn`, table);
      compile(g, { backend: "gpu", outDir: path.join(dir, name) });
      const t = await load(path.join(dir, name));
      try {
        expect(t.device.adapter).toMatch(/^WebGPU: /);
        const got = await t.predictAsync(Object.fromEntries(Object.entries(FEEDS).map(([k, v]) => [k, Array.from(v)])));
        const expected = interpret(g, FEEDS, {}, { precision: "f32" }).outputs;
        expect(Object.keys(expected).length).toBeGreaterThan(least);
        for (const [out, want] of Object.entries(expected)) {
          const tol = /^(matmul|conv)/.test(out) ? { rtol: 1e-5, atol: 1e-5 } : { rtol: 2e-6, atol: 1e-6 };
          try {
            expectAllClose(got[out], want.data, tol);
          } catch (e) {
            throw new Error(`output ${out}: ${(e as Error).message}`);
          }
        }
      } finally {
        await t.close();
      }
    }, 240_000);
  }
});

it("the gpu backend refuses f64 with an error that names the backend and the alternatives", async () => {
  await expect(compileAndLoad(caseGraph("refused_f64", { neg: (x) => [x.a.neg()] }), { dtype: "f64", backend: "gpu" })).rejects.toThrow(
    /backend "gpu" computes in float32 only; dtype "f64" needs backend "ts" or "wasm"/,
  );
});
