// Generation's parts: tokenizing a prompt, drawing a token (temperature,
// top-k, seeded), the manifest's generate entry checked on load, and the
// compile-time checks of a generate config.
import { afterAll, describe, expect, it } from "vitest";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { compile } from "../../compiler/compile.js";
import { graph } from "../../compiler/dsl/graph.js";
import { load, readManifest } from "../../runtime/load.js";
import { checkGenerateSpec, sampleToken, tokenize } from "../../runtime/generate.js";
import { cleanupBundles, tempBundleDir } from "../compiler/harness/harness.js";

afterAll(cleanupBundles);

describe("tokenize", () => {
  it("matches the longest token first and names a character outside the vocabulary", () => {
    expect(tokenize("abab", ["a", "b", "ab"])).toEqual([2, 2]);
    expect(tokenize("aab", ["a", "b", "ab"])).toEqual([0, 2]);
    expect(() => tokenize("abz", ["a", "b"])).toThrow(/character "z" at position 2 is not in the model's vocabulary/);
  });
});

describe("sampleToken", () => {
  const logits = [0, 2, 1, -1];
  const order = new Int32Array(4);
  const probs = new Float64Array(4);
  it("takes the argmax at temperature 0 and with top-k 1", () => {
    expect(sampleToken(logits, 0, 4, 0, 4, 0.99, order, probs)).toBe(1);
    expect(sampleToken(logits, 0, 4, 1, 1, 0.99, order, probs)).toBe(1);
  });

  it("draws from softmax(logits / T) by the uniform number given", () => {
    // probabilities ∝ e^0, e^2, e^1, e^−1, in order of size: 1 (0.6439), 2 (0.2369), 0 (0.0871), 3 (0.0321)
    const z = [1, Math.exp(2), Math.exp(1), Math.exp(-1)];
    const p = z.map((v) => v / z.reduce((a, b) => a + b));
    expect(sampleToken(logits, 0, 4, 1, 4, p[1]! - 1e-9, order, probs)).toBe(1);
    expect(sampleToken(logits, 0, 4, 1, 4, p[1]! + 1e-9, order, probs)).toBe(2);
    expect(sampleToken(logits, 0, 4, 1, 4, 1 - p[3]! + 1e-9, order, probs)).toBe(3);
    // top-k 2 renormalizes over tokens 1 and 2: P(1) = e²/(e² + e)
    const p1 = Math.exp(2) / (Math.exp(2) + Math.exp(1));
    expect(sampleToken(logits, 0, 4, 1, 2, p1 + 1e-9, order, probs)).toBe(2);
    expect(sampleToken(logits, 0, 4, 1, 2, 0.999999, order, probs)).toBe(2);
    // reads from an offset (the last position's row)
    expect(sampleToken([9, 9, ...logits], 2, 4, 0, 4, 0.5, order, probs)).toBe(1);
  });
});

describe("the generate entry", () => {
  const spec = { bundle: "generate", input: "ids", output: "logits", context: 4, vocab: ["a", "b"] };
  it("accepts a well-formed entry and refuses bad fields by name", () => {
    expect(() => checkGenerateSpec(spec, "m.json")).not.toThrow();
    expect(() => checkGenerateSpec({ ...spec, bundle: "../x" }, "m.json")).toThrow(/m\.json: generate\.bundle must be a plain folder name/);
    expect(() => checkGenerateSpec({ ...spec, context: 0 }, "m.json")).toThrow(/generate\.context must be an integer > 0/);
    expect(() => checkGenerateSpec({ ...spec, vocab: ["a", "a"] }, "m.json")).toThrow(/generate\.vocab\[1\] repeats the token "a"/);
    expect(() => checkGenerateSpec({ ...spec, vocab: ["a", 3] }, "m.json")).toThrow(/generate\.vocab\[1\] must be a non-empty string/);
    expect(() => checkGenerateSpec({ ...spec, start: "c" }, "m.json")).toThrow(/generate\.start must be a token of the vocabulary/);
  });

  /** A bigram model: logits = table[ids], trained on no data (its init decides what comes next). */
  const bigram = (name: string, batch: number, withLoss: boolean, width = 3) =>
    graph(name, (g) => {
      const ids = g.input("ids", [batch, 4], "i32");
      const table = g.param("table", [3, width], { init: [0, 5, 0, 0, 0, 5, 5, 0, 0].slice(0, 3 * width) });
      const logits = table.gather(ids);
      if (!withLoss) return { outputs: { logits } };
      const y = g.input("y", [batch, 4], "i32");
      return { loss: logits.reshape([batch * 4, width]).sub(0).sum().add(y.cast("f32").sum().mul(0)), outputs: { logits } };
    });

  it("compiles the batch-1 bundle and generates by the shared weights; the manifest is checked on load", async () => {
    const dir = tempBundleDir("gen");
    compile(bigram("bi", 2, true), { outDir: dir, generate: { graph: bigram("bi1", 1, false), vocab: ["a", "b", "c"], start: "a" } });
    const t = await load(dir);
    // a → b → c → a at temperature 0
    expect(t.generate({ prompt: "a", tokens: 5, temperature: 0 }).text).toBe("abcabc");
    expect(t.generate({ tokens: 3, temperature: 0 }).generated).toBe("bca");
    t.params.set("table", [0, 0, 5, 5, 0, 0, 0, 5, 0]);
    expect(t.generate({ prompt: "a", tokens: 3, temperature: 0 }).text).toBe("acba");
    // the context slides: 9 tokens through a window of 4
    expect(t.generate({ prompt: "a", tokens: 8, temperature: 0 }).text).toBe("acbacbacb");
    expect(() => t.generate({ prompt: "a", tokens: -1 })).toThrow(/tokens must be an integer ≥ 0/);
    expect(() => t.generate({ prompt: "a", tokens: 1, topK: 0 })).toThrow(/topK must be an integer ≥ 1/);
    const file = join(dir, "manifest.json");
    const m = JSON.parse(readFileSync(file, "utf8"));
    writeFileSync(file, JSON.stringify({ ...m, generate: { ...m.generate, vocab: ["a", "b"] } }));
    expect(() => readManifest(dir)).not.toThrow();
    await expect(load(dir)).rejects.toThrow(/generate\.output "logits" is f32\[1,4,3\]; expected \[1,4,2\] logits/);
  });

  it("refuses a generate graph that does not fit the training graph", () => {
    const vocab = ["a", "b", "c"];
    expect(() => compile(bigram("bi", 2, true), { outDir: tempBundleDir("g"), generate: { graph: bigram("bi1", 2, false), vocab } })).toThrow(/input "ids" must be i32 \[1, context\] \(batch 1\)/);
    expect(() => compile(bigram("bi", 2, true), { outDir: tempBundleDir("g"), generate: { graph: bigram("bi1", 1, false), vocab: ["a", "b"] } })).toThrow(/output "logits" \[1,4,3\] must be logits \[1, 4, 2\]/);
    expect(() => compile(bigram("bi", 2, true, 3), { outDir: tempBundleDir("g"), generate: { graph: bigram("bi1", 1, false, 2), vocab: ["a", "b"] } })).toThrow(/param "table" is \[3,2\] but \[3,3\] in the training graph/);
  });

  /**
   * The bigram as a cached step: logits = table[id] for the token at `index`;
   * its one cache counts the steps so far (each step adds 1), and the logits
   * add 10 to token c once that count reaches 3, so a count not fed back
   * changes the text.
   */
  const bigramStep = (name: string, opts: { cacheShape?: number[]; next?: number[]; extra?: boolean; indexType?: "i32" | "f32"; width?: number } = {}) =>
    graph(name, (g) => {
      const ids = g.input("ids", [1, 1], "i32");
      g.input("index", [1], opts.indexType ?? "i32");
      const width = opts.width ?? 3;
      const table = g.param("table", [3, width], { init: [0, 5, 0, 0, 0, 5, 5, 0, 0].slice(0, 3 * width) });
      const count = g.input("count", opts.cacheShape ?? [1]);
      const bonus = count.sum().greaterEqual(3).where(g.const([0, 0, 10].slice(0, width), [width]), 0);
      const outputs: Record<string, ReturnType<typeof g.input>> = { logits: table.gather(ids).add(bonus.reshape([1, 1, width])), next: count.add(1).reshape(opts.next ?? count.shape) };
      if (opts.extra) g.input("extra", [1]);
      return { outputs };
    });
  const cached = (graph: ReturnType<typeof bigramStep>) => ({ graph, caches: [{ input: "count", output: "next" }] });

  it("a cached step feeds each cache's output back and runs while the text fits the context, then the whole context", async () => {
    const dir = tempBundleDir("gen");
    const vocab = ["a", "b", "c"];
    compile(bigram("bi", 2, true), { outDir: dir, generate: { graph: bigram("bi1", 1, false), vocab, cached: cached(bigramStep("step")) } });
    const t = await load(dir);
    // steps 1–3 (counts 0, 1, 2) follow the table; the 4th (count 3) takes c after a; the context of 4 is then full and the table rules again
    const g = t.generate({ prompt: "a", tokens: 6, temperature: 0 });
    expect(g.text).toBe("abcacab");
    expect(g.cachedTokens).toBe(4);
    // without the cache: the table alone
    const plain = t.generate({ prompt: "a", tokens: 6, temperature: 0, cache: false });
    expect([plain.text, plain.cachedTokens]).toEqual(["abcabca", 0]);
    // a 3-token prompt runs 3 steps before the first draw, which sees count 2
    expect(t.generate({ prompt: "aaa", tokens: 2, temperature: 0 }).text).toBe("aaabc");
    expect(() => t.generate({ prompt: "a", tokens: 1, cache: 1 as unknown as boolean })).toThrow(/cache must be true or false/);
    const file = join(dir, "manifest.json");
    const m = JSON.parse(readFileSync(file, "utf8"));
    writeFileSync(file, JSON.stringify({ ...m, generate: { ...m.generate, cached: { ...m.generate.cached, caches: [{ input: "count", output: "logits" }] } } }));
    await expect(load(dir)).rejects.toThrow(/cache "count" is f32\[1\] but its next value "logits" is f32\[1,1,3\]/);
    writeFileSync(file, JSON.stringify({ ...m, generate: { ...m.generate, cached: { ...m.generate.cached, bundle: "generate" } } }));
    expect(() => readManifest(dir)).toThrow(/generate\.cached\.bundle must be a plain folder name inside the bundle, other than the generate bundle's/);
    writeFileSync(file, JSON.stringify({ ...m, generate: { ...m.generate, cached: { ...m.generate.cached, caches: [{ input: "count" }] } } }));
    expect(() => readManifest(dir)).toThrow(/generate\.cached\.caches\[0\] must be \{ input, output \}/);
  });

  it("refuses a cached step that does not fit: index type, an input it cannot feed, a cache without its shape, the logits' size", () => {
    const vocab = ["a", "b", "c"];
    const compileWith = (step: ReturnType<typeof bigramStep>, v = vocab) => () =>
      compile(bigram("bi", 2, true), { outDir: tempBundleDir("g"), generate: { graph: bigram("bi1", 1, false), vocab: v, cached: cached(step) } });
    expect(compileWith(bigramStep("s", { indexType: "f32" }))).toThrow(/generate\.cached graph "s": index "index" must be i32 \[1\], got f32 \[1\]/);
    expect(compileWith(bigramStep("s", { extra: true }))).toThrow(/input "extra" is neither the token, its position nor a cache/);
    expect(compileWith(bigramStep("s", { cacheShape: [2], next: [1, 2] }))).toThrow(/cache "count" is f32 \[2\] but its next value "next" is f32 \[1,2\]/);
    expect(compileWith(bigramStep("s", { width: 2 }), ["a", "b"])).toThrow(/param "table" is \[3,2\] but \[3,3\] in the training graph/);
    expect(() =>
      compile(bigram("bi", 2, true), { outDir: tempBundleDir("g"), generate: { graph: bigram("bi1", 1, false), vocab, cached: { graph: bigramStep("s"), caches: [{ input: "count", output: "nope" }] } } }),
    ).toThrow(/has no output "nope" for the cache "count"/);
  });
});
