// Trains the character-level transformer (model.ts) on the Brown corpus and
// reports the held-out loss in nats per character and its perplexity, then
// prints a sample. Usage:
//   npx tsx examples/lm/train.ts [--steps N] [--out DIR] [--categories LETTERS]
// The bundle (build/lm by default) keeps the trained weights in
// checkpoints/latest.safetensors, so `gradc sample build/lm` continues a prompt.
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { compile, load } from "gradc";
import type { Trainer } from "gradc";
import type { LmSize } from "./model.js";
import { BATCH, DROPOUT, languageModel, lmConfig, SIZE, STEPS, VOCAB } from "./model.js";
import { brownData, validationLoss, WindowSampler } from "./data.js";
import type { CharData } from "./data.js";

/** A training run's settings. */
export interface RunOptions {
  readonly steps: number;
  /** Evaluate on the held-out text every this many steps (and at the end). */
  readonly evalEvery: number;
  /** Held-out windows per evaluation (the final one uses four times as many). */
  readonly evalWindows: number;
  readonly seed?: number;
  readonly log?: (line: string) => void;
}

/** What a run measured. */
export interface RunResult {
  readonly validLoss: number;
  /** Wall-clock seconds of the training loop (evaluations included). */
  readonly seconds: number;
  /** CPU seconds the process spent in it: the wall time on an otherwise idle machine, as the loop runs on one thread. */
  readonly cpuSeconds: number;
}

/** CPU seconds (user + system) this process has used. */
function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Trains `trainer` on random windows of `data.train`, logging the training and held-out losses. */
export function trainLm(trainer: Trainer, data: CharData, o: RunOptions): RunResult {
  const log = o.log ?? ((line: string) => console.log(line));
  const ids = trainer.manifest.inputs.find((i) => i.name === "ids")!;
  const [batch, seq] = ids.shape as [number, number];
  const sampler = new WindowSampler(data.train, batch, seq, o.seed ?? 1);
  const started = performance.now();
  const cpu0 = cpuSeconds();
  let sum = 0;
  let n = 0;
  for (let step = 1; step <= o.steps; step++) {
    sum += trainer.step(sampler.next());
    n++;
    if (step % o.evalEvery === 0 && step < o.steps) {
      const valid = validationLoss(trainer, data.valid, o.evalWindows);
      const secs = (performance.now() - started) / 1000;
      log(`step ${step}/${o.steps}  train ${(sum / n).toFixed(3)}  valid ${valid.toFixed(3)} nats/char (perplexity ${Math.exp(valid).toFixed(2)})  ${secs.toFixed(0)} s (cpu ${(cpuSeconds() - cpu0).toFixed(0)} s)`);
      sum = n = 0;
    }
  }
  const validLoss = validationLoss(trainer, data.valid, 4 * o.evalWindows);
  const seconds = (performance.now() - started) / 1000;
  const cpu = cpuSeconds() - cpu0;
  log(`step ${o.steps}: valid ${validLoss.toFixed(3)} nats/char, perplexity ${Math.exp(validLoss).toFixed(2)} (${(validLoss / Math.LN2).toFixed(3)} bits/char) after ${seconds.toFixed(0)} s (cpu ${cpu.toFixed(0)} s)`);
  return { validLoss, seconds, cpuSeconds: cpu };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      steps: { type: "string", default: String(STEPS) },
      out: { type: "string", default: "build/lm" },
      categories: { type: "string", default: "abcdefghjklmnpr" },
      "eval-every": { type: "string", default: "500" },
      lr: { type: "string", default: "3e-3" },
      dropout: { type: "string", default: String(DROPOUT) },
    },
  });
  const steps = Number(values.steps);
  const out = resolve(values.out);
  const t0 = performance.now();
  const vocab = VOCAB;
  const data = brownData(values.categories, vocab);
  console.log(`Brown corpus (${values.categories}): ${data.train.length} training and ${data.valid.length} held-out characters, ${vocab.length} distinct`);
  const size: LmSize = { ...SIZE, vocab: vocab.length };
  const result = compile(languageModel("lm", size, { batch: BATCH, dropout: Number(values.dropout) }), { outDir: out, ...lmConfig("lm", size, vocab, steps, Number(values.lr)) });
  console.log(`compiled ${result.manifest.params.length} params in ${((performance.now() - t0) / 1000).toFixed(1)} s → ${out}`);
  const trainer = await load(out);
  const run = trainLm(trainer, data, { steps, evalEvery: Number(values["eval-every"]), evalWindows: 128 });
  const ckpt = join(out, "checkpoints", "latest.safetensors");
  trainer.save(ckpt);
  console.log(`total ${((performance.now() - t0) / 1000).toFixed(0)} s (training ${run.seconds.toFixed(0)} s, ${run.cpuSeconds.toFixed(0)} s of CPU); checkpoint ${ckpt}`);
  const sample = trainer.generate({ prompt: "The ", tokens: 300, temperature: 0.8, seed: 1 });
  console.log(`sample (temperature 0.8):\n${sample.text}`);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
