// load(dir): opens a kernel bundle and returns a Trainer that runs its
// forward and step kernels over two arenas allocated once.
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { ForwardModule, Manifest, OptimizerSpec, ParamEntry, Slot, StepModule } from "./manifest.js";
import { FORMAT_NAME, FORMAT_VERSION } from "./manifest.js";
import type { Arenas, FloatArray, Feeds, SlotView } from "./arena.js";
import { InputWriter, kindOf, sizeOf, slotCopy, slotView, typeText } from "./arena.js";
import { loadWeights, restoreCheckpoint, saveCheckpoint } from "./checkpoint.js";
import { checkSchedule, learningRate, writeLearningRate } from "./schedule.js";
import { CheckedKernels, kernelTableOf } from "./numerics.js";
import { DataParallel } from "./dataParallel.js";
import type { DataParallelOptions } from "./dataParallel.js";

/** Read and write parameters by name. Reads are copies; writes are checked. */
export interface ParamStore {
  /** The params' names, in manifest order. */
  names(): string[];
  /** A copy of a param's values (flat, row-major). */
  get(name: string): SlotView;
  /** Overwrites a param; `values` must have exactly its number of elements. */
  set(name: string, values: ArrayLike<number>): void;
}

/** A loaded bundle, ready to train and predict. */
export interface Trainer {
  readonly dir: string;
  readonly manifest: Manifest;
  /** The optimizer as run (the manifest's, with load options applied). */
  readonly optimizer: OptimizerSpec;
  /** The first axis of the training inputs (the graph's static batch size). */
  readonly batchSize: number;
  /** How many updates `step` has applied (saved in checkpoints). */
  readonly stepCount: number;
  readonly params: ParamStore;
  /** This rank's side of data-parallel training, when loaded with `dataParallel`. */
  readonly dataParallel?: DataParallel;
  /**
   * One optimizer update on a batch of the `train` inputs; returns the loss before the update.
   * Data-parallel, every rank calls it with its shard of the global batch: the gradients are
   * averaged over the ranks before the update, and the loss returned is the ranks' mean.
   */
  step(batch: Feeds): number;
  /** The loss and a copy of every trainable param's gradient (averaged over the ranks when data-parallel); no update. */
  gradients(batch: Feeds): { loss: number; grads: Record<string, FloatArray> };
  /** The L2 norm of a trainable param's gradient as the last `step` or `gradients` left it (allocates nothing). */
  gradNorm(name: string): number;
  /** Runs the forward pass on the `forward` inputs; returns a copy of every output. */
  predict(inputs: Feeds): Record<string, SlotView>;
  /** The learning rate the next `step` will use. */
  learningRate(): number;
  /** Writes params, optimizer state and step count to a safetensors file, atomically. */
  save(path: string): void;
  /**
   * Reads a checkpoint written by `save` for this bundle. Data-parallel, it is collective:
   * rank 0 reads the file and every other rank receives its contents (the path is rank 0's).
   */
  restore(path: string): void;
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
  /**
   * Train data-parallel with the other ranks of a communicator (runtime/mpi.ts):
   * params start as rank 0's, gradients are averaged over the ranks before each update.
   */
  readonly dataParallel?: DataParallelOptions;
}

/** Reads and validates a bundle's manifest.json. */
export function readManifest(dir: string): Manifest {
  const file = join(dir, "manifest.json");
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    const why = existsSync(dir) ? (e as Error).message : "no such folder";
    throw new Error(`cannot read ${file}: ${why} (is ${dir} a bundle written by gradc compile?)`);
  }
  let m: Manifest;
  try {
    m = JSON.parse(text) as Manifest;
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (m === null || typeof m !== "object" || m.format !== FORMAT_NAME) {
    throw new Error(`${file}: not a gradc bundle manifest (format ${JSON.stringify((m as { format?: unknown })?.format ?? null)}, expected "${FORMAT_NAME}")`);
  }
  if (m.version !== FORMAT_VERSION) {
    throw new Error(`${file}: bundle format version ${JSON.stringify(m.version)}, but this runtime reads version ${FORMAT_VERSION}; recompile the model`);
  }
  checkLayout(m, file);
  checkSchedule(m.optimizer, file);
  return m;
}

