// The gpu device: a bundle of the gpu backend on WebGPU through gpu.js (in a
// page without a WebGPU adapter, on WebGL2: the same kernels, as gpu.js
// writes them in GLSL, on textures). Every device buffer (a "root": a buffer
// that is no view, or one param's piece of the params, gradients or an
// optimizer-state block) lives on the GPU as a gpu.js pipeline result for as
// long as the device does. A kernel is one gpu.js function per root it
// writes; its results are bound to their roots once all of them ran, so each
// reads the values from before the kernel. Each function has two gpu.js
// kernels that take turns, because a kernel may not read its own output
// buffer and an update reads the value it replaces. Nothing comes back to
// the host unless asked: `read`, `scalar` and `norm` download (and count it
// in `downloads`); a step uploads what was written and downloads nothing.
import type { GPU, IKernelRunShortcut } from "gpu.js";
import type { Manifest, Slot } from "./manifest.js";
import type { SlotView } from "./arena.js";
import { sizeOf } from "./arena.js";
import type { Device, EntryPoint, KernelList } from "./device.js";
import { moduleUrl } from "./hostDevice.js";
import { acquireGpu } from "./gpuAdapter.js";
import type { GpuKind } from "./gpuAdapter.js";

/** A device buffer of the bundle (a buffer that is no view), where the host arenas would hold it. */
export interface GpuRootEntry {
  readonly label: string;
  readonly arena: "F" | "I";
  readonly offset: number;
  readonly size: number;
  /** Values the device writes once when it loads (constants). */
  readonly fill?: readonly number[];
}

/** One gpu.js function of a kernel: the new value of root `out` from roots `args` (and Infinity when `inf`). */
export interface GpuPartEntry {
  readonly out: number;
  readonly args: readonly number[];
  readonly inf: boolean;
  readonly fn: (...args: never[]) => number;
}

/** What a gpu bundle's kernel module (kernels.gpu.js) exports. */
export interface GpuModule {
  readonly ROOTS: readonly GpuRootEntry[];
  readonly KERNELS: readonly { readonly name: string; readonly parts: readonly GpuPartEntry[] }[];
}

/** A gpu.js pipeline result: a buffer on the device. */
interface Handle {
  toArray(): Promise<Float32Array | number[]>;
  delete(): void;
}

type Kernel = IKernelRunShortcut & ((...args: unknown[]) => Promise<Handle>);

/** A gpu.js function as two kernels that take turns writing their own output buffers. */
class PingPong {
  private readonly kernels: Kernel[];
  private readonly outputs: (Handle | undefined)[] = [undefined, undefined];

  constructor(gpu: GPU, fn: GpuPartEntry["fn"] | string, size: number, dynamicArguments = false) {
    const make = () => gpu.createKernel(fn as never, { output: [size], pipeline: true, dynamicArguments }) as unknown as Kernel;
    this.kernels = [make(), make()];
  }

  /** The shader gpu.js generated for this function (WGSL on WebGPU), once it has run; undefined before. */
  shader(): string | undefined {
    for (const k of this.kernels) {
      const source = (k as unknown as { kernel?: { compiledSource?: unknown } }).kernel?.compiledSource;
      if (typeof source === "string") return source;
    }
    return undefined;
  }

  /** Runs the kernel whose output is not `current` (an argument may be it). */
  async run(current: Handle | undefined, args: readonly unknown[]): Promise<Handle> {
    const i = this.outputs[0] !== undefined && this.outputs[0] === current ? 1 : 0;
    const h = await this.kernels[i]!(...args);
    // the same output buffer each run: keep the first handle, let later ones go
    if (!this.outputs[i]) this.outputs[i] = h;
    return this.outputs[i]!;
  }
}

/** The upload kernel: a root with `n` values from `at` replaced. */
function patchSource(): string {
  return "function patch(old, vals, at, n) { const t = this.thread.x; if (t >= at && t < at + n) { return vals[t - at]; } return old[t]; }";
}

