// The nn composites (softmax, logsumexp, losses, layer norm, gelu, dense)
// against hand computations done in the test, including extreme logits.
import { describe, expect, it } from "vitest";
import * as nn from "../../../compiler/dsl/nn.js";
import { graph } from "../../../compiler/dsl/graph.js";
import { evalOutputs, expectAllClose, randomArray, randomInts } from "../../helpers.js";

/** Rows of a row-major [rows, cols] array. */
const rowsOf = (data: ArrayLike<number>, cols: number): number[][] =>
  Array.from({ length: data.length / cols }, (_, r) => Array.from(data).slice(r * cols, r * cols + cols));

/** softmax of one row, the textbook way (fine for moderate values). */
const softmaxRow = (r: number[]): number[] => {
  const e = r.map(Math.exp);
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

const LOGITS = randomArray(12, 61, -3, 3); // [3, 4]

describe("softmax family", () => {
  it("softmax matches exp / Σexp and its rows sum to 1", () => {
    const out = evalOutputs((g) => ({ p: nn.softmax(g.const(LOGITS, [3, 4], "f64")) }));
    expect(out.p!.shape).toEqual([3, 4]);
    expectAllClose(out.p!, rowsOf(LOGITS, 4).flatMap(softmaxRow), 1e-12);
    for (const row of rowsOf(out.p!.data, 4)) expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });

  it("softmax over axis 0 makes columns sum to 1", () => {
    const out = evalOutputs((g) => ({ p: nn.softmax(g.const(LOGITS, [3, 4], "f64"), 0) }));
    for (let j = 0; j < 4; j++) expect([0, 1, 2].reduce((a, i) => a + out.p!.data[i * 4 + j]!, 0)).toBeCloseTo(1, 12);
  });

  it("softmax is stable for large logits: shifting by 1000 changes nothing", () => {
    const big = [1000, 1001, 1002, -1000, -1001, -1002];
    const out = evalOutputs((g) => ({ p: nn.softmax(g.const(big, [2, 3], "f64")), lp: nn.logSoftmax(g.const(big, [2, 3], "f64")) }));
    expect(Array.from(out.p!.data).every(Number.isFinite)).toBe(true);
    expectAllClose(out.p!, [...softmaxRow([0, 1, 2]), ...softmaxRow([0, -1, -2])], 1e-12);
    expectAllClose(out.lp!, [...softmaxRow([0, 1, 2]), ...softmaxRow([0, -1, -2])].map(Math.log), 1e-12);
  });

  it("logSoftmax is log of softmax", () => {
    const out = evalOutputs((g) => ({ lp: nn.logSoftmax(g.const(LOGITS, [3, 4], "f64")) }));
    expectAllClose(out.lp!, rowsOf(LOGITS, 4).flatMap(softmaxRow).map(Math.log), 1e-12);
  });

  it("logsumexp matches log Σ exp, with and without keepDims, and for large values", () => {
    const out = evalOutputs((g) => {
      const x = g.const(LOGITS, [3, 4], "f64");
      return { l: nn.logsumexp(x), k: nn.logsumexp(x, 0, true), big: nn.logsumexp(g.const([1000, 1000], [2], "f64")) };
    });
    expect(out.l!.shape).toEqual([3]);
    expectAllClose(out.l!, rowsOf(LOGITS, 4).map((r) => Math.log(r.reduce((a, v) => a + Math.exp(v), 0))), 1e-12);
    expect(out.k!.shape).toEqual([1, 4]);
    const cols = [0, 1, 2, 3].map((j) => Math.log([0, 1, 2].reduce((a, i) => a + Math.exp(LOGITS[i * 4 + j]!), 0)));
    expectAllClose(out.k!, cols, 1e-12);
    expectAllClose(out.big!, [1000 + Math.LN2], 1e-12);
  });
});

describe("losses", () => {
  it("mse is the mean of squared differences", () => {
    const p = randomArray(6, 62);
    const t = randomArray(6, 63);
    const out = evalOutputs((g) => ({ l: nn.mse(g.const(p, [2, 3], "f64"), g.const(t, [2, 3], "f64")) }));
    expect(out.l!.shape).toEqual([]);
    expectAllClose(out.l!, [p.reduce((a, v, i) => a + (v - t[i]!) ** 2, 0) / 6], 1e-12);
  });

  it("softmaxCrossEntropy with integer labels is −mean log p[label]", () => {
    const labels = [2, 0, 3];
    const out = evalOutputs((g) => ({ l: nn.softmaxCrossEntropy(g.const(LOGITS, [3, 4], "f64"), g.const(labels, [3], "i32")) }));
    const want = -rowsOf(LOGITS, 4).reduce((a, r, i) => a + Math.log(softmaxRow(r)[labels[i]!]!), 0) / 3;
    expectAllClose(out.l!, [want], 1e-12);
  });

  it("softmaxCrossEntropy of a worked example: uniform logits give log(classes)", () => {
    const out = evalOutputs((g) => ({ l: nn.softmaxCrossEntropy(g.const([5, 5, 5, 5], [1, 4]), g.const([1], [1], "i32")) }));
    expectAllClose(out.l!, [Math.log(4)], 1e-12);
  });

  it("softmaxCrossEntropy stays finite for logits of ±1000", () => {
    const out = evalOutputs((g) => ({ l: nn.softmaxCrossEntropy(g.const([1000, -1000, -1000, 1000], [2, 2], "f64"), g.const([1, 1], [2], "i32")) }));
    // row 0: the label's logit is 2000 below the max, so its loss is 2000; row 1: 0
    expectAllClose(out.l!, [1000], 1e-9);
  });

  it("softmaxCrossEntropy over a random batch", () => {
    const logits = randomArray(5 * 7, 64, -4, 4);
    const labels = Array.from(randomInts(5, 7, 65));
    const out = evalOutputs((g) => ({ l: nn.softmaxCrossEntropy(g.input("z", [5, 7], "f64"), g.input("y", [5], "i32")) }), { z: logits, y: labels });
    const want = -rowsOf(logits, 7).reduce((a, r, i) => a + Math.log(softmaxRow(r)[labels[i]!]!), 0) / 5;
    expectAllClose(out.l!, [want], 1e-12);
  });

  it("sigmoidCrossEntropy is the binary cross-entropy of σ(x)", () => {
    const x = [-2, -0.5, 0, 0.7, 3];
    const y = [0, 1, 1, 0, 1];
    const out = evalOutputs((g) => ({ l: nn.sigmoidCrossEntropy(g.const(x, [5], "f64"), g.const(y, [5], "f64")) }));
    const s = (v: number) => 1 / (1 + Math.exp(-v));
    const want = x.reduce((a, v, i) => a - (y[i]! * Math.log(s(v)) + (1 - y[i]!) * Math.log(1 - s(v))), 0) / 5;
    expectAllClose(out.l!, [want], 1e-12);
  });

  it("sigmoidCrossEntropy is stable for |x| = 1000", () => {
    const out = evalOutputs((g) => ({
      right: nn.sigmoidCrossEntropy(g.const([1000, -1000], [2], "f64"), g.const([1, 0], [2], "f64")),
      wrong: nn.sigmoidCrossEntropy(g.const([1000, -1000], [2], "f64"), g.const([0, 1], [2], "f64")),
    }));
    // confident and right: ~0; confident and wrong: |x| per element
    expectAllClose(out.right!, [0], { atol: 1e-12 });
    expectAllClose(out.wrong!, [1000], 1e-12);
  });

  it("hinge is mean max(0, 1 − y·ŷ)", () => {
    const p = [2, 0.5, -0.3, -2, 1];
    const t = [1, 1, -1, 1, -1];
    const out = evalOutputs((g) => ({ l: nn.hinge(g.const(p, [5]), g.const(t, [5])) }));
    expectAllClose(out.l!, [(0 + 0.5 + 0.7 + 3 + 2) / 5], 1e-6);
  });
});

describe("layers", () => {
  it("layerNorm rows have mean 0 and variance 1", () => {
    const x = randomArray(4 * 16, 66, -5, 10);
    const out = evalOutputs((g) => ({ y: nn.layerNorm(g.const(x, [4, 16], "f64")) }));
    for (const row of rowsOf(out.y!.data, 16)) {
      const mean = row.reduce((a, b) => a + b, 0) / 16;
      const variance = row.reduce((a, b) => a + (b - mean) ** 2, 0) / 16;
      expect(Math.abs(mean)).toBeLessThan(1e-12);
      expect(variance).toBeCloseTo(1, 4); // eps = 1e-5 pulls it just under 1
      expect(variance).toBeLessThan(1);
    }
  });

  it("layerNorm with scale and shift, by hand", () => {
    const x = [1, 2, 3, 4, 10, 10, 10, 14];
    const gamma = [1, 2, 0.5, -1];
    const beta = [0, 1, -1, 0.5];
    const out = evalOutputs((g) => ({ y: nn.layerNorm(g.const(x, [2, 4], "f64"), g.const(gamma, [4], "f64"), g.const(beta, [4], "f64"), 0) }));
    // row 0: mean 2.5, var 1.25; row 1: mean 11, var 3
    const norm = [
      ...[1, 2, 3, 4].map((v) => (v - 2.5) / Math.sqrt(1.25)),
      ...[10, 10, 10, 14].map((v) => (v - 11) / Math.sqrt(3)),
    ];
    expectAllClose(out.y!, norm.map((v, i) => v * gamma[i % 4]! + beta[i % 4]!), 1e-12);
  });

  it("gelu (tanh form) at known points, close to the erf form", () => {
    const xs = [0, 1, -1, 2, -3, 0.5];
    const tanhForm = [0, 0.8411919906082768, -0.15880800939172324, 1.954597694087775, -0.0036373920817729943, 0.34571400982514394];
    const erfForm = [0, 0.8413447460685429, -0.15865525393145707, 1.9544997361036416, -0.00404969409489031, 0.34573123063700656];
    const out = evalOutputs((g) => ({ y: g.const(xs, [6], "f64").gelu() }));
    expectAllClose(out.y!, tanhForm, 1e-12);
    expectAllClose(out.y!, erfForm, { atol: 1e-3 });
  });

  it("linear and activations: x·W + b then the activation", () => {
    const x = [1, -2, 0.5, 3, 0, -1];
    const W = [0.5, -1, 2, 0.25, -0.5, 1];
    const b = [0.1, -0.2];
    const pre = [0, 1].flatMap((i) => [0, 1].map((j) => [0, 1, 2].reduce((a, k) => a + x[i * 3 + k]! * W[k * 2 + j]!, b[j]!)));
    const acts: [nn.Activation, (v: number) => number][] = [
      ["linear", (v) => v],
      ["relu", (v) => Math.max(v, 0)],
      ["tanh", Math.tanh],
      ["sigmoid", (v) => 1 / (1 + Math.exp(-v))],
      ["leakyRelu", (v) => (v > 0 ? v : 0.2 * v)],
      ["softplus", (v) => Math.log1p(Math.exp(v))],
    ];
    for (const [act, f] of acts) {
      const out = evalOutputs((g) => ({ y: nn.linear(g.const(x, [2, 3], "f64"), g.const(W, [3, 2], "f64"), g.const(b, [2], "f64"), act) }));
      expectAllClose(out.y!, pre.map(f), 1e-12);
    }
  });

  it("dense creates its params with Glorot and zeros, and computes relu(x·W + b)", () => {
    const g = graph("dense", (b) => ({ outputs: { y: nn.dense(b, "fc", b.input("x", [2, 3]), 4, { activation: "relu" }) } }));
    expect(g.params.map((p) => [p.name, p.shape, p.init.name, p.trainable])).toEqual([
      ["fc.W", [3, 4], "glorotUniform", true],
      ["fc.b", [4], "zeros", true],
    ]);
    const noBias = graph("nb", (b) => ({ outputs: { y: nn.dense(b, "fc", b.input("x", [2, 3]), 4, { useBias: false }) } }));
    expect(noBias.params.map((p) => p.name)).toEqual(["fc.W"]);

    const x = randomArray(6, 67);
    const W = randomArray(12, 68);
    const bias = randomArray(4, 69);
    const out = evalOutputs((b) => ({ y: nn.dense(b, "fc", b.input("x", [2, 3]), 4, { activation: "relu" }) }), { x, "fc.W": W, "fc.b": bias });
    const want = [0, 1].flatMap((i) => [0, 1, 2, 3].map((j) => Math.max(0, [0, 1, 2].reduce((a, k) => a + x[i * 3 + k]! * W[k * 4 + j]!, bias[j]!))));
    expectAllClose(out.y!, want, 1e-5);
  });

  it("dense over x [2, 3, 4] multiplies one matrix [6, 4] (a plain matmul) and gives [2, 3, 5] = relu(x·W + b) at every position", () => {
    const g = graph("dense3", (b) => ({ outputs: { y: nn.dense(b, "fc", b.input("x", [2, 3, 4]), 5, { activation: "relu" }) } }));
    const products = g.nodes.filter((n) => n.op === "matmul");
    expect(products.map((n) => [n.inputs.map((i) => i.shape), n.shape])).toEqual([[[[6, 4], [4, 5]], [6, 5]]]);
    expect(g.outputs["y"]!.shape).toEqual([2, 3, 5]);
    const x = randomArray(24, 70);
    const W = randomArray(20, 71);
    const bias = randomArray(5, 72);
    const out = evalOutputs((b) => ({ y: nn.dense(b, "fc", b.input("x", [2, 3, 4]), 5, { activation: "relu" }) }), { x, "fc.W": W, "fc.b": bias });
    const want = Array.from({ length: 6 }, (_, r) => [0, 1, 2, 3, 4].map((j) => Math.max(0, [0, 1, 2, 3].reduce((a, k) => a + x[r * 4 + k]! * W[k * 5 + j]!, bias[j]!)))).flat();
    expectAllClose(out.y!, want, 1e-5);
  });
});
