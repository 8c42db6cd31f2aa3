// The generated trainer: `node <bundle>/train.js [flags]` runs main(), which
// loads the bundle and its data, trains with a progress bar, logs the loss,
// evaluates accuracy on the test split, and writes checkpoints.
import { closeSync, existsSync, openSync, readFileSync, writeSync } from "node:fs";
import os from "node:os";
import { join, resolve } from "node:path";
import type { FlagDefs, FlagValues } from "./flags.js";
import { flagNumber, flagsHelp, flagString, parseFlags, UsageError } from "./flags.js";
import { load } from "./load.js";
import { TrainingRun } from "./run.js";
import type { RunChoices } from "./run.js";
import type { Trainer } from "./open.js";
import { writeReport } from "./report.js";
import { loadTrainingData } from "./sources.js";
import { GradNormLog, gradNormSeries, parseCsv, readGradNorms } from "./gradNorms.js";
import { linePlot } from "./plot.js";
import { makeDirs, removeStaleTemps, writeFileAtomic } from "./safetensors.js";
import { acquireLock } from "./lock.js";
import { screenText, terminalText } from "./names.js";
import type { Communicator } from "./mpi.js";
import { mpiWorld } from "./mpi.js";
import type { DataParallel } from "./dataParallel.js";
import type { LossScaleStatus } from "./lossScale.js";

/** The trainer's flags; each overrides the bundle's training spec. */
export const TRAIN_FLAGS: FlagDefs = {
  steps: { kind: "int", value: "N", help: "train until N updates in all (overrides epochs)" },
  epochs: { kind: "int", value: "N", help: "train for N passes over the training data" },
  seed: { kind: "int", value: "N", help: "seed of the data shuffling and of dropout's masks" },
  lr: { kind: "number", value: "X", help: "base learning rate (overrides the optimizer's)" },
  "log-every": { kind: "int", value: "N", help: "log the loss every N steps" },
  "checkpoint-every": { kind: "int", value: "N", help: "write a checkpoint every N steps (and always at the end)" },
  out: { kind: "string", value: "DIR", help: "folder for logs/ and checkpoints/ (default: the bundle)" },
  resume: { kind: "boolean", help: "continue from checkpoints/latest.safetensors (same data order as an unbroken run)" },
  "init-from": { kind: "string", value: "FILE", help: "start from the params of a safetensors file (by name; F16, BF16, F32 or F64), e.g. a pre-trained model's" },
  "check-numerics": { kind: "boolean", help: "stop at the first NaN or infinity, naming the kernel, graph node and model line (slower)" },
  "grad-norms": { kind: "int", value: "N", help: "log each param's gradient norm every N steps to logs/grad_norms.csv (0: off)" },
  "no-progress": { kind: "boolean", help: "no progress bar (it is also off when stderr is not a terminal)" },
  mpi: { kind: "boolean", help: "train data-parallel on the ranks of an MPI job (mpirun -np N ... --mpi): each rank takes its shard of a global batch of batch × N examples; rank 0 writes logs and checkpoints" },
  "check-replicas": { kind: "int", value: "N", help: "with --mpi: check every N steps that the params are bit-identical on every rank (default 100; 0: only at the end)" },
  threads: { kind: "int", value: "N", help: "threads the kernels run on (default: every core; 1 per rank with --mpi); results do not depend on it" },
  verbose: { kind: "boolean", help: "print the stack trace of an error" },
  help: { kind: "boolean", short: "h", help: "show this help" },
};

/** The usage text of the trainer. */
export function trainHelp(command = "node <bundle>/train.js"): string {
  return `Usage: ${command} [options]\n\nTrains the bundle's model on the data of its training spec.\n\nOptions:\n${flagsHelp(TRAIN_FLAGS)}`;
}