/** The trainer's view of the device; `downloads` counts reads from the GPU. */
export class GpuDevice implements Device {
  readonly synchronous = false;
  /** Reads from the GPU since the device was made (a step makes none). */
  downloads = 0;
  private readonly values: Handle[] = [];
  private readonly owned = new Set<Handle>();
  private readonly parts = new Map<string, { entry: GpuPartEntry; pp: PingPong }[]>();
  private readonly patches = new Map<number, PingPong>();
  private readonly pending: { root: number; at: number; data: Float32Array }[] = [];
  private readonly lists: Readonly<Record<KernelList, readonly string[]>>;
  private readonly byOffset: { F: Map<number, number>; I: Map<number, number> } = { F: new Map(), I: new Map() };

  private closed = false;
  /** What the kernels run on: "WebGPU: …" (its adapter) or, in a page without a WebGPU adapter, "WebGL2: …" (its renderer). */
  readonly adapter: string;

  private constructor(
    readonly backend: string,
    private readonly gpu: GPU,
    kind: GpuKind,
    private readonly release: () => Promise<void>,
    private readonly mod: GpuModule,
    manifest: Manifest,
  ) {
    this.adapter = kind.adapter;
    mod.ROOTS.forEach((r, i) => {
      for (let o = r.offset; o < r.offset + r.size; o++) if (!this.byOffset[r.arena].has(o)) this.byOffset[r.arena].set(o, i);
    });
    for (const k of mod.KERNELS) this.parts.set(k.name, k.parts.map((entry) => ({ entry, pp: new PingPong(gpu, entry.fn, mod.ROOTS[entry.out]!.size) })));
    const inList = (list: KernelList) => manifest.kernels.filter((k) => k.entry.includes(list)).map((k) => k.name);
    this.lists = { forward: inList("forward"), gradients: inList("gradients"), update: inList("update") };
  }

  /** Loads `mod` onto the GPU: every root uploaded (zeros, or its constant values). */
  static async create(manifest: Manifest, mod: GpuModule, gpu: GPU, kind: GpuKind, release: () => Promise<void> = async () => {}): Promise<GpuDevice> {
    const d = new GpuDevice(manifest.backend, gpu, kind, release, mod, manifest);
    const upload = gpu.createKernel(function (this: { thread: { x: number } }, a: number[]) {
      return a[this.thread.x]!;
    }, { dynamicOutput: true, dynamicArguments: true, pipeline: true, immutable: true }) as unknown as ((a: Float32Array) => Promise<Handle>) & { setOutput(o: number[]): void };
    for (const r of mod.ROOTS) {
      upload.setOutput([r.size]);
      const h = await upload(r.fill ? Float32Array.from(r.fill) : new Float32Array(r.size));
      d.values.push(h);
      d.owned.add(h);
    }
    return d;
  }

  /** The root holding a slot, and where in it. */
  private place(slot: Slot): { root: number; at: number } {
    const root = this.byOffset[slot.arena].get(slot.offset);
    if (root === undefined) throw new Error(`gpu: no device buffer holds ${slot.arena}[${slot.offset}]`);
    return { root, at: slot.offset - this.mod.ROOTS[root]!.offset };
  }

  write(slot: Slot, values: ArrayLike<number>): void {
    const { root, at } = this.place(slot);
    this.pending.push({ root, at, data: Float32Array.from(values as ArrayLike<number>) });
  }

  writeScalar(slot: Slot, value: number): void {
    const { root, at } = this.place(slot);
    this.pending.push({ root, at, data: Float32Array.of(value) });
  }