/** Every slot must lie inside its arena. */
function checkLayout(m: Manifest, file: string): void {
  const size = { F: m.arena.floats, I: m.arena.ints };
  const slots: [string, Slot][] = [
    ...m.inputs.map((s): [string, Slot] => [`input "${s.name}"`, s]),
    ...m.params.map((s): [string, Slot] => [`param "${s.name}"`, s]),
    ...m.params.flatMap((s): [string, Slot][] => (s.grad ? [[`gradient of "${s.name}"`, s.grad]] : [])),
    ...m.outputs.map((s): [string, Slot] => [`output "${s.name}"`, s]),
    ...m.state.map((s): [string, Slot] => [`state ${s.slot} of "${s.param}"`, s]),
    ["hyper.lr", m.hyper.lr],
    ["hyper.step", m.hyper.step],
    ...(m.loss ? [["loss", m.loss] as [string, Slot]] : []),
  ];
  for (const [what, s] of slots) {
    if (!(s.offset >= 0 && s.offset + sizeOf(s.shape) <= size[s.arena])) {
      throw new Error(`${file}: ${what} (${typeText(s.dtype, s.shape)} at ${s.arena}[${s.offset}]) lies outside the ${s.arena} arena of ${size[s.arena]} elements`);
    }
  }
}

/** Imports a kernel module of the bundle and checks that it exports `create`. */
async function importKernels<T>(dir: string, file: string): Promise<T> {
  const path = join(dir, file);
  if (!existsSync(path)) throw new Error(`${path}: missing (the manifest lists it as a kernel module)`);
  const mod = (await import(/* @vite-ignore */ pathToFileURL(path).href)) as { create?: unknown };
  if (typeof mod.create !== "function") throw new Error(`${path}: does not export create(F, I)`);
  return mod as T;
}

/** The static batch size: the first axis of the first batched training input (the data layer checks the rest). */
function batchSizeOf(m: Manifest): number {
  const first = m.inputs.find((i) => i.usedBy.includes("train") && i.shape.length > 0);
  return first?.shape[0] ?? 1;
}

/**
 * Loads the bundle in `dir`: validates its manifest, allocates the arenas,
 * fills the params from the weights file and binds the kernels.
 */
export async function load(dir: string, options: LoadOptions = {}): Promise<Trainer> {
  const root = resolve(dir);
  const manifest = readManifest(root);
  const F: FloatArray = manifest.dtype === "f64" ? new Float64Array(manifest.arena.floats) : new Float32Array(manifest.arena.floats);
  const arenas: Arenas = { F, I: new Int32Array(manifest.arena.ints) };
  loadWeights(arenas, manifest, join(root, manifest.files.weights));
  if (options.lr !== undefined && !(Number.isFinite(options.lr) && options.lr >= 0)) {
    throw new Error(`learning rate must be a finite number ≥ 0 (got ${options.lr})`);
  }
  const optimizer: OptimizerSpec = options.lr === undefined ? manifest.optimizer : { ...manifest.optimizer, lr: options.lr };
  const forwardMod = await importKernels<ForwardModule>(root, manifest.files.forward);
  const stepMod = await importKernels<StepModule>(root, manifest.files.step);
  // create() also writes the constants, so it runs in both modes
  const fwd = forwardMod.create(F, arenas.I);
  const kernels = stepMod.create(F, arenas.I);
  let parallel: DataParallel | undefined;
  if (options.dataParallel) {
    if (typeof (kernels as Partial<typeof kernels>).update !== "function") {
      throw new Error(`${join(root, manifest.files.step)}: has no update() entry, which data-parallel training needs; recompile the model with this version of gradc`);
    }
    parallel = new DataParallel(manifest, arenas, options.dataParallel);
  }
  let trainer: BundleTrainer;
  if (options.checkNumerics) {
    const forwardTable = kernelTableOf(forwardMod, join(root, manifest.files.forward));
    const checked = new CheckedKernels(manifest, arenas, forwardTable, kernelTableOf(stepMod, join(root, manifest.files.step)));
    trainer = new BundleTrainer(root, manifest, optimizer, arenas, checked, checked, parallel);
  } else {
    trainer = new BundleTrainer(root, manifest, optimizer, arenas, fwd, kernels, parallel);
  }
  // every rank starts from rank 0's params
  parallel?.broadcastState(0);
  return trainer;
}

class BundleTrainer implements Trainer {
  readonly batchSize: number;
  readonly params: ParamStore;
  private count = 0;
  private readonly inputs: InputWriter;
  private readonly lrView: SlotView;
  private readonly stepView: SlotView;
  private readonly lossView: SlotView | undefined;
  private readonly paramByName: Map<string, ParamEntry>;
  private readonly gradViews: Map<string, SlotView>;