/** What a training run did. */
export interface TrainSummary {
  readonly steps: number;
  /** Completed passes over the training data (may be fractional). */
  readonly epochs: number;
  /** The loss of the last update. */
  readonly finalLoss: number;
  /** Test accuracy after the last evaluation, when the spec asks for accuracy and data is held out. */
  readonly accuracy?: number;
  readonly seconds: number;
  readonly lossLog: string;
  /** logs/grad_norms.csv, when gradient norms were logged. */
  readonly gradNormLog?: string;
  /** The SVG plots written at the end: logs/loss.svg, and logs/grad_norms.svg with gradient norms. */
  readonly plots: readonly string[];
  /** logs/report.html: the plots inline, the results and the compile report. */
  readonly report: string;
  readonly checkpoint: string;
  /** The emitted gradient code of the bundle. */
  readonly stepCode: string;
  /** With --mpi: the ranks, and what the gradient all-reduces cost. */
  readonly mpi?: { readonly ranks: number; readonly bytesPerStep: number; readonly secondsPerStep: number };
}

/** Where the trainer prints; tests pass their own. */
export interface TrainIO {
  readonly log?: (line: string) => void;
  /** Force the progress bar on or off (default: on when stderr is a terminal). */
  readonly progress?: boolean;
}

/** The run's choices the flags make over the training spec. */
function choices(f: FlagValues): RunChoices {
  const pick = (flag: string, key: keyof RunChoices): Partial<Record<keyof RunChoices, number>> => {
    const v = flagNumber(f, flag);
    return v === undefined ? {} : { [key]: v };
  };
  return { ...pick("steps", "steps"), ...pick("epochs", "epochs"), ...pick("seed", "seed"), ...pick("log-every", "logEvery"), ...pick("checkpoint-every", "checkpointEvery"), ...pick("grad-norms", "gradNormEvery") };
}

const fmt = (x: number): string => (Math.abs(x) >= 1e-3 || x === 0 ? x.toFixed(4) : x.toExponential(3));
const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;

/** The line train.js prints for an error (its stack with --verbose), safe for a terminal. */
export function errorText(e: unknown, verbose: boolean): string {
  const err = e instanceof Error ? e : new Error(String(e));
  return screenText(verbose && err.stack ? err.stack : `train: ${err.message}`);
}

/**
 * Trains the bundle in `bundleDir` as its manifest's training spec says,
 * with `argv` flags applied (see TRAIN_FLAGS). Returns a summary, or
 * undefined when `--help` only printed the usage.
 */
export async function main(bundleDir: string, argv: readonly string[] = [], io: TrainIO = {}): Promise<TrainSummary | undefined> {
  const print = io.log ?? ((line: string) => console.log(line));
  // names from a graph or a file are printed as data: no terminal control character gets through
  const log = (line: string): void => print(screenText(line));
  const { flags, positional } = parseFlags(argv, TRAIN_FLAGS, "the trainer");
  if (flags["help"]) {
    log(trainHelp());
    return undefined;
  }
  if (positional.length) throw new UsageError(`the trainer takes no arguments besides options (got ${positional.join(" ")})`);
  if (!flags["mpi"]) return withLocks(bundleDir, flags, () => train(bundleDir, flags, io, log, undefined));
  if (flags["check-numerics"]) throw new UsageError("--check-numerics and --mpi do not go together: check numerics in one process");
  const comm: Communicator = mpiWorld();
  let summary: TrainSummary;
  try {
    // rank 0 writes the logs and checkpoints: it alone holds the folders
    const run = () => train(bundleDir, flags, io, comm.rank === 0 ? log : () => {}, comm);
    summary = comm.rank === 0 ? await withLocks(bundleDir, flags, run) : await run();
  } catch (e) {
    // the other ranks wait in a collective call: end the whole job
    console.error(screenText(`train: rank ${comm.rank} of ${comm.size}: ${e instanceof Error ? e.message : String(e)}`));
    comm.abort(1);
  }
  comm.finalize();
  return summary;
}

