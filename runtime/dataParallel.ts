// Data-parallel training with DDP semantics: every rank holds the whole
// model, computes gradients on its shard of the global batch, and the
// gradient block is all-reduced in place (mean) before the same update runs
// on every rank. Params start as rank 0's and are checked to stay identical.
// On a host device the collectives work on live views of its arrays; on a
// device whose buffers live elsewhere (a GPU's) they go through host copies.
import type { Manifest, Slot } from "./manifest.js";
import type { FloatArray } from "./arena.js";
import { sizeOf } from "./arena.js";
import type { Device } from "./device.js";
import { isHostDevice } from "./device.js";
import type { Communicator } from "./mpi.js";

/** Options of data-parallel training (`load(dir, { dataParallel })`). */
export interface DataParallelOptions {
  readonly communicator: Communicator;
  /** Check every N updates that the params are bit-identical on every rank (default 100; 0: only when asked). */
  readonly checkEvery?: number;
}

/** What the all-reduces of the gradients have cost so far (this rank's view). */
export interface AllReduceStats {
  /** Bytes of gradients all-reduced per update. */
  readonly bytesPerStep: number;
  /** MPI calls per update (1 when the gradient block is contiguous). */
  readonly callsPerStep: number;
  readonly steps: number;
  /** Seconds spent in the gradient all-reduces (including waiting for slower ranks). */
  readonly seconds: number;
}

/** Raised on every rank when the params differ between ranks. */
export class ReplicaDivergence extends Error {
  override readonly name = "ReplicaDivergence";
}

/**
 * The gradient storage as few contiguous ranges as possible: the compiler
 * lays every trainable param's gradient out in one block, so this is one
 * range; a bundle that does not gets one range per run of adjacent slots.
 */
export function gradientRanges(manifest: Manifest): { offset: number; length: number }[] {
  const slots = manifest.params.flatMap((p) => (p.grad ? [p.grad] : [])).sort((a, b) => a.offset - b.offset);
  const ranges: { offset: number; length: number }[] = [];
  for (const s of slots) {
    if (s.arena !== "F") throw new Error(`manifest.json: a gradient lies in the ${s.arena} arena; data-parallel training all-reduces the F arena`);
    const last = ranges[ranges.length - 1];
    const n = sizeOf(s.shape);
    if (last && last.offset + last.length === s.offset) last.length += n;
    else if (last && s.offset < last.offset + last.length) throw new Error(`manifest.json: gradients overlap at F[${s.offset}]`);
    else ranges.push({ offset: s.offset, length: n });
  }
  return ranges;
}

/** FNV-1a over the bits of a float array, continuing from `h`. */
function hashBits(values: FloatArray, h: number): number {
  const words = new Uint32Array(values.buffer, values.byteOffset, values.byteLength / 4);
  for (let i = 0; i < words.length; i++) h = Math.imul(h ^ words[i]!, 0x01000193) >>> 0;
  return h;
}

/**
 * A device slot on the host: a live view on a host device, else a host
 * buffer that `fetch` fills from the device and `store` writes back.
 */
class Staged {
  readonly host: FloatArray;
  private readonly live: boolean;

  constructor(
    private readonly device: Device,
    private readonly slot: Slot,
    dtype: Manifest["dtype"],
  ) {
    this.live = isHostDevice(device);
    if (isHostDevice(device)) this.host = device.view(slot) as FloatArray;
    else this.host = dtype === "f64" ? new Float64Array(sizeOf(slot.shape)) : new Float32Array(sizeOf(slot.shape));
  }

  /** The device's current values, on the host. */
  fetch(): FloatArray {
    if (!this.live) {
      const values = this.device.read(this.slot);
      if (values instanceof Promise) throw new Error(`data-parallel training needs a synchronous device; the "${this.device.backend}" device's read returned a promise`);
      this.host.set(values);
    }
    return this.host;
  }

  /** Writes the host values back to the device (nothing to do on a host device). */
  store(): void {
    if (!this.live) this.device.write(this.slot, this.host);
  }
}

