// The fine-tuning example at CI size: a tiny model pre-trained on one text,
// fine-tuned on another with its lower block frozen and per-scope learning
// rates; the frozen params must keep every bit, and the three held-out losses
// must be finite and reported.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runFinetune } from "../../examples/finetune/finetune.js";
import { brownText } from "../../examples/lm/corpus.js";
import { encode } from "../../examples/lm/data.js";

const root = mkdtempSync(join(tmpdir(), "gradc-finetune-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("examples/finetune", () => {
  it("fine-tunes from the pre-trained checkpoint with the lower block frozen bit for bit", async () => {
    const press = brownText("ca01").slice(0, 6000);
    const fiction = brownText("ck01").slice(0, 6000);
    const vocab = [...new Set(press + fiction)].sort();
    const split = (t: string) => ({ vocab, train: encode(t.slice(0, 5000), vocab), valid: encode(t.slice(5000), vocab) });
    const lines: string[] = [];
    const r = await runFinetune({
      out: root,
      size: { vocab: vocab.length, seq: 16, dim: 32, heads: 2, layers: 2, mlp: 64 },
      batch: 8,
      pretrainSteps: 150,
      steps: 60,
      evalWindows: 16,
      source: split(press),
      target: split(fiction),
      log: (l) => lines.push(l),
    });
    expect(r.frozenUnchanged).toBe(true);
    for (const loss of [r.pretrainedFrozen, r.scratch, r.finetuned]) expect(Number.isFinite(loss)).toBe(true);
    // pre-training on English helps on other English from the first step
    expect(r.finetuned).toBeLessThan(r.scratch);
    expect(lines.some((l) => /block0 frozen; learning-rate multipliers \{"block1":0\.3/.test(l))).toBe(true);
  }, 300_000);
});