/** The training run of `main` on one process, or on one rank of `comm`. */
/**
 * Runs `fn` holding the locks of the output folder and the bundle: a second
 * trainer, or a compile, on either is refused while this run lasts.
 */
async function withLocks<T>(bundleDir: string, flags: FlagValues, fn: () => Promise<T>): Promise<T> {
  const dir = resolve(bundleDir);
  const out = resolve(flagString(flags, "out") ?? dir);
  makeDirs(out);
  const locks = [acquireLock(out, "train.js")];
  try {
    if (dir !== out) locks.push(acquireLock(dir, "train.js"));
    return await fn();
  } finally {
    for (const l of locks) l.release();
  }
}

async function train(bundleDir: string, flags: FlagValues, io: TrainIO, log: (line: string) => void, comm: Communicator | undefined): Promise<TrainSummary> {
  const dir = resolve(bundleDir);
  const lr = flagNumber(flags, "lr");
  const checkEvery = flagNumber(flags, "check-replicas");
  const threads = flagNumber(flags, "threads") ?? (comm ? 1 : os.availableParallelism());
  if (!(threads >= 1)) throw new UsageError(`--threads must be at least 1 (got ${threads})`);
  const trainer = await load(dir, {
    ...(lr === undefined ? {} : { lr }),
    checkNumerics: flags["check-numerics"] === true,
    ...(comm ? { dataParallel: { communicator: comm, ...(checkEvery === undefined ? {} : { checkEvery }) } } : {}),
    threads,
  });
  try {
    return await trainOn(trainer, dir, flags, io, log);
  } finally {
    // a gpu device holds WebGPU, which keeps Node from exiting until released
    await trainer.close();
  }
}

