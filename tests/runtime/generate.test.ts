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
});
