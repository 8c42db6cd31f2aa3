// openBundle(io): a kernel bundle, read through a BundleIO (runtime/io.ts),
// as a Trainer that runs its forward and step kernels on the device of its
// backend (runtime/device.ts). The Node entry (load.ts) and the browser entry
// (browser/index.ts) both open bundles here; only their BundleIO differs.
import type { Manifest, OptimizerSpec, ParamEntry, Slot } from "./manifest.js";
import { checkManifest } from "./schema.js";
import { verifyBundle, verifyManifest } from "./verify.js";
import { setOwn } from "./names.js";
import type { FloatArray, Feeds, SlotView } from "./arena.js";
import { InputWriter, kindOf, sizeOf, typeText } from "./arena.js";
import { checkpointSlots, encodeCheckpoint, loadParams, loadWeights, restoreCheckpoint } from "./checkpoint.js";
import { decodeSafetensors } from "./safetensorsFormat.js";
import { learningRate, writeLearningRate } from "./schedule.js";
import { CheckedDevice } from "./numerics.js";
import type { Device } from "./device.js";
import { notSynchronous, now } from "./device.js";
import type { DeviceFactory } from "./devices.js";
import { DataParallel } from "./dataParallel.js";
import type { DataParallelOptions } from "./dataParallel.js";
import { checkCachedStepBundle, checkGenerateSpec, checkInferenceBundle, generate } from "./generate.js";
import type { GenerateOptions, Generation } from "./generate.js";
import { LossScaler } from "./lossScale.js";
import type { LossScaleStatus } from "./lossScale.js";
import type { BundleIO, CheckpointFiles } from "./io.js";
import { readFailure } from "./io.js";

/** Read and write parameters by name. Reads are copies; writes are checked. */
export interface ParamStore {
  /** The params' names, in manifest order. */
  names(): string[];
  /** A copy of a param's values (flat, row-major). Synchronous devices only (see `getAsync`). */
  get(name: string): SlotView;
  /** A copy of a param's values, on any device. */
  getAsync(name: string): Promise<SlotView>;
  /** Overwrites a param; `values` must have exactly its number of elements. */
  set(name: string, values: ArrayLike<number>): void;
}

/**
 * A loaded bundle, ready to train and predict.
 *
 * Every method that runs kernels or reads results has two forms, as
 * TensorFlow.js's `dataSync()` and `data()`: `step(batch)` returns the loss,
 * `stepAsync(batch)` a promise of it. The bundles of the host backends ("ts",
 * "wasm") run synchronously (`synchronous` is true) and both forms work; a
 * device that works asynchronously (a GPU) takes the `...Async` forms, and
 * the plain ones throw an error that names the one to use.
 */
