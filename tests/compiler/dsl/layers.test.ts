// The nn layers with structure (scopes, embedding, causal mask, attention):
// values worked by hand in the test, and f64 gradient checks.
import { describe, expect, it } from "vitest";
import * as nn from "../../../compiler/dsl/nn.js";
import { graph } from "../../../compiler/dsl/graph.js";
import { interpret } from "../../../compiler/interp/interpret.js";
import { grad } from "../../../compiler/autodiff/grad.js";
import { hashDraw, keepThreshold } from "../../../compiler/ops/random.js";
import { checkGrads, formatGradReport } from "../../../compiler/autodiff/checkGrads.js";
import { errorMessage, expectAllClose, randomArray } from "../../helpers.js";

describe("g.scope", () => {
  it("prefixes param names, nested scopes joined by dots, and returns what its function returns", () => {
    let got: unknown;
    const m = graph("scoped", (g) => {
      const x = g.input("x", [2, 4]);
      got = g.scope("block1", () => g.scope("attn", () => nn.dense(g, "q", x, 4)));
      const y = g.scope("block2", () => nn.dense(g, "q", x, 4));
      const top = g.param("top", [4]);
      return { loss: y.add(top).sum() };
    });
    expect(m.params.map((p) => p.name)).toEqual(["block1.attn.q.W", "block1.attn.q.b", "block2.q.W", "block2.q.b", "top"]);
    expect((got as { shape: number[] }).shape).toEqual([2, 4]);
  });

  it("ends with its function, even one that throws; names stay unique across scopes", () => {
    const names: string[] = [];
    graph("unwind", (g) => {
      expect(() => g.scope("a", () => { throw new Error("inner"); })).toThrow("inner");
      names.push(g.scope("a", () => g.param("w", [1])).p("param").name, g.param("w", [1]).p("param").name);
      expect(errorMessage(() => g.scope("a", () => g.param("w", [1])))).toMatch(/"a\.w" is already used/);
      return {};
    });
    expect(names).toEqual(["a.w", "w"]);
  });

  it("rejects empty or dotted-at-the-edge scope names, naming the line", () => {
    for (const bad of ["", ".a", "a."]) {
      const msg = errorMessage(() => graph("bad", (g) => g.scope(bad, () => ({}))));
      expect(msg).toMatch(/^scope: a scope name must be a non-empty string/);
      expect(msg).toMatch(/layers\.test\.ts:\d+/);
    }
  });
});

describe("nn.embedding", () => {
  const table = randomArray(5 * 3, 11); // [5, 3]
  const ids = Int32Array.from([4, 0, 4, 2]);

  it("gives row ids[i] of `${name}.embeddings` for every id, shaped [...ids, dim]", () => {
    const m = graph("emb", (g) => {
      const e = nn.embedding(g, "tok", g.input("ids", [2, 2], "i32"), 5, 3);
      return { outputs: { e } };
    });
    expect(m.params.map((p) => [p.name, p.shape])).toEqual([["tok.embeddings", [5, 3]]]);
    const out = interpret(m, { ids }, { "tok.embeddings": table }, { precision: "f64" }).outputs.e!;
    expect(out.shape).toEqual([2, 2, 3]);
    expectAllClose(out, [...ids].flatMap((i) => Array.from(table.slice(i * 3, i * 3 + 3))), 0);
  });

  it("f64 gradient check, element by element", () => {
    const weights = randomArray(4 * 3, 12);
    const m = graph("embGrad", (g) => {
      const e = nn.embedding(g, "tok", g.input("ids", [4], "i32"), 5, 3, { init: Array.from(table) });
      return { loss: e.mul(g.const(Array.from(weights), [4, 3], "f64").cast("f32")).sum() };
    });
    const report = checkGrads(m, { ids }, { maxElements: 100 });
    expect(report.ok, formatGradReport(report)).toBe(true);
    expect(report.params[0]!.checks).toBe(3 + 15); // 3 directions + every element
  });

  it("hand-worked gradient: dL/dtable[r] = Σ over positions with id r of the weight there", () => {
    const weights = randomArray(4 * 3, 12);
    const m = graph("embHand", (g) => {
      const e = nn.embedding(g, "tok", g.input("ids", [4], "i32"), 5, 3);
      return { loss: e.mul(g.const(Array.from(weights), [4, 3], "f64").cast("f32")).sum() };
    });
    const d = interpret(grad(m), { ids }, {}, { precision: "f64" }).grads["tok.embeddings"]!;
    const expected = new Float64Array(15);
    [...ids].forEach((r, pos) => { for (let c = 0; c < 3; c++) expected[r * 3 + c]! += weights[pos * 3 + c]!; });
    expectAllClose(d, expected, 1e-12);
    expect(Array.from(d.data.slice(3, 6))).toEqual([0, 0, 0]); // row 1: never looked up
  });

  it("rejects float ids and a non-positive size, naming the layer", () => {
    expect(errorMessage(() => graph("e", (g) => ({ outputs: { e: nn.embedding(g, "tok", g.input("ids", [2]), 5, 3) } })))).toMatch(
      /^embedding: "tok": ids must be i32 token indices, got f32\[2\].*layers\.test\.ts/,
    );
    expect(errorMessage(() => graph("e", (g) => ({ outputs: { e: nn.embedding(g, "tok", g.input("ids", [2], "i32"), 0, 3) } })))).toMatch(
      /vocab must be a positive integer, got 0/,
    );
  });
});