  /** Uploads the queued writes, in order. */
  private async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const w = this.pending.shift()!;
      let pp = this.patches.get(w.root);
      if (!pp) this.patches.set(w.root, (pp = new PingPong(this.gpu, patchSource(), this.mod.ROOTS[w.root]!.size, true)));
      this.bind(w.root, await pp.run(this.values[w.root], [this.values[w.root], w.data, w.at, w.data.length]));
    }
  }

  private bind(root: number, h: Handle): void {
    const old = this.values[root]!;
    if (old !== h && this.owned.delete(old)) old.delete();
    this.values[root] = h;
  }

  /** A root's values, downloaded. */
  private async download(root: number): Promise<Float32Array> {
    await this.flush();
    this.downloads++;
    const a = await this.values[root]!.toArray();
    return a instanceof Float32Array ? a : Float32Array.from(a);
  }

  async read(slot: Slot): Promise<SlotView> {
    const { root, at } = this.place(slot);
    const a = await this.download(root);
    const n = sizeOf(slot.shape);
    if (slot.arena === "I") return Int32Array.from(a.subarray(at, at + n));
    return a.slice(at, at + n);
  }

  async scalar(slot: Slot): Promise<number> {
    const { root, at } = this.place(slot);
    return (await this.download(root))[at]!;
  }

  async norm(slot: Slot): Promise<number> {
    const v = await this.read(slot);
    let sq = 0;
    for (let i = 0; i < v.length; i++) sq += v[i]! * v[i]!;
    return Math.sqrt(sq);
  }

  async run(entry: EntryPoint): Promise<void> {
    const names = entry === "step" ? [...this.lists.gradients, ...this.lists.update] : this.lists[entry];
    for (const n of names) await this.runKernel(n);
  }

  kernels(list: KernelList): readonly string[] {
    return this.lists[list];
  }

  /**
   * The shaders gpu.js generated for kernel `name` (WGSL on WebGPU), one per
   * function, named by the function. gpu.js generates them when a kernel first
   * runs, so a kernel not run yet runs once here, on the values the device holds.
   */
  async shaders(name: string): Promise<{ fn: string; source: string }[]> {
    const parts = this.parts.get(name);
    if (!parts) throw new Error(`no kernel named ${name} in this bundle`);
    if (parts.some(({ pp }) => pp.shader() === undefined)) await this.runKernel(name);
    return parts.map(({ entry, pp }) => ({ fn: entry.fn.name, source: pp.shader() ?? "" }));
  }

  /** Frees this device's buffers; the last gpu device to close releases WebGPU (see acquireGpu). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const h of this.owned) h.delete();
    this.owned.clear();
    await this.release();
  }

  async runKernel(name: string): Promise<void> {
    if (this.closed) throw new Error(`gpu: the device was closed; load the bundle again`);
    const parts = this.parts.get(name);
    if (!parts) throw new Error(`no kernel named ${name} in this bundle`);
    await this.flush();
    const results: Handle[] = [];
    for (const { entry, pp } of parts) {
      const args: unknown[] = entry.args.map((r) => this.values[r]);
      if (entry.inf) args.push(Infinity);
      results.push(await pp.run(this.values[entry.out], args));
    }
    parts.forEach(({ entry }, i) => this.bind(entry.out, results[i]!));
  }
}

/** The device factory of manifest.backend "gpu": loads kernels.gpu.js and puts the bundle on the GPU. */
export async function createGpuDevice(manifest: Manifest, dir: string): Promise<Device> {
  const file = manifest.files.gpu;
  if (!file) throw new Error(`${dir}/manifest.json: a gpu bundle must list its gpu.js kernel module in files.gpu; recompile the model`);
  const { gpu, kind, release } = await acquireGpu();
  try {
    let mod: GpuModule;
    try {
      mod = (await import(/* @vite-ignore */ moduleUrl(dir, file, manifest))) as GpuModule;
    } catch (e) {
      throw new Error(`${dir}/${file}: cannot load it as a gpu kernel module (${(e as Error).message}); recompile the model`);
    }
    if (!Array.isArray(mod.ROOTS) || !Array.isArray(mod.KERNELS)) throw new Error(`${dir}/${file}: exports no ROOTS and KERNELS; recompile the model`);
    return await GpuDevice.create(manifest, mod, gpu, kind, release);
  } catch (e) {
    await release();
    throw e;
  }
}
