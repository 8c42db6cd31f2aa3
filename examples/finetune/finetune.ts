// Fine-tuning a pre-trained language model on custom data: the transformer of
// examples/lm is pre-trained on the Brown corpus's press texts (categories
// a–c), then a bundle compiled with `initFrom` the pre-trained checkpoint,
// its embeddings and lower block frozen and the rest at a lower learning rate
// (per-scope multipliers), is trained on fiction (k–r). Three held-out losses
// on fiction, after the same number of steps on it, are printed:
//   - the pre-trained model as it is (frozen),
//   - the same model trained from scratch on fiction,
//   - the fine-tuned model.
// Usage: npx tsx examples/finetune/finetune.ts [--pretrain-steps N] [--steps N] [--out DIR]
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { compile, load } from "gradc";
import type { ModelConfig, Trainer } from "gradc";
import { languageModel, lmConfig } from "../lm/model.js";
import type { LmSize } from "../lm/model.js";
import { brownData, brownVocab, validationLoss } from "../lm/data.js";
import type { CharData } from "../lm/data.js";
import { trainLm } from "../lm/train.js";

/** A smaller model than examples/lm's, so the three runs fit in minutes. */
export const FINETUNE_SIZE: Omit<LmSize, "vocab"> = { seq: 32, dim: 64, heads: 4, layers: 2, mlp: 256 };

/** Light dropout in the training step of each of the three models. */
export const FINETUNE_DROPOUT = 0.05;

/** What the fine-tuned bundle freezes, and the multipliers of the learning rate of what it trains. */
export const FROZEN = ["tok", "pos", "block0"];
export const LR_MULTIPLIERS = { block1: 0.3, final: 0.5, head: 0.5 };

export interface FinetuneOptions {
  readonly out: string;
  readonly size: LmSize;
  readonly batch: number;
  readonly pretrainSteps: number;
  /** Steps on the new domain, for both the fine-tuned and the from-scratch model. */
  readonly steps: number;
  readonly evalWindows: number;
  /** The pre-training and the new domain's texts (character ids over one vocabulary). */
  readonly source: CharData;
  readonly target: CharData;
  readonly log?: (line: string) => void;
}

/** The three held-out losses on the new domain (nats per character), and whether the frozen params kept every bit. */
export interface FinetuneResult {
  readonly pretrainedFrozen: number;
  readonly scratch: number;
  readonly finetuned: number;
  readonly frozenUnchanged: boolean;
}

/** Compiles a model of `size` into `dir` with `config` over the example's defaults, and loads it. */
async function bundle(dir: string, name: string, o: FinetuneOptions, steps: number, extra: Partial<ModelConfig> = {}): Promise<Trainer> {
  const base = lmConfig(name, o.size, o.source.vocab, steps);
  compile(languageModel(name, o.size, { batch: o.batch, dropout: FINETUNE_DROPOUT }), { outDir: dir, ...base, ...extra });
  return load(dir);
}

/** Pre-trains, then trains from scratch and fine-tunes for the same steps; returns the three held-out losses. */
export async function runFinetune(o: FinetuneOptions): Promise<FinetuneResult> {
  const log = o.log ?? ((line: string) => console.log(line));
  const quiet = () => {};
  const every = Math.max(1, Math.floor(o.steps / 2));

  log(`pre-training on ${o.source.train.length} characters for ${o.pretrainSteps} steps`);
  const pre = await bundle(join(o.out, "pretrained"), "pretrained", o, o.pretrainSteps);
  trainLm(pre, o.source, { steps: o.pretrainSteps, evalEvery: Math.max(1, Math.floor(o.pretrainSteps / 4)), evalWindows: o.evalWindows, log });
  const ckpt = join(o.out, "pretrained", "checkpoints", "latest.safetensors");
  pre.save(ckpt);
  const pretrainedFrozen = validationLoss(pre, o.target.valid, 4 * o.evalWindows);

  log(`from scratch on the new domain (${o.target.train.length} characters) for ${o.steps} steps`);
  const scratchModel = await bundle(join(o.out, "scratch"), "scratch", o, o.steps);
  const scratch = trainLm(scratchModel, o.target, { steps: o.steps, evalEvery: every, evalWindows: o.evalWindows, log: quiet }).validLoss;

  log(`fine-tuning from ${ckpt} for ${o.steps} steps: ${FROZEN.join(", ")} frozen; learning-rate multipliers ${JSON.stringify(LR_MULTIPLIERS)}`);
  const base = lmConfig("finetuned", o.size, o.source.vocab, o.steps);
  const tuned = await bundle(join(o.out, "finetuned"), "finetuned", o, o.steps, {
    initFrom: ckpt,
    freeze: FROZEN,
    optimizer: { ...base.optimizer!, lrMultipliers: LR_MULTIPLIERS },
  });
  const frozenNames = tuned.manifest.params.filter((p) => !p.trainable).map((p) => p.name);
  const before = new Map(frozenNames.map((n) => [n, tuned.params.get(n)]));
  const finetuned = trainLm(tuned, o.target, { steps: o.steps, evalEvery: every, evalWindows: o.evalWindows, log: quiet }).validLoss;
  tuned.save(join(o.out, "finetuned", "checkpoints", "latest.safetensors"));
  const frozenUnchanged = frozenNames.every((n) => {
    const a = before.get(n)!;
    const b = tuned.params.get(n);
    return a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
  });
  return { pretrainedFrozen, scratch, finetuned, frozenUnchanged };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      "pretrain-steps": { type: "string", default: "800" },
      steps: { type: "string", default: "200" },
      out: { type: "string", default: "build/finetune" },
    },
  });
  const started = performance.now();
  const vocab = brownVocab();
  const size: LmSize = { ...FINETUNE_SIZE, vocab: vocab.length };
  const steps = Number(values.steps);
  const result = await runFinetune({
    out: resolve(values.out),
    size,
    batch: 8,
    pretrainSteps: Number(values["pretrain-steps"]),
    steps,
    evalWindows: 128,
    source: brownData("abc", vocab),
    target: brownData("klmnpr", vocab),
  });
  const row = (what: string, loss: number) => `  ${what.padEnd(34)} ${loss.toFixed(3)} nats/char (perplexity ${Math.exp(loss).toFixed(2)})`;
  console.log(`validation loss on fiction (k–r) after ${steps} steps on it:`);
  console.log(row("pre-trained on press (a–c), frozen", result.pretrainedFrozen));
  console.log(row("from scratch", result.scratch));
  console.log(row("fine-tuned", result.finetuned));
  const best = Math.min(result.pretrainedFrozen, result.scratch, result.finetuned);
  console.log(`lowest: ${best === result.finetuned ? "fine-tuned" : best === result.scratch ? "from scratch" : "pre-trained, frozen"}; frozen params ${result.frozenUnchanged ? "bit-identical after training" : "CHANGED"}; ${((performance.now() - started) / 1000).toFixed(0)} s in all`);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
