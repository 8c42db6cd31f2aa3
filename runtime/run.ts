// The training loop, one step at a time: the data order of each epoch, a
// batch filled and augmented, one update, the epoch's end and the test
// accuracy. `gradc train` (runtime/trainer.ts) drives it in a loop on Node
// and writes logs and checkpoints around it; the browser page drives the same
// run a slice of steps at a time between frames.
import type { TrainingSpec } from "./manifest.js";
import type { Feeds } from "./arena.js";
import type { Trainer } from "./open.js";
import type { Dataset } from "./data.js";
import { Batcher, epochSeed, RandomShift, subset, widthOf } from "./data.js";
import type { TrainingData } from "./arrays.js";
import { MNIST_PIXELS } from "./arrays.js";

/** A run's settings: the bundle's training spec with the user's choices over it. */
export interface RunPlan {
  readonly total: number;
  readonly stepsPerEpoch: number;
  readonly seed: number;
  readonly shuffle: boolean;
  readonly logEvery: number;
  readonly checkpointEvery: number;
  readonly gradNormEvery: number;
}

/** What a user may choose over the training spec (`gradc train`'s flags, a page's query). */
export interface RunChoices {
  readonly steps?: number;
  readonly epochs?: number;
  readonly seed?: number;
  readonly logEvery?: number;
  readonly checkpointEvery?: number;
  readonly gradNormEvery?: number;
}

/** The plan of a run of `stepsPerEpoch` steps per epoch. */
export function planRun(spec: TrainingSpec, c: RunChoices, stepsPerEpoch: number): RunPlan {
  const total = c.steps ?? (c.epochs !== undefined ? c.epochs * stepsPerEpoch : (spec.steps ?? (spec.epochs ?? 1) * stepsPerEpoch));
  return {
    total,
    stepsPerEpoch,
    seed: c.seed ?? spec.seed ?? 0,
    shuffle: spec.shuffle ?? true,
    logEvery: Math.max(1, c.logEvery ?? spec.logEvery ?? stepsPerEpoch),
    checkpointEvery: c.checkpointEvery ?? spec.checkpointEvery ?? 0,
    gradNormEvery: c.gradNormEvery ?? spec.gradNormEvery ?? 0,
  };
}

/** The training-time augmentation a spec asks for: random shifts of the MNIST images. */
function augmentation(spec: TrainingSpec): { shift: RandomShift; input: string } | undefined {
  if (spec.data.kind !== "mnist" || !spec.data.augment) return undefined;
  const side = Math.round(Math.sqrt(MNIST_PIXELS));
  return { shift: new RandomShift(side, side, spec.data.augment.shift), input: spec.data.images };
}

/**
 * A training run of a loaded bundle on its data: `next()` makes one update.
 * The data order depends only on (seed, epoch), so a run started from a
 * restored trainer picks up mid-epoch exactly. Data-parallel, one global
 * batch is `ranks` consecutive batches of the epoch's order and each rank
 * takes its own.
 */
export class TrainingRun {
  readonly plan: RunPlan;
  /** The step count the run started from (a restored checkpoint's). */
  readonly startStep: number;
  /** Updates made so far, in all (the trainer's step count). */
  step: number;
  /** The epoch (0-based) of the last update. */
  epoch: number;
  /** The loss of the last update. */
  loss = NaN;
  /** The learning rate the last update used. */
  lr = NaN;
  /** True when the last update ended its epoch (the last full batch of the epoch, or the run's last step). */
  endsEpoch = false;
  private readonly batcher: Batcher;
  private readonly globalBatch: number;
  private readonly shardAt: number;
  private readonly augment: { shift: RandomShift; input: string } | undefined;
  private readonly evaluator: (() => number) | undefined;
  private readonly testData: Dataset | undefined;
  private readonly accuracySpec: AccuracySpec | undefined;
  private order: Int32Array | undefined;
  /** The epoch and the batch within it of the next update. */
  private nextEpoch: number;
  private batchInEpoch: number;