/** The training run of `train` on a loaded trainer. */
async function trainOn(trainer: Trainer, dir: string, flags: FlagValues, io: TrainIO, log: (line: string) => void): Promise<TrainSummary> {
  const dp = trainer.dataParallel;
  // rank 0 alone writes logs and checkpoints
  const writer = !dp || dp.rank === 0;
  const ranks = dp?.size ?? 1;
  const spec = trainer.manifest.training;
  if (!spec) throw new Error(`${join(dir, "manifest.json")}: the bundle has no training spec (give the model a config.training and recompile)`);
  const data = loadTrainingData(spec.data, dir, trainer.manifest.inputs);

  const out = resolve(flagString(flags, "out") ?? dir);
  const lossLog = join(out, "logs", "loss.csv");
  const checkpoint = join(out, "checkpoints", "latest.safetensors");
  if (writer) {
    makeDirs(join(out, "logs"));
    for (const sub of ["checkpoints", "logs"]) {
      const removed = removeStaleTemps(join(out, sub));
      if (removed.length) log(`removed ${removed.length} temporary file(s) that an interrupted run left in ${join(out, sub)}`);
    }
  }
  const resume = flags["resume"] === true;
  const initFrom = flagString(flags, "init-from");
  if (resume && initFrom !== undefined) throw new UsageError("--resume and --init-from exclude each other: a resumed run continues from its own checkpoint");
  if (resume) {
    if (writer && !existsSync(checkpoint)) throw new Error(`--resume: no checkpoint at ${checkpoint}`);
    // data-parallel: collective, every rank continues from rank 0's checkpoint
    trainer.restore(checkpoint);
    // the steps logged after the checkpoint run again: drop them, so no step appears twice
    if (writer) for (const csvLog of [lossLog, join(out, "logs", "grad_norms.csv")]) truncateLog(csvLog, trainer.stepCount);
  }
  if (initFrom !== undefined) trainer.loadParams(resolve(initFrom));
  const run = new TrainingRun(trainer, data, choices(flags));
  const p = run.plan;
  const appendLog = resume && existsSync(lossLog);
  const csv = writer ? openSync(lossLog, appendLog ? "a" : "w") : undefined;
  if (csv !== undefined && !appendLog) writeSync(csv, "step,epoch,loss,lr\n");
  const gradNames = trainer.manifest.params.filter((q) => q.grad).map((q) => q.name);
  const gradLogFile = join(out, "logs", "grad_norms.csv");
  // every step's loss for the plot, allocated once
  const startStep = trainer.stepCount;
  const losses = new Float64Array(Math.max(0, p.total - startStep));

  const started = performance.now();
  const batches = ranks > 1 ? `global batches of ${trainer.batchSize} × ${ranks} ranks` : `batches of ${trainer.batchSize}`;
  log(`training ${terminalText(trainer.manifest.name)}: ${p.total} steps${resume ? ` (resuming at ${trainer.stepCount})` : ""}, ${data.train.size} examples, ${batches}, ${trainer.optimizer.name} lr ${trainer.optimizer.lr}${flags["check-numerics"] ? " (checking every kernel for NaN and infinity)" : ""}`);
  const bar = writer ? await startProgress(p.total, io.progress ?? (!flags["no-progress"] && process.stderr.isTTY === true), log) : undefined;
  const say = (line: string): void => (bar ? bar.log(line) : log(line));
  const gradLog = writer && p.gradNormEvery > 0 && gradNames.length ? new GradNormLog(gradLogFile, gradNames, resume, say) : undefined;
  let acc: number | undefined;
  const diverging = new DivergenceWatch(trainer.optimizer.lr, say);
  try {
    while (!run.done) {
      const loss = trainer.synchronous ? run.next() : await run.nextAsync();
      const step = run.step;
      if (step > startStep && step - startStep <= losses.length) losses[step - startStep - 1] = loss;
      if (gradLog && (step % p.gradNormEvery === 0 || step === 1)) {
        if (trainer.synchronous) gradLog.record(step, trainer);
        else await gradLog.recordAsync(step, trainer);
      }
      if (!Number.isFinite(loss)) {
        // the data were checked finite as they were fed: the model or the rate made it
        throw new Error(`the loss is ${loss} at step ${step}${diverging.warned ? " after it diverged" : ""}; try a lower learning rate (--lr), or run with --check-numerics to find the kernel that produced it`);
      }
      diverging.record(step, loss);
      if (step % p.logEvery === 0 || step === p.total) {
        if (csv !== undefined) writeSync(csv, `${step},${run.epoch + 1},${loss},${run.lr}\n`);
        say(`step ${step}/${p.total}  epoch ${run.epoch + 1}  loss ${fmt(loss)}  lr ${run.lr.toPrecision(3)}${lossScaleText(trainer.lossScale)}`);
      }
      if (writer && p.checkpointEvery > 0 && step % p.checkpointEvery === 0) await saveCheckpoint(trainer, checkpoint);
      bar?.update(step, loss);
      // evaluate at each epoch's end, and once after a final partial epoch
      if (run.endsEpoch && run.evaluates) {
        acc = await run.evaluateAsync();
        say(`epoch ${run.epoch + 1}: test accuracy ${pct(acc!)}`);
      }
    }
  } finally {
    bar?.stop();
    if (csv !== undefined) closeSync(csv);
    gradLog?.close();
  }
  const seconds = (performance.now() - started) / 1000;
  const step = run.step;
  const loss = run.loss;
  const mpi = dp ? finishReplicas(dp, step, seconds, log) : undefined;
  const plots = writer ? writePlots(trainer.manifest.name, join(out, "logs"), startStep, losses.subarray(0, Math.max(0, step - startStep)), gradLog ? gradLogFile : undefined) : [];
  if (writer) await saveCheckpoint(trainer, checkpoint);
  const stepCode = join(dir, "step.ts");
  log(`final loss ${fmt(loss)}${acc === undefined ? "" : `  test accuracy ${pct(acc)}`}  (${step} steps in ${seconds.toFixed(1)} s)${lossScaleText(trainer.lossScale)}`);
  log(`loss log: ${lossLog}${gradLog ? `, gradient norms: ${gradLogFile}` : ""}`);
  const results = [`final loss ${fmt(loss)}`, ...(acc === undefined ? [] : [`test accuracy ${pct(acc)}`]), `${step} steps in ${seconds.toFixed(1)} s`, ...(mpi ? [`${mpi.ranks} ranks`] : [])];
  const report = writer ? writeReport(dir, join(out, "logs"), { model: trainer.manifest.name, results, plots }) : join(out, "logs", "report.html");
  log(`plots: ${plots.join(", ")}  report: ${report}`);
  log(`checkpoint: ${checkpoint}`);
  log(`gradient code: ${stepCode}`);
  const summary = { steps: step, epochs: step / p.stepsPerEpoch, finalLoss: loss, seconds, lossLog, ...(gradLog ? { gradNormLog: gradLogFile } : {}), plots, report, checkpoint, stepCode, ...(mpi ? { mpi } : {}) };
  return acc === undefined ? summary : { ...summary, accuracy: acc };
}