describe("nn.causalMask", () => {
  it("is a bool [seq, seq] constant, true on and below the diagonal", () => {
    let mask: ReturnType<typeof nn.causalMask> | undefined;
    const m = graph("mask", () => ((mask = nn.causalMask(3)), { outputs: { m: mask } }));
    expect(mask!.dtype).toBe("bool");
    expect(mask!.op).toBe("const");
    expectAllClose(interpret(m, {}).outputs.m!, [1, 0, 0, 1, 1, 0, 1, 1, 1], 0);
  });

  it("refuses to run outside a graph build, and a bad length", () => {
    expect(errorMessage(() => nn.causalMask(3))).toMatch(/^causalMask: must be called inside a graph\(\.\.\.\) build function/);
    expect(errorMessage(() => graph("m", () => ({ outputs: { m: nn.causalMask(0) } })))).toMatch(/seq must be a positive integer, got 0/);
  });
});

/** softmax(q kᵀ/√d [+ causal mask]) v for one head, by hand: q, k, v row-major [T, d]. */
function attendByHand(q: number[][], k: number[][], v: number[][], causal: boolean): number[][] {
  const d = q[0]!.length;
  return q.map((qi, i) => {
    const s = k.map((kj, j) => (causal && j > i ? -Infinity : qi.reduce((a, x, c) => a + x * kj[c]!, 0) / Math.sqrt(d)));
    const m = Math.max(...s);
    const e = s.map((x) => Math.exp(x - m));
    const z = e.reduce((a, b) => a + b, 0);
    return v[0]!.map((_, c) => e.reduce((a, w, j) => a + (w / z) * v[j]![c]!, 0));
  });
}

const rows = (a: ArrayLike<number>, cols: number): number[][] => Array.from({ length: a.length / cols }, (_, r) => Array.from(a).slice(r * cols, (r + 1) * cols));

describe("nn.dotProductAttention", () => {
  for (const causal of [false, true]) {
    it(`matches softmax(q·kᵀ/√d)·v worked by hand (${causal ? "causal" : "no mask"})`, () => {
      const [q, k, v] = [21, 22, 23].map((s) => randomArray(4 * 2, s));
      const out = interpret(
        graph("sdpa", (g) => {
          const [tq, tk, tv] = [q, k, v].map((a) => g.const(Array.from(a!), [4, 2], "f64"));
          return { outputs: { o: nn.dotProductAttention(tq!, tk!, tv!, causal ? { mask: nn.causalMask(4) } : {}) } };
        }),
        {},
      ).outputs.o!;
      expectAllClose(out, attendByHand(rows(q!, 2), rows(k!, 2), rows(v!, 2), causal), 1e-12);
    });
  }

  it("rejects a float mask and mismatched widths", () => {
    expect(errorMessage(() => graph("a", (g) => {
      const t = g.input("t", [3, 2]);
      return { outputs: { o: nn.dotProductAttention(t, t, t, { mask: g.const(0, [3, 3]) }) } };
    }))).toMatch(/^dotProductAttention: mask must be bool/);
    expect(errorMessage(() => graph("a", (g) => ({ outputs: { o: nn.dotProductAttention(g.input("q", [3, 2]), g.input("k", [3, 4]), g.input("v", [3, 4])) } })))).toMatch(
      /q and k must agree in their last axis/,
    );
  });
});

