// The kernel bundle's contract: manifest.json's shape, shared by the compiler
// (which writes it) and the runtime (which reads it). Plain data only.

/** Bumped whenever a bundle written by an older gradc can no longer be read. */
export const FORMAT_VERSION = 1;
export const FORMAT_NAME = "gradc-bundle";

export type DTypeName = "f32" | "f64" | "i32" | "bool";

/**
 * Where a tensor lives: an element offset into one of the two arenas.
 * `F` holds floats (Float32Array, or Float64Array in f64 mode); `I` holds
 * i32 and bool values (Int32Array).
 */
export interface Slot {
  readonly arena: "F" | "I";
  readonly offset: number;
  readonly shape: readonly number[];
  readonly dtype: DTypeName;
}

export interface InputEntry extends Slot {
  readonly name: string;
  /** Which entry points read it: `forward` (predict) and/or `train` (gradients, step). */
  readonly usedBy: readonly ("forward" | "train")[];
  /** Integer class labels (an input read by oneHot): every value must lie in [0, classes). */
  readonly classes?: number;
}

export interface ParamEntry extends Slot {
  readonly name: string;
  readonly trainable: boolean;
  /** The initializer, as resolved at compile time (values are in weights.safetensors). */
  readonly init: { readonly name: string; readonly seed: number } & Readonly<Record<string, unknown>>;
  /** dLoss/dParam after `gradients()` or `step()`; absent for frozen params. */
  readonly grad?: Slot;
}

export interface OutputEntry extends Slot {
  readonly name: string;
}

export type ScheduleSpec =
  | { readonly name: "constant" }
  | { readonly name: "step"; readonly every: number; readonly gamma: number }
  | { readonly name: "cosine"; readonly totalSteps: number; readonly minLr?: number }
  | { readonly name: "linear"; readonly totalSteps: number; readonly endLr?: number };

export interface OptimizerSpec {
  readonly name: "sgd" | "momentum" | "adam" | "adamw";
  readonly lr: number;
  /** momentum: the velocity decay (default 0.9); nesterov for Nesterov momentum. */
  readonly momentum?: number;
  readonly nesterov?: boolean;
  /** adam/adamw (defaults 0.9, 0.999, 1e-8); weightDecay is decoupled in adamw (default 0.01). */
  readonly beta1?: number;
  readonly beta2?: number;
  readonly eps?: number;
  readonly weightDecay?: number;
  readonly schedule?: ScheduleSpec;
  /** Linear warm-up over this many steps, before the schedule. */
  readonly warmupSteps?: number;
  /**
   * Per-scope learning-rate multipliers (PyTorch's param groups): a key is a
   * scope or a param name (`block1`, `block1.attn`, `head.W`); a param takes
   * the multiplier of the longest key that is its name or a prefix of it
   * ending at a dot, else 1. Its update uses lr × multiplier.
   */
  readonly lrMultipliers?: Readonly<Record<string, number>>;
}

/** One optimizer-state buffer (Adam's m and v, momentum's velocity) of one param. */
export interface StateEntry extends Slot {
  readonly param: string;
  readonly slot: "m" | "v" | "velocity";
}

/** Data for the generated trainer (see runtime/data.ts). */
export type DataSpec =
  | {
      readonly kind: "mnist";
      /** Examples for training and for testing, drawn without overlap from the package's 10,000. */
      readonly train: number;
      readonly test: number;
      readonly seed?: number;
      /** Graph input names for the images ([N, 784] f32 in [0, 1]) and labels ([N] i32). */
      readonly images: string;
      readonly labels: string;
      /** Training-time augmentation: shift each training image by up to `shift` pixels along each axis. */
      readonly augment?: { readonly shift: number };
    }
  | {
      readonly kind: "arrays";
      /** A safetensors file in the bundle, one tensor per graph input, first axis = examples. */
      readonly file: string;
      /** Fraction held out for testing (default 0). */
      readonly testFraction?: number;
      readonly seed?: number;
    };

export interface TrainingSpec {
  readonly data: DataSpec;
  readonly epochs?: number;
  readonly steps?: number;
  readonly shuffle?: boolean;
  readonly seed?: number;
  /** Accuracy of argmax(output) against integer labels, on the test split. */
  readonly accuracy?: { readonly output: string; readonly labels: string };
  readonly logEvery?: number;
  readonly checkpointEvery?: number;
  /** Log every trainable param's gradient norm every N steps (logs/grad_norms.csv); 0 = off. */
  readonly gradNormEvery?: number;
}

export interface KernelEntry {
  readonly name: string;
  /** The graph node it computes, as printed, and the user's file:line. */
  readonly node: string;
  readonly src?: string;
  /** Which entry points run it. */
  readonly entry: readonly ("forward" | "gradients" | "update")[];
  /** The params whose gradient depends on this kernel (for `gradc inspect --grad`). */
  readonly gradOf?: readonly string[];
  /** The slots it writes, each with the printed name of the value it holds (read by --check-numerics). */
  readonly writes?: readonly WriteSlot[];
  /** Every graph node a fused kernel computes, in execution order (absent when it computes one). */
  readonly nodes?: readonly FusedNode[];
}

/** One node inside a fused kernel: its printed binding, its op and the user's file:line. */
export interface FusedNode {
  readonly node: string;
  readonly op: string;
  readonly src?: string;
}