/** Mixed precision's loss scale as a log line ends: `  loss scale 65536 (2 steps skipped on overflow)`. */
export function lossScaleText(s: LossScaleStatus | undefined): string {
  if (!s) return "";
  return `  loss scale ${s.scale}${s.skipped ? ` (${s.skipped} step${s.skipped === 1 ? "" : "s"} skipped on overflow)` : ""}`;
}

/** The end of a data-parallel run: the params checked alike on every rank, and the all-reduce cost logged. */
function finishReplicas(dp: DataParallel, step: number, seconds: number, log: (line: string) => void): NonNullable<TrainSummary["mpi"]> {
  const hash = dp.checkReplicas(step);
  const s = dp.stats();
  const perStep = s.steps > 0 ? s.seconds / s.steps : 0;
  const share = seconds > 0 ? ` (${((100 * s.seconds) / seconds).toFixed(1)}% of the run)` : "";
  log(`params bit-identical on all ${dp.size} ranks (hash ${hash.toString(16).padStart(8, "0")})`);
  log(`all-reduce: ${s.bytesPerStep} bytes of gradients per step in ${s.callsPerStep} call${s.callsPerStep === 1 ? "" : "s"}, ${(perStep * 1000).toFixed(3)} ms per step on rank 0${share}`);
  return { ranks: dp.size, bytesPerStep: s.bytesPerStep, secondsPerStep: perStep };
}

/**
 * Keeps the rows of a CSV log up to `step` (and its header), written
 * atomically: after a resume from step k, the steps after k run again.
 */
export function truncateLog(file: string, step: number): void {
  if (!existsSync(file)) return;
  const lines = readFileSync(file, "utf8").split("\n");
  const kept = lines.filter((line, i) => i === 0 || (line !== "" && !(Number(line.slice(0, line.indexOf(","))) > step)));
  writeFileAtomic(file, kept.join("\n") + "\n");
}

/** How far above its first value the loss may rise before the trainer warns. */
export const DIVERGENCE_FACTOR = 100;

/**
 * Watches the loss for divergence: once it exceeds DIVERGENCE_FACTOR × the
 * first step's loss (and 1), warns once that the learning rate is too high.
 */
export class DivergenceWatch {
  private first = NaN;
  warned = false;

  constructor(
    private readonly lr: number,
    private readonly say: (line: string) => void,
  ) {}

  record(step: number, loss: number): void {
    if (Number.isNaN(this.first)) {
      this.first = loss;
      return;
    }
    if (!this.warned && loss > DIVERGENCE_FACTOR * Math.max(Math.abs(this.first), 1)) {
      this.warned = true;
      this.say(`warning: the loss is diverging: ${loss.toPrecision(3)} at step ${step}, from ${this.first.toPrecision(3)} at the start; the learning rate ${this.lr} is probably too high (try --lr ${(this.lr / 10).toPrecision(2)})`);
    }
  }
}

/**
 * Writes logs/loss.svg (the losses of earlier runs from loss.csv, then every
 * step of this one; log scale when the loss spans two decades) and, when
 * gradient norms were logged, logs/grad_norms.svg. Returns their paths.
 */