export interface Trainer {
  readonly dir: string;
  readonly manifest: Manifest;
  /** The device the bundle runs on (chosen by manifest.backend). */
  readonly device: Device;
  /** True when `step`, `gradients`, `predict`, `gradNorm`, `params.get` and `save` may be called (the device completes each call before it returns). */
  readonly synchronous: boolean;
  /** The optimizer as run (the manifest's, with load options applied). */
  readonly optimizer: OptimizerSpec;
  /** The first axis of the training inputs (the graph's static batch size). */
  readonly batchSize: number;
  /** How many steps `step` has taken (saved in checkpoints); with mixed precision, skipped ones count too. */
  readonly stepCount: number;
  /** Mixed precision: the dynamic loss scale and the steps it skipped (undefined otherwise). */
  readonly lossScale?: LossScaleStatus;
  /** The run's seed that random ops (dropout) draw from with the step number (0 unless set). */
  readonly seed: number;
  /**
   * Sets the run's seed: each step's dropout masks are drawn from (the op's
   * seed, this seed, the step number), the same on every backend. The
   * trainer sets it from --seed. A bundle without random ops ignores it.
   */
  setSeed(seed: number): void;
  readonly params: ParamStore;
  /** This rank's side of data-parallel training, when loaded with `dataParallel`. */
  readonly dataParallel?: DataParallel;
  /**
   * One optimizer update on a batch of the `train` inputs; returns the loss before the update.
   * Allocates nothing on a host device. Data-parallel, every rank calls it with its shard of the
   * global batch: the gradients are averaged over the ranks before the update, and the loss
   * returned is the ranks' mean.
   */
  step(batch: Feeds): number;
  stepAsync(batch: Feeds): Promise<number>;
  /** The loss and a copy of every trainable param's gradient (averaged over the ranks when data-parallel); no update. */
  gradients(batch: Feeds): { loss: number; grads: Record<string, FloatArray> };
  gradientsAsync(batch: Feeds): Promise<{ loss: number; grads: Record<string, FloatArray> }>;
  /** The L2 norm of a trainable param's gradient as the last `step` or `gradients` left it (allocates nothing). */
  gradNorm(name: string): number;
  gradNormAsync(name: string): Promise<number>;
  /** Runs the forward pass on the `forward` inputs; returns a copy of every output. */
  predict(inputs: Feeds): Record<string, SlotView>;
  predictAsync(inputs: Feeds): Promise<Record<string, SlotView>>;
  /** The learning rate the next `step` will use. */
  learningRate(): number;
  /** Writes params, optimizer state and step count to a safetensors file, atomically (where there is a file system). */
  save(path: string): void;
  saveAsync(path: string): Promise<void>;
  /** What `save` writes, as bytes (a browser downloads them or keeps them in IndexedDB); any device. */
  checkpointBytes(): Promise<Uint8Array>;
  /** Restores a checkpoint from its bytes (`name` names it in errors); not data-parallel. */
  restoreBytes(bytes: Uint8Array, name: string): void;
  /**
   * Reads a checkpoint written by `save` for this bundle. Data-parallel, it is collective:
   * rank 0 reads the file and every other rank receives its contents (the path is rank 0's).
   */
  restore(path: string): void;
  /**
   * Overwrites the params with those of a safetensors file, matched by name
   * (F16, BF16, F32 or F64, from gradc or another tool); a missing or
   * mis-shaped param is an error. Optimizer state and step count stay.
   */
  loadParams(path: string): void;
  /**
   * Continues `options.prompt` by `options.tokens` tokens drawn from the
   * model's predictions, with the current weights (see runtime/generate.ts).
   * Only for bundles whose manifest has a `generate` entry; synchronous devices only.
   */
  generate(options: GenerateOptions): Generation;
  /**
   * Releases the device: a GPU's buffers, and the GPU once no trainer uses
   * it, so a Node process can exit (the trainer is unusable afterwards); a
   * host device's worker threads (the trainer still works after, on one
   * thread). Idle threads never keep a process alive, but a long-lived
   * process that loads bundles again and again should close the ones it is
   * done with.
   */
  close(): Promise<void>;
}

/** Options of `load`. */
export interface LoadOptions {
  /** Overrides the optimizer's base learning rate. */
  readonly lr?: number;
  /**
   * Run the kernels one at a time and throw a NumericsError (runtime/numerics.ts)
   * at the first NaN or infinity one writes, naming the kernel, its graph node
   * and the user's line. Slower; the normal mode runs each entry point as one call.
   */
  readonly checkNumerics?: boolean;
  /** Makes the device to run on instead of the one manifest.backend names (e.g. a wrapper of it). */
  readonly device?: DeviceFactory;
  /**
   * Train data-parallel with the other ranks of a communicator (runtime/mpi.ts):
   * params start as rank 0's, gradients are averaged over the ranks before each update.
   */
  readonly dataParallel?: DataParallelOptions;
  /**
   * Threads the kernels run on, the calling one included (default 1; the
   * trainer's default is every core). The "wasm" backend splits its
   * WebAssembly products across them; results are bit-identical for any
   * count. A run-time choice: nothing of it is in the bundle.
   */
  readonly threads?: number;
}

/** Parses and validates a manifest's text (`file` names it in errors). */
export function parseManifest(text: string, file: string): Manifest {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  const checked = checkManifest(m, file);
  if (checked.generate !== undefined) checkGenerateSpec(checked.generate, file);
  return checked;
}