/** One rank's side of data-parallel training over a loaded bundle's device. */
export class DataParallel {
  readonly rank: number;
  readonly size: number;
  readonly checkEvery: number;
  private readonly comm: Communicator;
  private readonly grads: Staged[];
  private readonly replicated: Staged[];
  private readonly scalar = new Float64Array(2);
  private seconds = 0;
  private steps = 0;

  constructor(
    private readonly manifest: Manifest,
    device: Device,
    options: DataParallelOptions,
  ) {
    if (!device.synchronous) throw new Error(`data-parallel training needs a synchronous device; the "${device.backend}" device runs asynchronously`);
    const comm = (this.comm = options.communicator);
    this.rank = comm.rank;
    this.size = comm.size;
    this.checkEvery = options.checkEvery ?? 100;
    if (!(Number.isInteger(this.checkEvery) && this.checkEvery >= 0)) throw new Error(`dataParallel.checkEvery must be a whole number ≥ 0 (got ${this.checkEvery})`);
    // the gradient block, all-reduced in place (host staging on other devices)
    this.grads = gradientRanges(manifest).map((r) => new Staged(device, { arena: "F", offset: r.offset, shape: [r.length], dtype: manifest.dtype }, manifest.dtype));
    // what must match on every rank: params and optimizer state
    const slots: Slot[] = [...manifest.params, ...manifest.state];
    this.replicated = slots.filter((s) => s.arena === "F").map((s) => new Staged(device, s, manifest.dtype));
  }

  /** Makes every rank's params and optimizer state rank 0's, and returns rank 0's `step`. Collective. */
  broadcastState(step: number): number {
    for (const v of this.replicated) {
      this.comm.broadcast(v.fetch(), 0);
      v.store();
    }
    this.scalar[0] = step;
    this.comm.broadcast(this.scalar.subarray(0, 1), 0);
    return this.scalar[0]!;
  }

  /** Averages the gradient block over the ranks, in place. Collective. */
  reduceGradients(): void {
    const t0 = performance.now();
    for (const g of this.grads) this.comm.allReduceSum(g.fetch());
    this.seconds += (performance.now() - t0) / 1000;
    this.steps++;
    const k = 1 / this.size;
    for (const g of this.grads) {
      const h = g.host;
      for (let i = 0; i < h.length; i++) h[i]! *= k;
      g.store();
    }
  }

  /** The mean of a per-rank value (each rank's loss over its shard) over the ranks. Collective. */
  mean(x: number): number {
    return this.sum(x) / this.size;
  }

  /** The sum of a per-rank value over the ranks. Collective. */
  sum(x: number): number {
    const s = this.scalar.subarray(0, 1);
    s[0] = x;
    this.comm.allReduceSum(s);
    return s[0]!;
  }

  /**
   * Throws a ReplicaDivergence on every rank unless every rank's params and
   * optimizer state are bit-identical (an all-reduced hash); returns the hash. Collective.
   */
  checkReplicas(step: number): number {
    let h = 0x811c9dc5;
    for (const v of this.replicated) h = hashBits(v.fetch(), h);
    // max of (h, −h) gives the largest and the smallest hash at once
    this.scalar[0] = h;
    this.scalar[1] = -h;
    this.comm.allReduceMax(this.scalar);
    const hi = this.scalar[0]!;
    const lo = -this.scalar[1]!;
    if (hi !== lo) {
      throw new ReplicaDivergence(
        `the params of the ${this.size} ranks differ after step ${step} (hash ${h.toString(16)} on rank ${this.rank}, between ${lo.toString(16)} and ${hi.toString(16)} over all ranks): every rank must run the same bundle on the same gradients; check that all ranks load the same bundle folder`,
      );
    }
    return h;
  }

  /** The all-reduce cost so far. */
  stats(): AllReduceStats {
    const floats = this.grads.reduce((n, g) => n + g.host.length, 0);
    return { bytesPerStep: floats * (this.manifest.dtype === "f64" ? 8 : 4), callsPerStep: this.grads.length, steps: this.steps, seconds: this.seconds };
  }
}
