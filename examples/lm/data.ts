// Character data for the language model: a vocabulary of the corpus's
// characters, a held-out split by text, random training windows drawn from a
// seeded generator, and the validation loss in nats per character.
import { createRng } from "gradc/runtime";
import type { Trainer } from "gradc";
import { brownFiles, brownText } from "./corpus.js";

/** Texts as character ids, split by text: every `heldOutEvery`-th text of the selection is held out. */
export interface CharData {
  /** Id → character. */
  readonly vocab: readonly string[];
  readonly train: Uint8Array;
  readonly valid: Uint8Array;
}

/** The characters of the whole corpus, sorted: one vocabulary shared by every model trained on any part of it. */
export function brownVocab(): string[] {
  const seen = new Set<string>();
  for (const f of brownFiles()) for (const c of brownText(f)) seen.add(c);
  seen.add("\n");
  return [...seen].sort();
}

/** A text as ids of `vocab`; a character outside it is an error that names it. */
export function encode(text: string, vocab: readonly string[]): Uint8Array {
  const id = new Map(vocab.map((c, i) => [c, i]));
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const k = id.get(text[i]!);
    if (k === undefined) throw new Error(`encode: character ${JSON.stringify(text[i])} at ${i} is not in the vocabulary`);
    out[i] = k;
  }
  return out;
}

/** The texts of `categories`, split into training and held-out ids. */
export function brownData(categories: string, vocab: readonly string[], heldOutEvery = 20): CharData {
  const files = brownFiles(categories);
  const train: string[] = [];
  const valid: string[] = [];
  files.forEach((f, i) => (i % heldOutEvery === heldOutEvery - 1 ? valid : train).push(brownText(f) + "\n"));
  return { vocab, train: encode(train.join(""), vocab), valid: encode(valid.join(""), vocab) };
}

/** Batches of `batch` windows of `seq` characters at random offsets; targets are the windows shifted by one. */
export class WindowSampler {
  readonly ids: Int32Array;
  readonly targets: Int32Array;
  private readonly rng: () => number;

  constructor(
    private readonly text: Uint8Array,
    private readonly batch: number,
    private readonly seq: number,
    seed: number,
  ) {
    if (text.length < seq + 2) throw new Error(`WindowSampler: ${text.length} characters are too few for windows of ${seq} + 1`);
    this.ids = new Int32Array(batch * seq);
    this.targets = new Int32Array(batch * seq);
    this.rng = createRng(seed);
  }

  /** Fills `ids` and `targets` with the next batch. */
  next(): { ids: Int32Array; targets: Int32Array } {
    for (let b = 0; b < this.batch; b++) {
      const at = Math.floor(this.rng() * (this.text.length - this.seq - 1));
      for (let t = 0; t < this.seq; t++) {
        this.ids[b * this.seq + t] = this.text[at + t]!;
        this.targets[b * this.seq + t] = this.text[at + t + 1]!;
      }
    }
    return { ids: this.ids, targets: this.targets };
  }
}

/**
 * The mean next-character cross-entropy (nats per character) over `windows`
 * evenly spaced windows of the held-out text, from the logits `predict`
 * returns (no dropout, no update).
 */
export function validationLoss(trainer: Trainer, text: Uint8Array, windows: number): number {
  const [batch, seq, vocab] = trainer.manifest.outputs.find((o) => o.name === "logits")!.shape as [number, number, number];
  const stride = Math.floor((text.length - seq - 1) / windows);
  if (stride < 1) throw new Error(`validationLoss: ${text.length} characters are too few for ${windows} windows of ${seq}`);
  const ids = new Int32Array(batch * seq);
  let total = 0;
  let count = 0;
  for (let w0 = 0; w0 < windows; w0 += batch) {
    const rows = Math.min(batch, windows - w0);
    for (let b = 0; b < batch; b++) {
      const at = Math.min(w0 + b, windows - 1) * stride;
      ids.set(text.subarray(at, at + seq), b * seq);
    }
    const logits = trainer.predict({ ids })["logits"]!;
    for (let b = 0; b < rows; b++) {
      const at = (w0 + b) * stride;
      for (let t = 0; t < seq; t++) {
        const row = (b * seq + t) * vocab;
        let max = -Infinity;
        for (let v = 0; v < vocab; v++) max = Math.max(max, logits[row + v]!);
        let sum = 0;
        for (let v = 0; v < vocab; v++) sum += Math.exp(logits[row + v]! - max);
        // −log softmax(logits)[target]
        total += Math.log(sum) + max - logits[row + text[at + t + 1]!]!;
        count++;
      }
    }
  }
  return total / count;
}