/** The static batch size: the first axis of the first batched training input (the data layer checks the rest). */
function batchSizeOf(m: Manifest): number {
  const first = m.inputs.find((i) => i.usedBy.includes("train") && i.shape.length > 0);
  return first?.shape[0] ?? 1;
}

/**
 * Opens the bundle `io` reads: validates its manifest, checks every file's
 * digest, makes the device its backend runs on (from `devices`, by
 * manifest.backend, unless options.device says otherwise: allocating its
 * buffers and binding the kernels) and fills the params from the weights file.
 */
export async function openBundle(io: BundleIO, devices: DeviceFactory, options: LoadOptions = {}): Promise<Trainer> {
  const root = io.dir;
  const manifest = await io.readManifest();
  // the bundle knows itself: every file as the compiler wrote it
  await verifyBundle(io, manifest);
  if (options.lr !== undefined && !(Number.isFinite(options.lr) && options.lr >= 0)) {
    throw new Error(`learning rate must be a finite number ≥ 0 (got ${options.lr})`);
  }
  const optimizer: OptimizerSpec = options.lr === undefined ? manifest.optimizer : { ...manifest.optimizer, lr: options.lr };
  if (options.threads !== undefined && !(Number.isInteger(options.threads) && options.threads >= 1)) {
    throw new Error(`threads must be an integer >= 1 (got ${options.threads})`);
  }
  const plain = await (options.device ?? devices)(manifest, root, options.threads === undefined ? {} : { threads: options.threads });
  loadWeights(plain, manifest, await readSafetensors(io, manifest.files.weights), io.where(manifest.files.weights));
  let parallel: DataParallel | undefined;
  if (options.dataParallel) {
    parallel = new DataParallel(manifest, plain, options.dataParallel);
  }
  const device = options.checkNumerics ? new CheckedDevice(manifest, plain) : plain;
  const inference = await loadInference(io, manifest, devices, options);
  // after the checks that name a field: an edited manifest that passes them still differs from the compiler's
  await verifyManifest(io, manifest);
  const trainer = new BundleTrainer(root, manifest, optimizer, device, io.files, parallel, inference, async () => {
    await plain.close?.();
  });
  // every rank starts from rank 0's params
  parallel?.broadcastState(0);
  return trainer;
}

/** A next-token predictor's batch-1 inference bundles: the whole-context one and the cached step, if any. */
interface Inference {
  readonly context: Trainer;
  readonly step?: Trainer;
}

/** The batch-1 inference bundles of a next-token predictor, on a device of the same kind, checked against their parent. */
async function loadInference(io: BundleIO, manifest: Manifest, devices: DeviceFactory, options: LoadOptions): Promise<Inference | undefined> {
  const spec = manifest.generate;
  if (!spec) return undefined;
  const open = async (folder: string) => {
    const sub = io.sub(folder);
    const bundle = await openBundle(sub, devices, options.device ? { device: options.device } : {});
    if (bundle.manifest.generate) throw new Error(`${sub.dir}: an inference bundle cannot itself declare generate`);
    return { bundle, dir: sub.dir };
  };
  const context = await open(spec.bundle);
  checkInferenceBundle(spec, context.bundle.manifest, manifest, context.dir);
  if (!spec.cached) return { context: context.bundle };
  const step = await open(spec.cached.bundle);
  checkCachedStepBundle(spec, step.bundle.manifest, manifest, step.dir);
  return { context: context.bundle, step: step.bundle };
}

/** A bundle file read and decoded as safetensors; errors name it. */
async function readSafetensors(io: BundleIO, rel: string): Promise<ReturnType<typeof decodeSafetensors>> {
  let bytes: Uint8Array;
  try {
    bytes = await io.readBytes(rel);
  } catch (e) {
    throw new Error(`cannot read ${io.where(rel)}: ${readFailure(e)}`);
  }
  return decodeSafetensors(bytes, io.where(rel));
}

