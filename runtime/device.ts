// The Device: where a loaded bundle's buffers live and its kernels run. The
// trainer, checkpoints, --check-numerics and `gradc check` reach a bundle's
// memory only through it, so a backend whose buffers are not host arrays (a
// GPU's) fits behind the same interface. runtime/devices.ts picks one by
// manifest.backend.
import type { Slot } from "./manifest.js";
import type { SlotView } from "./arena.js";

/** A value now (a host device) or later (a device that works asynchronously). */
export type MaybePromise<T> = T | Promise<T>;

/**
 * What a device runs: an entry point of the bundle.
 * - `forward`: the forward kernels (predict), reading the `forward` inputs;
 * - `gradients`: the loss and every gradient slot, reading the `train` inputs;
 * - `update`: the optimizer's update kernels alone, reading the gradient slots
 *   and the hyper slots (so gradients can be changed in between, e.g. all-reduced);
 * - `step`: `gradients` then `update`, as one call.
 */
export type EntryPoint = "forward" | "gradients" | "update" | "step";

/** The kernel lists a device can run one kernel at a time (`step` is `gradients` + `update`). */
export type KernelList = Exclude<EntryPoint, "step">;

/**
 * A bundle's buffers and kernels on one backend. Slots are the manifest's
 * (inputs, params, gradients, outputs, optimizer state, hyper scalars).
 * Writes are queued in order before the next run and never return a promise;
 * runs and reads may (see `synchronous`). Callers check values at the
 * boundary (shapes, dtypes, lengths) before they reach a device.
 */
export interface Device {
  /** The manifest's backend name this device runs. */
  readonly backend: string;
  /** True when `run`, `runKernel`, `read`, `scalar` and `norm` return plain values, never promises. */
  readonly synchronous: boolean;
  /** Overwrites a slot with `values` (exactly its number of elements). */
  write(slot: Slot, values: ArrayLike<number>): void;
  /** Overwrites a one-element slot (the learning rate, the step count). */
  writeScalar(slot: Slot, value: number): void;
  /** A copy of a slot's elements, owned by the caller. */
  read(slot: Slot): MaybePromise<SlotView>;
  /** A one-element slot's value (the loss). */
  scalar(slot: Slot): MaybePromise<number>;
  /** The L2 norm of a slot's elements (a gradient's norm). */
  norm(slot: Slot): MaybePromise<number>;
  /** Runs every kernel of an entry point, in order. */
  run(entry: EntryPoint): MaybePromise<void>;
  /** The names of a kernel list's kernels, in execution order. */
  kernels(list: KernelList): readonly string[];
  /** Runs one kernel (by its manifest name). */
  runKernel(name: string): MaybePromise<void>;
  /**
   * Runs a fused kernel in its checked form, when the bundle has one (else
   * returns false and runs nothing): the same results, and `flags[i]` set to 1
   * where the kernel's i-th node (manifest `nodes`) made NaN or infinity out of
   * finite operands. --check-numerics uses it to name the node that did.
   */
  runKernelChecked?(name: string, flags: Uint8Array): MaybePromise<boolean>;
  /**
   * Releases what the device holds outside the JavaScript heap (a GPU's
   * buffers and, once no device uses it, the GPU itself, so Node can exit;
   * a host device's worker threads, after which it runs on one thread).
   * A GPU device is unusable afterwards.
   */
  close?(): MaybePromise<void>;
  /** Threads its kernels run on, the calling one included (absent: one). */
  readonly threads?: number;
  /** What its kernels run on when it is not the host: a GPU's WebGPU adapter or WebGL2 renderer. */
  readonly adapter?: string;
}

/** What a device is made with beyond its bundle. */
export interface DeviceOptions {
  /** Threads the kernels may run on, the calling one included (default 1). */
  readonly threads?: number;
}

/**
 * A device whose buffers are host typed arrays: everything completes before
 * it returns, and `write`, `writeScalar`, `scalar`, `norm` and `run` allocate
 * nothing, so a training step allocates nothing.
 */
export interface HostDevice extends Device {
  readonly synchronous: true;
  read(slot: Slot): SlotView;
  scalar(slot: Slot): number;
  norm(slot: Slot): number;
  run(entry: EntryPoint): void;
  runKernel(name: string): void;
  /** A live view (no copy) of a slot: valid until the device is dropped; writing it writes the slot. */
  view(slot: Slot): SlotView;
}

/** True for a device that completes every call before returning. */
export function isHostDevice(device: Device): device is HostDevice {
  return device.synchronous && typeof (device as Partial<HostDevice>).view === "function";
}

/** The error of a synchronous call (`step(batch)`) on a device that works asynchronously: it names the Async form. */
export function notSynchronous(device: Device, call: string): Error {
  return new Error(`${call}: the "${device.backend}" device runs asynchronously; use await ${call.replace("(", "Async(")}`);
}

/** A device's result when it must be there now (the synchronous forms of the trainer's methods). */
export function now<T>(value: MaybePromise<T>, device: Device, call: string): T {
  if (value instanceof Promise) {
    // nothing will wait for it: keep a failure from going unhandled
    value.catch(() => {});
    throw notSynchronous(device, call);
  }
  return value;
}