describe("nn.multiHeadAttention", () => {
  const B = 2, T = 3, D = 4;
  const model = (causal: boolean) =>
    graph(`mha${causal ? "Causal" : ""}`, (g) => {
      const x = g.input("x", [B, T, D]);
      const y = g.scope("block1", () => nn.multiHeadAttention(g, "attn", x, { heads: 2, causal }));
      return { loss: y.mul(g.const(Array.from(randomArray(B * T * D, 31)), [B, T, D])).sum(), outputs: { y } };
    });
  const x = randomArray(B * T * D, 32);

  it("names its projections under the scope", () => {
    expect(model(false).params.map((p) => `${p.name}${JSON.stringify(p.shape)}`)).toEqual(
      ["q", "k", "v", "out"].flatMap((n) => [`block1.attn.${n}.W[4,4]`, `block1.attn.${n}.b[4]`]),
    );
  });

  for (const causal of [false, true]) {
    it(`f64 gradient check of every projection (${causal ? "causal" : "not causal"})`, () => {
      const report = checkGrads(model(causal), { x }, { params: nonZeroBiases(model(causal)) });
      expect(report.params).toHaveLength(8);
      expect(report.ok, formatGradReport(report)).toBe(true);
    });
  }

  it("is the heads' hand-computed attention, merged and projected", () => {
    const m = model(true);
    const params = nonZeroBiases(m);
    const y = interpret(m, { x }, params, { precision: "f64" }).outputs.y!;
    const P = (n: string) => Array.from(params[`block1.attn.${n}`] as ArrayLike<number>);
    const proj = (X: number[][], n: string) => X.map((r) => P(`${n}.b`).map((b, o) => b + r.reduce((a, xv, i) => a + xv * P(`${n}.W`)[i * D + o]!, 0)));
    const expected: number[] = [];
    for (let b = 0; b < B; b++) {
      const X = rows(x.slice(b * T * D, (b + 1) * T * D), D);
      const [q, k, v] = ["q", "k", "v"].map((n) => proj(X, n));
      const head = (h: number, M: number[][]) => M.map((r) => r.slice(h * 2, h * 2 + 2));
      const heads = [0, 1].map((h) => attendByHand(head(h, q!), head(h, k!), head(h, v!), true));
      const merged = X.map((_, t) => [...heads[0]![t]!, ...heads[1]![t]!]);
      expected.push(...proj(merged, "out").flat());
    }
    expectAllClose(y, expected, 1e-12);
  });

  it("causal: earlier positions do not see later ones; without the mask they do", () => {
    const later = Float64Array.from(x);
    for (let b = 0; b < B; b++) later[b * T * D + (T - 1) * D] += 1; // change the last position only
    for (const causal of [true, false]) {
      const m = model(causal);
      const [y0, y1] = [x, later].map((feed) => interpret(m, { x: feed }, {}, { precision: "f64" }).outputs.y!.data);
      const firstRowsSame = [0, 1].every((b) => Array.from({ length: (T - 1) * D }, (_, i) => b * T * D + i).every((i) => y0![i] === y1![i]));
      expect(firstRowsSame).toBe(causal);
    }
  });

  it("rejects heads that do not divide the width", () => {
    expect(errorMessage(() => graph("h", (g) => ({ outputs: { y: nn.multiHeadAttention(g, "attn", g.input("x", [1, 3, 4]), { heads: 3 }) } })))).toMatch(
      /^multiHeadAttention: "attn": heads must be a positive integer that divides the width 4, got 3/,
    );
  });
});