class BundleTrainer implements Trainer {
  readonly batchSize: number;
  readonly params: ParamStore;
  readonly synchronous: boolean;
  private count = 0;
  private readonly inputs: InputWriter;
  private readonly paramByName: Map<string, ParamEntry>;
  private readonly gradSlots: Map<string, Slot>;
  /**
   * The next update's learning rate, written here first in the F arena's own
   * type: copying it into the device boxes no number and allocates nothing.
   */
  private readonly lrScratch: FloatArray;
  /** Mixed precision's loss scale, when the bundle has one. */
  private readonly scaler?: LossScaler;
  private runSeed = 0;

  constructor(
    readonly dir: string,
    readonly manifest: Manifest,
    readonly optimizer: OptimizerSpec,
    readonly device: Device,
    private readonly files: CheckpointFiles | undefined,
    readonly dataParallel?: DataParallel,
    private readonly inference?: Inference,
    private readonly release: () => Promise<void> = () => Promise.resolve(),
  ) {
    if (manifest.hyper.lr.arena !== "F") throw new Error(`${dir}/manifest.json: hyper.lr must live in the F arena`);
    this.synchronous = device.synchronous;
    this.lrScratch = manifest.dtype === "f64" ? new Float64Array(1) : new Float32Array(1);
    this.batchSize = batchSizeOf(manifest);
    // --check-numerics reports NaN and infinity in the inputs itself, naming them
    this.inputs = new InputWriter(device, manifest.inputs, !(device instanceof CheckedDevice));
    this.paramByName = new Map(manifest.params.map((p) => [p.name, p]));
    this.gradSlots = new Map(manifest.params.flatMap((p) => (p.grad ? [[p.name, p.grad] as const] : [])));
    if (manifest.hyper.lossScale && manifest.mixed) this.scaler = new LossScaler(manifest.mixed, manifest.hyper.lossScale);
    this.params = {
      names: () => manifest.params.map((p) => p.name),
      get: (name) => now(device.read(this.param(name)), device, "params.get(name)"),
      getAsync: async (name) => device.read(this.param(name)),
      set: (name, values) => {
        const p = this.param(name);
        const n = sizeOf(p.shape);
        if (values === null || typeof values !== "object" || typeof values.length !== "number") {
          throw new Error(`param "${name}": got ${kindOf(values)}, expected ${n} numbers for ${typeText(p.dtype, p.shape)}`);
        }
        if (values.length !== n) throw new Error(`param "${name}": got ${values.length} values, expected ${n} for ${typeText(p.dtype, p.shape)}`);
        for (let i = 0; i < n; i++) {
          const x = values[i];
          if (typeof x !== "number" || !Number.isFinite(x)) {
            throw new Error(`param "${name}": value ${String(x)} at index ${i} is not a finite number (it would poison every later step)`);
          }
        }
        device.write(p, values);
      },
    };
  }

  get stepCount(): number {
    return this.count;
  }

  get lossScale(): LossScaleStatus | undefined {
    return this.scaler?.status();
  }

  get seed(): number {
    return this.runSeed;
  }

  setSeed(seed: number): void {
    if (!(Number.isInteger(seed) && seed >= 0 && seed <= 0x7fffffff)) throw new Error(`setSeed: the seed must be an integer in [0, 2^31 - 1], got ${String(seed)}`);
    this.runSeed = seed;
    if (this.manifest.hyper.seed) this.device.writeScalar(this.manifest.hyper.seed, seed);
  }

  /** Whether every gradient the last `gradients` run left is finite (allocates nothing). */
  private gradsFinite(): boolean {
    let sum = 0;
    for (const slot of this.gradSlots.values()) {
      const n = this.device.norm(slot);
      sum += typeof n === "number" ? n : now(n, this.device, "step(batch)");
    }
    return Number.isFinite(sum);
  }

  /** Writes the loss scale of the next backward pass, when the bundle has one. */
  private writeScale(): void {
    if (this.scaler) this.device.writeScalar(this.scaler.slot, this.scaler.scale);
  }

  private param(name: string): ParamEntry {
    const p = this.paramByName.get(name);
    if (!p) throw new Error(`unknown param "${name}"; the bundle's params are ${[...this.paramByName.keys()].join(", ") || "(none)"}`);
    return p;
  }