  constructor(
    readonly dir: string,
    readonly manifest: Manifest,
    readonly optimizer: OptimizerSpec,
    private readonly arenas: Arenas,
    private readonly fwd: { forward(): void },
    private readonly kernels: { gradients(): void; update(): void; step(): void },
    readonly dataParallel?: DataParallel,
  ) {
    this.batchSize = batchSizeOf(manifest);
    this.inputs = new InputWriter(arenas, manifest.inputs);
    this.lrView = slotView(arenas, manifest.hyper.lr);
    this.stepView = slotView(arenas, manifest.hyper.step);
    this.lossView = manifest.loss ? slotView(arenas, manifest.loss) : undefined;
    this.paramByName = new Map(manifest.params.map((p) => [p.name, p]));
    this.gradViews = new Map(manifest.params.flatMap((p) => (p.grad ? [[p.name, slotView(arenas, p.grad)] as const] : [])));
    this.params = {
      names: () => manifest.params.map((p) => p.name),
      get: (name) => slotCopy(arenas, this.param(name)),
      set: (name, values) => {
        const p = this.param(name);
        const n = sizeOf(p.shape);
        if (values === null || typeof values !== "object" || typeof values.length !== "number") {
          throw new Error(`param "${name}": got ${kindOf(values)}, expected ${n} numbers for ${typeText(p.dtype, p.shape)}`);
        }
        if (values.length !== n) throw new Error(`param "${name}": got ${values.length} values, expected ${n} for ${typeText(p.dtype, p.shape)}`);
        slotView(arenas, p).set(values);
      },
    };
  }

  get stepCount(): number {
    return this.count;
  }

  private param(name: string): ParamEntry {
    const p = this.paramByName.get(name);
    if (!p) throw new Error(`unknown param "${name}"; the bundle's params are ${[...this.paramByName.keys()].join(", ") || "(none)"}`);
    return p;
  }

  private loss(): number {
    return this.lossView ? this.lossView[0]! : NaN;
  }

  learningRate(): number {
    return learningRate(this.optimizer, this.count);
  }

  step(batch: Feeds): number {
    this.inputs.write(batch, "train");
    if (this.lrView instanceof Int32Array) throw new Error(`${this.dir}: hyper.lr must live in the F arena`);
    writeLearningRate(this.optimizer, this.count, this.lrView, 0);
    this.stepView[0] = this.count + 1;
    const dp = this.dataParallel;
    if (!dp) {
      this.kernels.step();
      this.count++;
      return this.loss();
    }
    // gradients() + mean over the ranks + update() is step() on the global batch
    this.kernels.gradients();
    dp.reduceGradients();
    this.kernels.update();
    this.count++;
    const loss = dp.mean(this.loss());
    if (dp.checkEvery > 0 && this.count % dp.checkEvery === 0) dp.checkReplicas(this.count);
    return loss;
  }

  gradients(batch: Feeds): { loss: number; grads: Record<string, FloatArray> } {
    this.inputs.write(batch, "train");
    // random ops (dropout) draw as the next step would
    this.stepView[0] = this.count + 1;
    this.kernels.gradients();
    this.dataParallel?.reduceGradients();
    const grads: Record<string, FloatArray> = {};
    for (const p of this.manifest.params) {
      if (p.grad) grads[p.name] = slotCopy(this.arenas, p.grad) as FloatArray;
    }
    return { loss: this.dataParallel ? this.dataParallel.mean(this.loss()) : this.loss(), grads };
  }

  gradNorm(name: string): number {
    const g = this.gradViews.get(name);
    if (!g) throw new Error(`param "${name}" has no gradient${this.paramByName.has(name) ? " (it is frozen)" : `; the bundle's params are ${[...this.paramByName.keys()].join(", ") || "(none)"}`}`);
    let sq = 0;
    for (let i = 0; i < g.length; i++) sq += g[i]! * g[i]!;
    return Math.sqrt(sq);
  }

  predict(inputs: Feeds): Record<string, SlotView> {
    this.inputs.write(inputs, "forward");
    this.fwd.forward();
    const out: Record<string, SlotView> = {};
    for (const o of this.manifest.outputs) out[o.name] = slotCopy(this.arenas, o);
    return out;
  }

  save(path: string): void {
    saveCheckpoint(resolve(path), this.arenas, this.manifest, this.count);
  }

  restore(path: string): void {
    const dp = this.dataParallel;
    if (!dp || dp.rank === 0) this.count = restoreCheckpoint(resolve(path), this.arenas, this.manifest);
    if (dp) this.count = dp.broadcastState(this.count);
  }
}