  constructor(
    readonly trainer: Trainer,
    readonly data: TrainingData,
    choices: RunChoices = {},
  ) {
    const spec = trainer.manifest.training;
    if (!spec) throw new Error(`${trainer.dir}/manifest.json: the bundle has no training spec (give the model a config.training and recompile)`);
    const dp = trainer.dataParallel;
    const ranks = dp?.size ?? 1;
    const trainInputs = trainer.manifest.inputs.filter((i) => i.usedBy.includes("train"));
    this.batcher = new Batcher(data.train, trainInputs, trainer.batchSize);
    this.globalBatch = trainer.batchSize * ranks;
    const stepsPerEpoch = Math.floor(data.train.size / this.globalBatch);
    if (stepsPerEpoch === 0) {
      throw new Error(`${data.train.size} training examples are fewer than one ${ranks > 1 ? `global batch of ${trainer.batchSize} × ${ranks} ranks` : `batch of ${trainer.batchSize}`}`);
    }
    this.shardAt = (dp?.rank ?? 0) * trainer.batchSize;
    this.plan = planRun(spec, choices, stepsPerEpoch);
    // dropout draws from the run's seed too: another --seed, other masks
    trainer.setSeed(this.plan.seed);
    this.augment = augmentation(spec);
    this.evaluator = spec.accuracy && data.test && data.test.size > 0 ? makeEvaluator(trainer, data.test, spec.accuracy) : undefined;
    this.testData = data.test;
    this.accuracySpec = spec.accuracy;
    this.startStep = this.step = trainer.stepCount;
    this.nextEpoch = Math.floor(this.step / stepsPerEpoch);
    this.epoch = this.nextEpoch;
    this.batchInEpoch = this.step % stepsPerEpoch;
  }

  /** True once `plan.total` updates are made. */
  get done(): boolean {
    return this.step >= this.plan.total;
  }

  /** Whether the run measures test accuracy (the spec asks for it and data is held out). */
  get evaluates(): boolean {
    return this.evaluator !== undefined;
  }

  /** Fills the next batch (and augments it); returns it. */
  private prepare(): Readonly<Record<string, Float32Array | Float64Array | Int32Array>> {
    if (this.done) throw new Error(`the run is over: ${this.plan.total} steps made`);
    this.order ??= this.batcher.order(this.nextEpoch, this.plan.shuffle, this.plan.seed);
    this.batcher.fill(this.order, this.batchInEpoch * this.globalBatch + this.shardAt);
    // seeded by the step, so a resumed run draws the same shifts (a rank: its rows' shifts)
    if (this.augment) this.augment.shift.apply(this.batcher.batch[this.augment.input]!, this.trainer.batchSize, epochSeed(this.plan.seed + 0x5eed, this.step), this.shardAt);
    this.lr = this.trainer.learningRate();
    return this.batcher.batch;
  }

  private finish(loss: number): number {
    this.loss = loss;
    this.epoch = this.nextEpoch;
    this.step++;
    this.batchInEpoch++;
    this.endsEpoch = this.batchInEpoch === this.plan.stepsPerEpoch || this.step === this.plan.total;
    if (this.batchInEpoch === this.plan.stepsPerEpoch) {
      this.nextEpoch++;
      this.batchInEpoch = 0;
      this.order = undefined;
    }
    return loss;
  }

  /** One update on the next batch (a synchronous device); returns its loss. */
  next(): number {
    return this.finish(this.trainer.step(this.prepare()));
  }

  /** One update on the next batch, on any device. */
  async nextAsync(): Promise<number> {
    return this.finish(await this.trainer.stepAsync(this.prepare()));
  }

  /** The test accuracy now, on any device; undefined when the run does not evaluate. */
  async evaluateAsync(): Promise<number | undefined> {
    if (this.trainer.synchronous || !this.evaluator) return this.evaluate();
    if (this.trainer.dataParallel) throw new Error(`accuracy: data-parallel runs evaluate on synchronous devices only`);
    return accuracyAsync(this.trainer, this.testData!, this.accuracySpec!);
  }