  private gradSlot(name: string): Slot {
    const g = this.gradSlots.get(name);
    if (!g) throw new Error(`param "${name}" has no gradient${this.paramByName.has(name) ? " (it is frozen)" : `; the bundle's params are ${[...this.paramByName.keys()].join(", ") || "(none)"}`}`);
    return g;
  }

  private loss(call: string): number {
    if (!this.manifest.loss) return NaN;
    const loss = this.device.scalar(this.manifest.loss);
    // typeof, not now(): a number checked this way stays unboxed on the step path
    return typeof loss === "number" ? loss : now(loss, this.device, call);
  }

  private async lossAsync(): Promise<number> {
    return this.manifest.loss ? this.device.scalar(this.manifest.loss) : NaN;
  }

  learningRate(): number {
    return learningRate(this.optimizer, this.count);
  }

  /** Refuses to train a bundle whose graph has no loss: its step would return NaN. */
  private trainable(call: string): void {
    if (!this.manifest.loss) throw new Error(`${this.dir}: ${call} needs a loss, and graph ${JSON.stringify(this.manifest.name)} has none; this bundle can only predict`);
  }

  /** Writes the batch, the learning rate and the 1-based step count of the next update. */
  private prepareStep(batch: Feeds): void {
    this.trainable("step()");
    this.inputs.write(batch, "train");
    writeLearningRate(this.optimizer, this.count, this.lrScratch, 0);
    this.device.write(this.manifest.hyper.lr, this.lrScratch);
    this.device.writeScalar(this.manifest.hyper.step, this.count + 1);
    this.writeScale();
  }

  step(batch: Feeds): number {
    if (!this.synchronous) throw notSynchronous(this.device, "step(batch)");
    this.prepareStep(batch);
    const dp = this.dataParallel;
    const scaler = this.scaler;
    if (scaler) {
      // mixed precision: the update runs only on finite gradients (all ranks see the same averaged ones)
      now(this.device.run("gradients"), this.device, "step(batch)");
      dp?.reduceGradients();
      if (scaler.record(this.gradsFinite())) now(this.device.run("update"), this.device, "step(batch)");
      this.count++;
      const loss = this.loss("step(batch)");
      return dp ? dp.mean(loss) : loss;
    }
    if (!dp) {
      now(this.device.run("step"), this.device, "step(batch)");
      this.count++;
      return this.loss("step(batch)");
    }
    // gradients + mean over the ranks + update is a step on the global batch
    now(this.device.run("gradients"), this.device, "step(batch)");
    dp.reduceGradients();
    now(this.device.run("update"), this.device, "step(batch)");
    this.count++;
    const loss = dp.mean(this.loss("step(batch)"));
    if (dp.checkEvery > 0 && this.count % dp.checkEvery === 0) dp.checkReplicas(this.count);
    return loss;
  }

  async stepAsync(batch: Feeds): Promise<number> {
    if (this.dataParallel || (this.scaler && this.synchronous)) return this.step(batch);
    if (this.scaler) throw new Error(`${this.dir}: a mixed-precision bundle trains on a synchronous device only`);
    this.prepareStep(batch);
    await this.device.run("step");
    this.count++;
    return this.lossAsync();
  }

  gradients(batch: Feeds): { loss: number; grads: Record<string, FloatArray> } {
    if (!this.synchronous) throw notSynchronous(this.device, "gradients(batch)");
    this.trainable("gradients()");
    this.inputs.write(batch, "train");
    // random ops (dropout) draw as the next step would
    this.device.writeScalar(this.manifest.hyper.step, this.count + 1);
    this.writeScale();
    now(this.device.run("gradients"), this.device, "gradients(batch)");
    this.dataParallel?.reduceGradients();
    const grads: Record<string, FloatArray> = {};
    for (const [name, slot] of this.gradSlots) setOwn(grads, name, now(this.device.read(slot), this.device, "gradients(batch)") as FloatArray);
    const loss = this.loss("gradients(batch)");
    return { loss: this.dataParallel ? this.dataParallel.mean(loss) : loss, grads };
  }

  async gradientsAsync(batch: Feeds): Promise<{ loss: number; grads: Record<string, FloatArray> }> {
    if (this.dataParallel) return this.gradients(batch);
    this.trainable("gradients()");
    this.inputs.write(batch, "train");
    this.device.writeScalar(this.manifest.hyper.step, this.count + 1);
    this.writeScale();
    await this.device.run("gradients");
    const grads: Record<string, FloatArray> = {};
    for (const [name, slot] of this.gradSlots) setOwn(grads, name, (await this.device.read(slot)) as FloatArray);
    return { loss: await this.lossAsync(), grads };
  }

  gradNorm(name: string): number {
    return now(this.device.norm(this.gradSlot(name)), this.device, "gradNorm(name)");
  }

  async gradNormAsync(name: string): Promise<number> {
    return this.device.norm(this.gradSlot(name));
  }

  predict(inputs: Feeds): Record<string, SlotView> {
    if (!this.synchronous) throw notSynchronous(this.device, "predict(inputs)");
    this.inputs.write(inputs, "forward");
    now(this.device.run("forward"), this.device, "predict(inputs)");
    const out: Record<string, SlotView> = {};
    for (const o of this.manifest.outputs) setOwn(out, o.name, now(this.device.read(o), this.device, "predict(inputs)"));
    return out;
  }

  async predictAsync(inputs: Feeds): Promise<Record<string, SlotView>> {
    this.inputs.write(inputs, "forward");
    await this.device.run("forward");
    const out: Record<string, SlotView> = {};
    for (const o of this.manifest.outputs) setOwn(out, o.name, await this.device.read(o));
    return out;
  }

  /** The file system of save/restore paths, or an error naming what to use instead. */
  private fileSystem(call: string): CheckpointFiles {
    if (!this.files) throw new Error(`${call}: this runtime has no file system (a browser); use checkpointBytes() and restoreBytes(bytes, name)`);
    return this.files;
  }

  save(path: string): void {
    if (!this.synchronous) throw notSynchronous(this.device, "save(path)");
    const files = this.fileSystem("save(path)");
    const device = this.device;
    files.write(path, encodeCheckpoint({ read: (slot) => now(device.read(slot), device, "save(path)") }, this.manifest, this.count));
  }

  async saveAsync(path: string): Promise<void> {
    const files = this.fileSystem("saveAsync(path)");
    // download first, then write the file in one go
    files.write(path, await this.checkpointBytes());
  }

  async checkpointBytes(): Promise<Uint8Array> {
    const values = new Map<Slot, SlotView>();
    for (const [, slot] of checkpointSlots(this.manifest)) values.set(slot, await this.device.read(slot));
    return encodeCheckpoint({ read: (slot) => values.get(slot)! }, this.manifest, this.count);
  }

  restore(path: string): void {
    const dp = this.dataParallel;
    if (!dp || dp.rank === 0) {
      const { path: file, file: content } = this.fileSystem("restore(path)").read(path);
      this.count = restoreCheckpoint(content, file, this.device, this.manifest);
    }
    if (dp) this.count = dp.broadcastState(this.count);
  }

  restoreBytes(bytes: Uint8Array, name: string): void {
    if (this.dataParallel) throw new Error("restoreBytes: a data-parallel trainer restores with restore(path), collectively");
    this.count = restoreCheckpoint(decodeSafetensors(bytes, name), name, this.device, this.manifest);
  }

  loadParams(path: string): void {
    const { path: file, file: content } = this.fileSystem("loadParams(path)").read(path);
    loadParams(content, file, this.device, this.manifest);
  }

  async close(): Promise<void> {
    await this.release();
    await this.inference?.context.close();
    await this.inference?.step?.close();
  }

  generate(options: GenerateOptions): Generation {
    const spec = this.manifest.generate;
    if (!spec || !this.inference) throw new Error(`${this.dir}: the model is not a next-token predictor (its manifest has no generate entry; give compile a generate config)`);
    if (!this.synchronous) throw notSynchronous(this.device, "generate(options)");
    // the inference bundles share the weights: copy the current ones in by name
    const { context, step } = this.inference;
    for (const bundle of step ? [context, step] : [context]) for (const name of bundle.params.names()) bundle.params.set(name, this.params.get(name));
    return generate(context, spec, options, step);
  }
}