export function writePlots(model: string, logs: string, startStep: number, losses: ArrayLike<number>, gradLog?: string): string[] {
  const points: [number, number][] = [];
  if (startStep > 0 && existsSync(join(logs, "loss.csv"))) {
    // a resumed run: the logged losses before it
    const [, ...rows] = parseCsv(readFileSync(join(logs, "loss.csv"), "utf8"));
    for (const r of rows) if (Number(r[0]) <= startStep) points.push([Number(r[0]), Number(r[2])]);
  }
  for (let i = 0; i < losses.length; i++) points.push([startStep + i + 1, losses[i]!]);
  const finite = points.map(([, y]) => y).filter((y) => Number.isFinite(y));
  const logY = finite.length > 0 && Math.min(...finite) > 0 && Math.max(...finite) >= 100 * Math.min(...finite);
  const lossSvg = join(logs, "loss.svg");
  writeFileAtomic(lossSvg, linePlot([{ name: "loss", points }], { title: `${model}: training loss`, xLabel: "step", yLabel: "loss", logY }));
  if (!gradLog) return [lossSvg];
  const gradSvg = join(logs, "grad_norms.svg");
  const series = gradNormSeries(readGradNorms(gradLog));
  writeFileAtomic(gradSvg, linePlot(series, { title: `${model}: gradient L2 norm per parameter`, xLabel: "step", yLabel: "‖dLoss/dparam‖", logY: true }));
  return [lossSvg, gradSvg];
}

export { accuracy, argmax, correctCount } from "./run.js";
export type { AccuracySpec } from "./run.js";

// ---- the progress bar (cli-progress, loaded lazily so a bundle copied away from node_modules still trains) ----

/** A running progress bar. `log` prints a line (to stdout) above it. */
export interface Progress {
  update(step: number, loss: number): void;
  log(line: string): void;
  stop(): void;
}

type CliProgress = typeof import("cli-progress");

/** Imports cli-progress if it can be found (it is a CommonJS package). */
async function importCliProgress(): Promise<CliProgress | undefined> {
  try {
    const mod = (await import("cli-progress")) as CliProgress & { default?: CliProgress };
    return mod.default ?? mod;
  } catch {
    return undefined;
  }
}

/**
 * Starts a bar over `total` steps showing the latest loss, or returns
 * undefined when `enabled` is false or cli-progress is not installed.
 *
 * Training runs synchronously, so the bar cannot redraw on a timer: it
 * redraws from `update` (throttled by cli-progress) and after each `log`.
 */
export async function startProgress(total: number, enabled: boolean, print: (line: string) => void): Promise<Progress | undefined> {
  if (!enabled || total <= 0) return undefined;
  const cli = await importCliProgress();
  if (!cli) return undefined;
  const stream = process.stderr;
  const bar = new cli.SingleBar(
    {
      format: " {bar} {percentage}% | step {value}/{total} | loss {loss} | {duration_formatted} (eta {eta_formatted})",
      stream,
      hideCursor: true,
      synchronousUpdate: true,
      etaBuffer: 50,
    },
    cli.Presets.shades_classic,
  );
  bar.start(total, 0, { loss: "-" });
  return {
    update: (step, loss) => bar.update(step, { loss: loss.toPrecision(4) }),
    log: (line) => {
      // clear the bar's line, print the log line, and draw the bar again below it;
      // the bar restores the cursor it saved when it stops, so save the new line's position
      stream.write("\r\x1b[2K");
      print(line);
      stream.write("\x1b7");
      bar.render();
    },
    stop: () => bar.stop(),
  };
}

/** Saves a checkpoint from any device (an asynchronous one downloads the params first). */
async function saveCheckpoint(trainer: Trainer, path: string): Promise<void> {
  if (trainer.synchronous) trainer.save(path);
  else await trainer.saveAsync(path);
}