  /** The test accuracy now; undefined when the run does not evaluate. */
  evaluate(): number | undefined {
    return this.evaluator?.();
  }
}

function makeEvaluator(trainer: Trainer, test: Dataset, spec: NonNullable<TrainingSpec["accuracy"]>): () => number {
  const dp = trainer.dataParallel;
  if (!dp) return () => accuracy(trainer, test, spec);
  // data-parallel: each rank counts the hits on its share of the test set
  const from = Math.floor((test.size * dp.rank) / dp.size);
  const to = Math.floor((test.size * (dp.rank + 1)) / dp.size);
  const shard = subset(test, Int32Array.from({ length: to - from }, (_, i) => from + i));
  return () => dp.sum(correctCount(trainer, shard, spec)) / test.size;
}

// ---- evaluation ----
/** The index of the largest of `values[from .. from + n)` (the first one on ties; NaN never wins). */
export function argmax(values: ArrayLike<number>, from: number, n: number): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let k = 0; k < n; k++) {
    const v = values[from + k]!;
    if (v > bestValue) {
      bestValue = v;
      best = k;
    }
  }
  return best;
}

/** What to compare: a graph output of shape [batch, classes] and the dataset column of labels. */
export interface AccuracySpec {
  readonly output: string;
  readonly labels: string;
}

/**
 * The fraction of `data`'s examples whose argmax over `spec.output` equals
 * the label in column `spec.labels`. The last batch is padded; padded rows
 * are not counted.
 */
export function accuracy(trainer: Trainer, data: Dataset, spec: AccuracySpec): number {
  return data.size === 0 ? NaN : correctCount(trainer, data, spec) / data.size;
}

/** How many of `data`'s examples `accuracy` counts as correct. */
export function correctCount(trainer: Trainer, data: Dataset, spec: AccuracySpec): number {
  const count = counter(trainer, data, spec);
  for (const b of count.batches) count.add(trainer.predict(b.batch)[spec.output]!, b.rows);
  return count.correct();
}

/** `accuracy` on any device (an asynchronous one: the gpu's). */
export async function accuracyAsync(trainer: Trainer, data: Dataset, spec: AccuracySpec): Promise<number> {
  if (data.size === 0) return NaN;
  const count = counter(trainer, data, spec);
  for (const b of count.batches) count.add((await trainer.predictAsync(b.batch))[spec.output]!, b.rows);
  return count.correct() / data.size;
}

/** The batches of an accuracy count (checked against the manifest) and its tally of the predictions of each. */
function counter(trainer: Trainer, data: Dataset, spec: AccuracySpec): {
  batches: Iterable<{ batch: Feeds; rows: number }>;
  add(values: ArrayLike<number>, rows: number): void;
  correct(): number;
} {
  const m = trainer.manifest;
  const out = m.outputs.find((o) => o.name === spec.output);
  if (!out) throw new Error(`accuracy: no output "${spec.output}" (outputs: ${m.outputs.map((o) => o.name).join(", ") || "none"})`);
  if (out.shape.length !== 2) throw new Error(`accuracy: output "${spec.output}" has shape [${out.shape.join(",")}]; expected [batch, classes]`);
  const labels = data.columns[spec.labels];
  if (!(labels instanceof Int32Array)) {
    throw new Error(`accuracy: the data has no integer column "${spec.labels}" (it has ${Object.keys(data.columns).join(", ") || "none"})`);
  }
  if (data.size > 0 && widthOf(data, spec.labels) !== 1) throw new Error(`accuracy: labels "${spec.labels}" must hold one class per example`);
  const [batchSize, classes] = out.shape as [number, number];
  const forwardInputs = m.inputs.filter((i) => i.usedBy.includes("forward"));
  let correct = 0;
  let seen = 0;
  return {
    batches: data.size === 0 ? [] : new Batcher(data, forwardInputs, batchSize).padded(),
    add: (values, rows) => {
      for (let r = 0; r < rows; r++) {
        if (argmax(values, r * classes, classes) === labels[seen + r]) correct++;
      }
      seen += rows;
    },
    correct: () => correct,
  };
}