describe("nn.cachedMultiHeadAttention", () => {
  const B = 2, T = 3, D = 4, H = 2;
  const full = graph("mhaFull", (g) => ({ outputs: { y: g.scope("block1", () => nn.multiHeadAttention(g, "attn", g.input("x", [B, T, D]), { heads: H, causal: true })) } }));
  const step = graph("mhaStep", (g) => {
    const cache = { keys: g.input("keys", [B, H, T, D / H]), values: g.input("values", [B, H, T, D / H]), index: g.input("index", [1], "i32") };
    const r = g.scope("block1", () => nn.cachedMultiHeadAttention(g, "attn", g.input("x", [B, 1, D]), { heads: H, cache }));
    return { outputs: { y: r.output, keys: r.keys, values: r.values } };
  });
  const x = randomArray(B * T * D, 33);
  const params = nonZeroBiases(full);
  /** Position t of every example: x[:, t, :]. */
  const token = (t: number) => Float64Array.from({ length: B * D }, (_, i) => x[Math.floor(i / D) * T * D + t * D + (i % D)]!);

  it("has multiHeadAttention's params, so one's weights run the other", () => {
    expect(step.params.map((p) => `${p.name}${JSON.stringify(p.shape)}`)).toEqual(full.params.map((p) => `${p.name}${JSON.stringify(p.shape)}`));
  });

  it("step by step gives each row of causal multiHeadAttention and writes that row of the cache", () => {
    const y = interpret(full, { x }, params, { precision: "f64" }).outputs.y!.data;
    // rows at and after the index must not matter: start from noise, not zeros
    let keys = randomArray(B * H * T * (D / H), 34), values = randomArray(B * H * T * (D / H), 35);
    for (let t = 0; t < T; t++) {
      const before = Float64Array.from(keys);
      const out = interpret(step, { x: token(t), keys, values, index: [t] }, params, { precision: "f64" }).outputs;
      const expected = Float64Array.from({ length: B * D }, (_, i) => y[Math.floor(i / D) * T * D + t * D + (i % D)]!);
      expectAllClose(out.y!.data, expected, 1e-12);
      keys = Float64Array.from(out.keys!.data);
      values = Float64Array.from(out.values!.data);
      // only row t of each example and head changed
      const changed = [...keys.keys()].filter((i) => keys[i] !== before[i]).map((i) => Math.floor(i / (D / H)) % T);
      expect(changed.length).toBe(B * H * (D / H));
      expect(new Set(changed)).toEqual(new Set([t]));
    }
  });

  it("rejects more than one token, a cache of the wrong shape and a float index, naming the layer", () => {
    const build = (xShape: number[], cacheShape: number[], indexType: "i32" | "f32") => () =>
      graph("bad", (g) => {
        const cache = { keys: g.input("k", cacheShape), values: g.input("v", cacheShape), index: g.input("i", [1], indexType) };
        return { outputs: { y: nn.cachedMultiHeadAttention(g, "attn", g.input("x", xShape), { heads: H, cache }).output } };
      });
    expect(errorMessage(build([B, 2, D], [B, H, T, 2], "i32"))).toMatch(/^cachedMultiHeadAttention: "attn": x must be one token per example \[batch, 1, width\], got \[2,2,4\]/);
    expect(errorMessage(build([B, 1, D], [B, H, T, 4], "i32"))).toMatch(/^cachedMultiHeadAttention: "attn": cache keys and values must be float \[batch, heads, length, width \/ heads\] = \[2,2,3,2\], got f32\[2,2,3,4\]/);
    expect(errorMessage(build([B, 1, D], [B, H, T, 2], "f32"))).toMatch(/^cachedMultiHeadAttention: "attn": cache index must be i32\[1\]/);
  });
});

/** Every param from its initializer, but biases random (zeros would hide a wrong bias gradient). */
function nonZeroBiases(m: ReturnType<typeof graph>): Record<string, Float64Array> {
  return Object.fromEntries(
    m.params.map((p, i) => [p.name, p.shape.length === 1 ? randomArray(p.shape, 40 + i, -0.5, 0.5) : randomArray(p.shape, 50 + i, -0.7, 0.7)]),
  );
}

