// The language-model example, sized for CI: the transformer of examples/lm
// trained briefly on a few hundred sentences of the Brown corpus, then
// `gradc sample` with a fixed seed must print mostly words of that text; and
// the held-out loss the example reports must fall as it trains.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compile } from "../../compiler/compile.js";
import { load } from "../../runtime/load.js";
import type { Trainer } from "../../runtime/load.js";
import { run } from "../../compiler/cli.js";
import lm, { BATCH, config as lmExampleConfig, languageModel, lmConfig, SIZE as EXAMPLE_SIZE, VOCAB as EXAMPLE_VOCAB } from "../../examples/lm/model.js";
import type { LmSize } from "../../examples/lm/model.js";
import { brownText, untag } from "../../examples/lm/corpus.js";
import { encode, validationLoss, WindowSampler } from "../../examples/lm/data.js";

const root = mkdtempSync(join(tmpdir(), "gradc-lm-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The first sentences of the corpus (about 2,500 characters): small enough to learn in a few hundred steps. */
const TEXT = brownText("ca01").slice(0, 2500);
const VOCAB = [...new Set(TEXT)].sort();
const SIZE: LmSize = { vocab: VOCAB.length, seq: 24, dim: 48, heads: 2, layers: 1, mlp: 96 };
const STEPS = 600;
const dir = join(root, "lm");
let trainer: Trainer;
let before: number;
let after: number;

/** The words of a text: runs of letters (with inner apostrophes). */
const words = (text: string): string[] => text.match(/[A-Za-z]+(?:'[a-z]+)?/g) ?? [];

beforeAll(async () => {
  compile(languageModel("lmTiny", SIZE, { batch: 16 }), { outDir: dir, ...lmConfig("lmTiny", SIZE, VOCAB, STEPS, 1e-2) });
  trainer = await load(dir);
  const ids = encode(TEXT, VOCAB);
  before = validationLoss(trainer, ids, 32);
  const sampler = new WindowSampler(ids, 16, SIZE.seq, 1);
  for (let i = 0; i < STEPS; i++) trainer.step(sampler.next());
  after = validationLoss(trainer, ids, 32);
  trainer.save(join(dir, "checkpoints", "latest.safetensors"));
}, 300_000);

describe("examples/lm", () => {
  it("strips the part-of-speech tags and joins punctuation", () => {
    expect(untag("The/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' ,/, Atlanta's/np$ own/jj ./.")).toBe('The jury said "no evidence", Atlanta\'s own.');
    expect(TEXT).not.toMatch(/\/[a-z$-]+\b/);
  });

  it("learns: the loss in nats per character falls from about log(vocab)", () => {
    expect(before).toBeGreaterThan(Math.log(VOCAB.length) - 0.5);
    expect(after).toBeLessThan(before - 1.5);
  });

  it("gradc sample prints mostly words of the training text, the same for the same seed", async () => {
    const out: string[] = [];
    const notes: string[] = [];
    const args = ["sample", dir, "--prompt", "The ", "--tokens", "240", "--temperature", "0.5", "--seed", "7"];
    expect(await run(args, { out: (t) => out.push(t), err: (t) => notes.push(t) })).toBe(0);
    expect(notes.join("\n")).toContain(`latest.safetensors (step ${STEPS})`);
    const text = out.join("\n");
    expect(text.startsWith("The ")).toBe(true);
    expect(text.length).toBeGreaterThanOrEqual(4 + 240);
    const known = new Set(words(TEXT).map((w) => w.toLowerCase()));
    const sampled = words(text.slice(4));
    const real = sampled.filter((w) => known.has(w.toLowerCase()));
    expect(sampled.length).toBeGreaterThan(20);
    expect(real.length / sampled.length).toBeGreaterThan(0.6);
    const again: string[] = [];
    await run(args, { out: (t) => again.push(t), err: () => {} });
    expect(again.join("\n")).toBe(text);
  });

  it("the key/value-cached step draws the same tokens as a pass over the whole context, within the context and after it slides", () => {
    for (const [prompt, seed, temperature] of [["The ", 1, 1], ["", 2, 0.8], ["of the", 3, 0]] as const) {
      const options = { prompt, tokens: 60, seed, temperature };
      const cached = trainer.generate(options);
      const whole = trainer.generate({ ...options, cache: false });
      expect(cached.ids).toEqual(whole.ids);
      // the cached step runs until the text fills the context of 24
      expect(cached.cachedTokens).toBe(SIZE.seq - Math.max(prompt.length, 1) + 1);
      expect(whole.cachedTokens).toBe(0);
    }
  });

  it("the cached step's logits are those of the whole context at each position", async () => {
    // the two inference bundles, loaded on their own with the trained weights
    const context = await load(join(dir, "generate"));
    const step = await load(join(dir, "generate-step"));
    for (const t of [context, step]) for (const name of t.params.names()) t.params.set(name, trainer.params.get(name));
    const ids = Int32Array.from(encode(TEXT.slice(0, SIZE.seq), VOCAB));
    const whole = Float32Array.from(context.predict({ ids })["logits"]!);
    const shape = [1, SIZE.heads, SIZE.seq, SIZE.dim / SIZE.heads];
    const caches = { "cache.block0.keys": new Float32Array(shape.reduce((a, b) => a * b)), "cache.block0.values": new Float32Array(shape.reduce((a, b) => a * b)) };
    let worst = 0;
    for (let i = 0; i < SIZE.seq; i++) {
      const out = step.predict({ ids: [ids[i]!], index: [i], ...caches });
      caches["cache.block0.keys"] = Float32Array.from(out["block0.keys"]!);
      caches["cache.block0.values"] = Float32Array.from(out["block0.values"]!);
      const logits = out["logits"]!;
      for (let v = 0; v < SIZE.vocab; v++) worst = Math.max(worst, Math.abs(logits[v]! - whole[i * SIZE.vocab + v]!));
    }
    // float32 rounding of products over other lengths, nothing more
    expect(worst).toBeLessThan(1e-4);
  });

  it("gradc sample --no-cache prints the same text and says how many tokens the cached step drew", async () => {
    const args = ["sample", dir, "--prompt", "The ", "--tokens", "40", "--seed", "4"];
    const [a, b] = [[] as string[], [] as string[]];
    const notes: string[] = [];
    await run(args, { out: (t) => a.push(t), err: (t) => notes.push(t) });
    await run([...args, "--no-cache"], { out: (t) => b.push(t), err: (t) => notes.push(t) });
    expect(a.join("\n")).toBe(b.join("\n"));
    expect(notes.join("\n")).toMatch(/40 tokens in [\d.]+ s \(\d+ tokens\/s, 21 of them by the key\/value-cached step\)/);
    expect(notes.join("\n")).toMatch(/40 tokens in [\d.]+ s \(\d+ tokens\/s, 0 of them by the key\/value-cached step\)/);
  });

  it("trainer.generate uses the current weights: training changes the text", async () => {
    const fresh = await load(dir);
    const a = fresh.generate({ prompt: "The ", tokens: 40, seed: 3 });
    const b = trainer.generate({ prompt: "The ", tokens: 40, seed: 3 });
    expect(a.text).not.toBe(b.text);
    expect(b.ids.length).toBe(4 + 40);
  });

  it("model.ts default-exports the example's model and the config gradc compile reads (AdamW, clipping, generation)", () => {
    expect(lm.name).toBe("lm");
    expect(lm.inputs.map((i) => [i.name, i.shape])).toEqual([
      ["ids", [BATCH, EXAMPLE_SIZE.seq]],
      ["targets", [BATCH, EXAMPLE_SIZE.seq]],
    ]);
    expect(lm.params.map((p) => p.name)).toContain(`block${EXAMPLE_SIZE.layers - 1}.attn.q.W`);
    expect(lm.params.find((p) => p.name === "head.W")!.shape).toEqual([EXAMPLE_SIZE.dim, EXAMPLE_VOCAB.length]);
    // the vocabulary is every character of the corpus, the newline among them
    expect(EXAMPLE_VOCAB).toContain("\n");
    expect(EXAMPLE_VOCAB.length).toBeGreaterThan(70);
    expect(lmExampleConfig.optimizer?.name).toBe("adamw");
    expect(lmExampleConfig.gradClip).toBe(1);
    expect(lmExampleConfig.generate?.vocab).toEqual(EXAMPLE_VOCAB);
  });
});