/** A slot a kernel writes; `label` names the value it holds (a node's printed name, a param, `m(W1)`). */
export interface WriteSlot extends Slot {
  readonly label?: string;
}

/**
 * A next-token predictor's generation entry: a forward-only bundle compiled
 * for batch 1 in the folder `bundle` (inside this one) that reads token ids
 * from `input` [1, context] and writes `output` logits [1, context, vocab];
 * it takes this bundle's weights by param name.
 */
export interface GenerateSpec {
  readonly bundle: string;
  readonly input: string;
  readonly output: string;
  readonly context: number;
  /** Token id → text; a character-level model has one character per token. */
  readonly vocab: readonly string[];
  /** The token a generation with an empty prompt starts from. */
  readonly start?: string;
  /** A generation step with a key/value cache (see CachedStepSpec). */
  readonly cached?: CachedStepSpec;
}

/**
 * A forward-only bundle in the folder `bundle` that extends a text by one
 * token: its id in `input` [1, 1] and its position in `index` [1] (both i32),
 * the next token's logits in `output` [1, 1, vocab]. Each cache's `output` is
 * fed back to its `input` at the next step; all are zeros at position 0.
 */
export interface CachedStepSpec {
  readonly bundle: string;
  readonly input: string;
  readonly index: string;
  readonly output: string;
  readonly caches: readonly { readonly input: string; readonly output: string }[];
}

/**
 * Mixed precision: params, gradients and optimizer state are f32; the
 * kernels keep activations, saved activations and their gradients as
 * bfloat16 and compute in f32. The backward pass starts from the loss scale
 * S (hyper.lossScale) and divides each gradient by S: a step whose gradients
 * are not finite is skipped and S halved; after `growthInterval` good steps
 * in a row S doubles.
 */
export interface MixedSpec {
  readonly storage: "bf16";
  /** S at the first step (a power of two). */
  readonly initialScale: number;
  readonly growthInterval: number;
}

export interface Manifest {
  readonly format: typeof FORMAT_NAME;
  readonly version: number;
  readonly name: string;
  /** The runtime device the kernels run on (runtime/devices.ts): "ts" and "wasm" run on host arrays. */
  readonly backend: string;
  /** Present when compiled with backend "auto": `backend` is what it picked on the compiling machine, `reason` why. */
  readonly backendChoice?: { readonly asked: "auto"; readonly reason: string };
  /** Float precision of the F arena. */
  readonly dtype: "f32" | "f64";
  /** Elements of each arena; `halves`: of each kernel module's own bfloat16 arena H (mixed precision). */
  readonly arena: { readonly floats: number; readonly ints: number; readonly halves?: number };
  /** Present when compiled with precision "mixed" (see MixedSpec). */
  readonly mixed?: MixedSpec;
  /** Both arenas in bytes, as the compiler's static memory plan laid them out (optional). */
  readonly peakBytes?: number;
  /** Temporaries the forward pass leaves for the backward pass (optional). */
  readonly savedActivations?: { readonly count: number; readonly bytes: number };
  readonly inputs: readonly InputEntry[];
  readonly params: readonly ParamEntry[];
  /** Forward outputs (what `predict` returns). */
  readonly outputs: readonly OutputEntry[];
  /** The scalar loss, after `gradients()` or `step()`. */
  readonly loss?: Slot;
  readonly optimizer: OptimizerSpec;
  /** Global-norm gradient clipping threshold, if any. */
  readonly gradClip?: number;
  readonly state: readonly StateEntry[];
  /**
   * Scalars the runtime writes before each `step()`: the learning rate, the
   * 1-based step count, (mixed precision) the loss scale, and (a graph with
   * random ops) the run's seed they draw from with the step count.
   */
  readonly hyper: { readonly lr: Slot; readonly step: Slot; readonly lossScale?: Slot; readonly seed?: Slot };
  readonly kernels: readonly KernelEntry[];
  /** Files of the bundle, relative to its folder. */
  readonly files: {
    readonly forward: string;
    readonly step: string;
    readonly weights: string;
    readonly trainer: string;
    /** The gpu.js kernel module of a gpu bundle (manifest.backend "gpu"). */
    readonly gpu?: string;
  };
  readonly training?: TrainingSpec;
  /** Present when the model predicts the next token (`trainer.generate`, `gradc sample`). */
  readonly generate?: GenerateSpec;
  /** The sha256 of every file the compiler wrote (manifest.json aside), by path: load() checks them. */
  readonly hashes?: Readonly<Record<string, string>>;
  /** The sha256 of the forward graph (printed, without source lines): checkpoints record it. */
  readonly graphHash?: string;
  /** The sha256 of this manifest's compact JSON without this field (see manifestDigest). */
  readonly digest?: string;
}

/**
 * What forward.js exports: `create(F, I)` binds the kernels to the arenas.
 * forward() reads the `forward` inputs and params and writes the outputs.
 */
export interface ForwardModule {
  create(F: Float32Array | Float64Array, I: Int32Array): { forward(): void };
}

/**
 * What step.js exports. gradients() computes the loss and every grad slot;
 * update() applies gradient clipping and the optimizer update in place from
 * the grad slots, using the lr and step count the runtime wrote into `hyper`;
 * step() is gradients() then update(). Data-parallel training averages the
 * grad slots over the ranks between the two.
 */
export interface StepModule {
  create(F: Float32Array | Float64Array, I: Int32Array): { gradients(): void; update(): void; step(): void };
}