describe("nn.dropout", () => {
  const R = 200, C = 100;
  /** dropout(ones [R, C], rate) in the interpreter, at a step, training or not. */
  const run = (rate: number, options: { training?: boolean; step?: number } = {}, seed?: number) =>
    interpret(
      graph("drop", (g) => {
        const x = g.input("x", [R, C]);
        return { outputs: { a: nn.dropout(x, rate, seed === undefined ? {} : { seed }), b: nn.dropout(x, rate) } };
      }),
      { x: new Float64Array(R * C).fill(1) },
      {},
      { precision: "f64", ...options },
    ).outputs;

  it("in the training step zeroes about `rate` of the elements and scales the rest by 1/(1 − rate)", () => {
    const a = run(0.3).a!.data;
    expect(new Set(a)).toEqual(new Set([0, 1 / 0.7]));
    const dropped = a.filter((v) => v === 0).length / a.length;
    expect(Math.abs(dropped - 0.3)).toBeLessThan(0.015); // 20000 draws: σ ≈ 0.0032
    // neighbours are independent: both kept with probability 0.7² = 0.49
    let both = 0;
    for (let i = 0; i + 1 < a.length; i += 2) both += a[i] !== 0 && a[i + 1] !== 0 ? 1 : 0;
    expect(Math.abs(both / (a.length / 2) - 0.49)).toBeLessThan(0.025);
  });

  it("is the identity outside the training step, and for rate 0", () => {
    const out = run(0.3, { training: false });
    expect(Array.from(out.a!.data).every((v) => v === 1)).toBe(true);
    expect(graph("zero", (g) => {
      const x = g.input("x", [2]);
      expect(nn.dropout(x, 0)).toBe(x);
      return {};
    }).name).toBe("zero");
  });

  it("draws a new mask each step, the same mask for the same step, and a different one per call", () => {
    const s1 = run(0.3, { step: 1 });
    const again = run(0.3, { step: 1 });
    const s2 = run(0.3, { step: 2 });
    expect(Array.from(again.a!.data)).toEqual(Array.from(s1.a!.data));
    const differ = (x: ArrayLike<number>, y: ArrayLike<number>) => Array.from(x).filter((v, i) => (v === 0) !== (y[i] === 0)).length / x.length;
    // two independent masks disagree with probability 2 · 0.3 · 0.7 = 0.42
    expect(Math.abs(differ(s1.a!.data, s2.a!.data) - 0.42)).toBeLessThan(0.03);
    expect(Math.abs(differ(s1.a!.data, s1.b!.data) - 0.42)).toBeLessThan(0.03);
  });

  it("keeps element i exactly when hash(seed, step, i) < floor((1 − rate) · P), the documented draw", () => {
    // values of the hash computed separately with exact integers
    expect(hashDraw(0, 0, 0)).toBe(10139058);
    expect(hashDraw(7, 1, 3)).toBe(34239653);
    expect(hashDraw(7, 2, 3)).toBe(33070586);
    // with the run's seed: the same rounds after (seed·40499 + run·69069 + step) mod P, checked in exact BigInt arithmetic
    const exact = (seed: bigint, step: bigint, i: bigint, run: bigint): number => {
      const P = 67108859n;
      let x = (seed * 40499n + run * 69069n + step) % P;
      x = (x * x + (1013904223n % P)) % P;
      x = (x * 48271n + i) % P;
      for (const c of [2654435761n, 1442695041n, 2246822519n]) x = (x * x + (c % P)) % P;
      return Number(x);
    };
    expect(hashDraw(7, 1, 3, 0)).toBe(exact(7n, 1n, 3n, 0n));
    expect(hashDraw(7, 1, 3, 9)).toBe(exact(7n, 1n, 3n, 9n));
    expect(hashDraw(123456, 77, 4096, 2 ** 31 - 1)).toBe(exact(123456n, 77n, 4096n, 2n ** 31n - 1n));
    expect(hashDraw(7, 1, 3, 9)).not.toBe(hashDraw(7, 1, 3, 0));
    const a = run(0.3, { step: 5 }, 7).a!.data;
    const expected = Array.from({ length: R * C }, (_, i) => (hashDraw(7, 5, i) < keepThreshold(0.7) ? 1 / 0.7 : 0));
    expect(Array.from(a)).toEqual(expected);
  });

  it("rejects a rate outside [0, 1) and an integer tensor, naming the line", () => {
    expect(errorMessage(() => graph("d", (g) => ({ outputs: { y: nn.dropout(g.input("x", [2]), 1) } })))).toMatch(/^dropout: rate must be in \[0, 1\), got 1 .*layers\.test\.ts/);
    expect(errorMessage(() => graph("d", (g) => ({ outputs: { y: nn.dropout(g.input("x", [2], "i32"), 0.5) } })))).toMatch(/^dropout: x must be a float tensor, got i32\[2\]/);
  });

  it("f64 gradient check with the step's fixed mask, through attention with dropout too", () => {
    const m = graph("dropGrad", (g) => {
      const x = g.input("x", [2, 3, 4]);
      const h = nn.dropout(nn.dense(g, "d", x, 4, { activation: "tanh" }), 0.25);
      const y = nn.multiHeadAttention(g, "attn", h, { heads: 2, causal: true, dropout: 0.2 });
      return { loss: y.mul(g.const(Array.from(randomArray(24, 61)), [2, 3, 4])).sum() };
    });
    const report = checkGrads(m, { x: randomArray(24, 62) }, { params: nonZeroBiases(m) });
    expect(report.ok, formatGradReport(report)).toBe(true);
  });
});

describe("nn.batchNorm", () => {
  const N = 4, C = 3;
  const x = randomArray(N * 2 * C, 71, -2, 2); // [4, 2, 3]: statistics over axes 0 and 1
  const model = () =>
    graph("bn", (g) => {
      const input = g.input("x", [N, 2, C]);
      const y = nn.batchNorm(g, "bn", input, { momentum: 0.8, eps: 0.01 });
      return { loss: y.tanh().mul(g.const(Array.from(randomArray(N * 2 * C, 72)), [N, 2, C])).sum(), outputs: { y } };
    });
  const params = {
    "bn.gamma": [1.5, -0.5, 2],
    "bn.beta": [0.1, 0.2, -0.3],
    "bn.movingMean": [0.5, -1, 0.25],
    "bn.movingVariance": [2, 0.5, 1],
  };
  /** Per channel c: the values x[..., c]. */
  const channel = (c: number) => Array.from(x).filter((_, i) => i % C === c);

  it("declares gamma, beta and the non-trainable moving statistics", () => {
    expect(model().params.map((p) => [p.name, p.trainable])).toEqual([
      ["bn.gamma", true], ["bn.beta", true], ["bn.movingMean", false], ["bn.movingVariance", false],
    ]);
  });

  it("training step: the batch's mean and biased variance per channel; the update is the moving average; forward uses the moving statistics", () => {
    const m = model();
    const train = interpret(m, { x }, params, { precision: "f64" });
    const infer = interpret(m, { x }, params, { precision: "f64", training: false });
    const stats = [0, 1, 2].map((c) => {
      const v = channel(c);
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      return { mean, variance: v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length };
    });
    const expect3 = (stat: (c: number, v: number) => number) => Array.from(x, (v, i) => stat(i % C, v));
    expectAllClose(train.outputs.y!, expect3((c, v) => ((v - stats[c]!.mean) / Math.sqrt(stats[c]!.variance + 0.01)) * params["bn.gamma"][c]! + params["bn.beta"][c]!), 1e-12);
    expectAllClose(infer.outputs.y!, expect3((c, v) => ((v - params["bn.movingMean"][c]!) / Math.sqrt(params["bn.movingVariance"][c]! + 0.01)) * params["bn.gamma"][c]! + params["bn.beta"][c]!), 1e-12);
    expectAllClose(train.updates["bn.movingMean"]!, stats.map((s, c) => 0.8 * params["bn.movingMean"][c]! + 0.2 * s.mean), 1e-12);
    expectAllClose(train.updates["bn.movingVariance"]!, stats.map((s, c) => 0.8 * params["bn.movingVariance"][c]! + 0.2 * s.variance), 1e-12);
  });

  it("f64 gradient check in training mode (through the batch statistics), for gamma, beta and the input", () => {
    const report = checkGrads(model(), { x }, { params, wrt: ["bn.gamma", "bn.beta", "x"] });
    expect(report.params).toHaveLength(3);
    expect(report.ok, formatGradReport(report)).toBe(true);
  });

  it("rejects a bad momentum and a rank-1 input; assign refuses trainable params and mismatched values", () => {
    expect(errorMessage(() => graph("b", (g) => ({ outputs: { y: nn.batchNorm(g, "bn", g.input("x", [2, 3]), { momentum: 1 }) } })))).toMatch(/^batchNorm: "bn": momentum must be in \[0, 1\), got 1/);
    expect(errorMessage(() => graph("b", (g) => ({ outputs: { y: nn.batchNorm(g, "bn", g.input("x", [3])) } })))).toMatch(/rank ≥ 2, got f32\[3\]/);
    expect(errorMessage(() => graph("a", (g) => { g.assign(g.param("w", [2]), g.const(0, [2])); return {}; }))).toMatch(/^assign: "w" is trainable/);
    expect(errorMessage(() => graph("a", (g) => { g.assign(g.param("w", [2], { trainable: false }), g.const(0, [3])); return {}; }))).toMatch(/^assign: "w" is f32\[2\], the value is f32\[3\]/);
    expect(errorMessage(() => graph("a", (g) => { g.assign(g.input("w", [2]), g.const(0, [2])); return {}; }))).toMatch(/^assign: the target must be a param of this graph/);
  });
});
