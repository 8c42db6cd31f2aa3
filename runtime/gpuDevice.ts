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
  /** The GPUBuffer (WebGPU); absent on WebGL2. */
  readonly buffer?: unknown;
  toArray(): Promise<Float32Array | number[]>;
  delete(): void;
}

type Kernel = IKernelRunShortcut & ((...args: unknown[]) => Promise<Handle>);

/** The WebGPU objects the device records a dispatch with (a GPUDevice's, a pass's). */
interface WebGpuQueue {
  writeBuffer(buffer: unknown, offset: number, data: Float32Array): void;
  submit(buffers: unknown[]): void;
}
interface WebGpuPass {
  setPipeline(pipeline: unknown): void;
  setBindGroup(index: number, group: unknown): void;
  dispatchWorkgroups(x: number, y: number, z: number): void;
  end(): void;
}
interface WebGpuEncoder {
  beginComputePass(): WebGpuPass;
  finish(): unknown;
}
interface WebGpuDevice {
  readonly queue: WebGpuQueue;
  createCommandEncoder(): WebGpuEncoder;
  createBindGroup(descriptor: { layout: unknown; entries: { binding: number; resource: { buffer: unknown } }[] }): unknown;
}

/**
 * What a built gpu.js WebGPU kernel holds (gpu.js 2.24): its pipeline, the
 * layout of its bindings (binding 0 its uniform parameters, then one storage
 * buffer per array argument, its output, its array constants) and the size
 * of its dispatch. The uniform parameters (argument sizes, scalar
 * arguments) are what gpu.js wrote on its own run; the device's kernels
 * always take the same sizes and scalars, so they stay valid.
 */
interface WebGpuKernel {
  readonly built?: boolean;
  readonly _device?: WebGpuDevice;
  readonly computePipeline?: unknown;
  readonly bindGroupLayout?: unknown;
  readonly paramsBuffer?: unknown;
  readonly outputBuffer?: unknown;
  readonly threadDim?: number[];
  readonly paramsLayout?: { randomSeedOffset: number | null; arrayArgs: { index: number; buffer?: unknown }[]; bufferConstants: { buffer?: unknown }[] };
  _computeDispatch?(threadDim: number[]): { groups: number[] };
}

/** One of a PingPong's kernels as the device dispatches it itself: its bind groups by the buffers bound, the last few. */
interface Direct {
  readonly device: WebGpuDevice;
  readonly queue: WebGpuQueue;
  readonly kernel: WebGpuKernel;
  readonly groups: readonly [number, number, number];
  /** The buffers of the arguments for this dispatch (scratch). */
  readonly bound: unknown[];
  readonly cache: { buffers: unknown[]; group: unknown }[];
  next: number;
}

/** Bind groups kept per kernel: the arguments of the device's kernels alternate between two buffers each. */
const BIND_GROUPS = 4;

/** A gpu.js function as two kernels that take turns writing their own output buffers. */
class PingPong {
  private readonly kernels: Kernel[];
  private readonly outputs: (Handle | undefined)[] = [undefined, undefined];
  private readonly direct: (Direct | undefined)[] = [undefined, undefined];

  constructor(gpu: GPU, fn: GpuPartEntry["fn"] | string, size: number) {
    const make = () => gpu.createKernel(fn as never, { output: [size], pipeline: true }) as unknown as Kernel;
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

  /** The kernel whose output is not `current` (an argument may be it). */
  private side(current: Handle | undefined): number {
    return this.outputs[0] !== undefined && this.outputs[0] === current ? 1 : 0;
  }

  /** Runs the kernel whose output is not `current` through gpu.js (its first runs, and WebGL2). */
  async run(current: Handle | undefined, args: readonly unknown[]): Promise<Handle> {
    const i = this.side(current);
    const h = await this.kernels[i]!(...args);
    // the same output buffer each run: keep the first handle, let later ones go
    if (!this.outputs[i]) this.outputs[i] = h;
    this.direct[i] ??= PingPong.directOf(this.kernels[i]!);
    return this.outputs[i]!;
  }

  /** Whether both kernels ran through gpu.js on WebGPU, so that the device can dispatch them itself. */
  get ready(): boolean {
    return this.direct[0] !== undefined && this.direct[1] !== undefined;
  }

  /** A built WebGPU kernel's objects, or undefined (WebGL2, or gpu.js holds them elsewhere). */
  private static directOf(shortcut: Kernel): Direct | undefined {
    const k = (shortcut as unknown as { kernel?: WebGpuKernel }).kernel;
    if (!k?.built || !k._device || !k.computePipeline || !k.bindGroupLayout || !k.paramsBuffer || !k.outputBuffer || !k.paramsLayout || !k.threadDim || !k._computeDispatch) return undefined;
    // a kernel that draws random numbers gets a new seed from gpu.js on each run
    if (k.paramsLayout.randomSeedOffset !== null) return undefined;
    const [x = 1, y = 1, z = 1] = k._computeDispatch(k.threadDim).groups;
    return { device: k._device, queue: k._device.queue, kernel: k, groups: [x, y, z], bound: new Array<unknown>(k.paramsLayout.arrayArgs.length), cache: [], next: 0 };
  }

  /** The GPUDevice the kernels run on (once ready). */
  get device(): WebGpuDevice {
    return this.direct[0]!.device;
  }

  /**
   * Records into `pass` the kernel whose output is not `current`, on `args`
   * (pipeline results, or a Float32Array, written to the kernel's own
   * argument buffer now); `ready` must be true. Allocates only when a new
   * combination of buffers is bound (a bind group).
   */
  record(pass: WebGpuPass, current: Handle | undefined, args: readonly unknown[]): Handle {
    const i = this.side(current);
    const d = this.direct[i]!;
    const arrayArgs = d.kernel.paramsLayout!.arrayArgs;
    for (let j = 0; j < arrayArgs.length; j++) {
      const a = args[arrayArgs[j]!.index];
      if (a instanceof Float32Array) {
        d.queue.writeBuffer(arrayArgs[j]!.buffer, 0, a);
        d.bound[j] = arrayArgs[j]!.buffer;
      } else {
        d.bound[j] = (a as Handle).buffer;
      }
    }
    let group: unknown;
    for (let c = 0; c < d.cache.length && group === undefined; c++) {
      let same = true;
      for (let j = 0; j < d.bound.length && same; j++) same = d.cache[c]!.buffers[j] === d.bound[j];
      if (same) group = d.cache[c]!.group;
    }
    // no closure in this function: V8 would allocate its context on every call
    group ??= PingPong.bindGroup(d);
    pass.setPipeline(d.kernel.computePipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(d.groups[0], d.groups[1], d.groups[2]);
    return this.outputs[i]!;
  }

  /** A new bind group for the buffers in `d.bound`, kept in `d.cache` (in place of the oldest). */
  private static bindGroup(d: Direct): unknown {
    const { paramsBuffer, outputBuffer, bindGroupLayout, paramsLayout } = d.kernel;
    const entries = [{ binding: 0, resource: { buffer: paramsBuffer } }];
    d.bound.forEach((buffer, j) => entries.push({ binding: 1 + j, resource: { buffer } }));
    entries.push({ binding: 1 + d.bound.length, resource: { buffer: outputBuffer } });
    paramsLayout!.bufferConstants.forEach((c, j) => entries.push({ binding: 2 + d.bound.length + j, resource: { buffer: c.buffer } }));
    const group = d.device.createBindGroup({ layout: bindGroupLayout, entries });
    d.cache[d.next] = { buffers: [...d.bound], group };
    d.next = (d.next + 1) % BIND_GROUPS;
    return group;
  }
}

/** The upload kernel of `n` values at `at` of a root: the root with them replaced. */
function patchSource(at: number, n: number): string {
  return `function patch(old, vals) { const t = this.thread.x; if (t >= ${at} && t < ${at + n}) { return vals[t - ${at}]; } return old[t]; }`;
}

/** A slot's upload: its values, kept between writes, and the kernel that writes them into its root. */
interface Upload {
  readonly root: number;
  readonly data: Float32Array;
  readonly pp: PingPong;
  /** The kernel's arguments: the root's current values, then `data`. */
  readonly args: unknown[];
}

/** One gpu.js function of a kernel, with its argument list (filled in at each run). */
interface Part {
  readonly entry: GpuPartEntry;
  readonly pp: PingPong;
  readonly args: unknown[];
}

/**
 * The trainer's view of the device; `downloads` counts reads from the GPU.
 * After a kernel's first two runs (through gpu.js, which builds its
 * pipelines), the device records its dispatches itself: a run of a list is
 * one command buffer, the slot writes before it included, with bind groups
 * made once per combination of buffers; a step allocates no per-kernel
 * objects on the host.
 */
export class GpuDevice implements Device {
  readonly synchronous = false;
  /** Reads from the GPU since the device was made (a step makes none). */
  downloads = 0;
  /** Command buffers the device recorded itself (one per list run, once warm). */
  submits = 0;
  private readonly values: Handle[] = [];
  private readonly owned = new Set<Handle>();
  private readonly parts = new Map<string, Part[]>();
  /** Each slot's upload, by where the slot starts. */
  private readonly uploads: { F: Map<number, Upload>; I: Map<number, Upload> } = { F: new Map(), I: new Map() };
  /** Writes not on the GPU yet, in the order they were last written. */
  private readonly pending = new Set<Upload>();
  private readonly lists: Readonly<Record<KernelList, readonly string[]>>;
  private readonly stepList: readonly string[];
  private readonly byOffset: { F: Map<number, number>; I: Map<number, number> } = { F: new Map(), I: new Map() };
  private readonly results: Handle[] = [];
  private readonly commands: unknown[] = [undefined];
  private encoder: WebGpuEncoder | undefined;
  private pass: WebGpuPass | undefined;

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
    for (const k of mod.KERNELS) {
      this.parts.set(
        k.name,
        k.parts.map((entry) => ({ entry, pp: new PingPong(gpu, entry.fn, mod.ROOTS[entry.out]!.size), args: new Array<unknown>(entry.args.length + (entry.inf ? 1 : 0)).fill(Infinity) })),
      );
    }
    const inList = (list: KernelList) => manifest.kernels.filter((k) => k.entry.includes(list)).map((k) => k.name);
    this.lists = { forward: inList("forward"), gradients: inList("gradients"), update: inList("update") };
    this.stepList = [...this.lists.gradients, ...this.lists.update];
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

  /** The upload of `n` values into `slot`: made on its first write (and when the count changes), then reused. */
  private uploadOf(slot: Slot, n: number): Upload {
    let u = this.uploads[slot.arena].get(slot.offset);
    if (u?.data.length !== n) {
      const { root, at } = this.place(slot);
      u = { root, data: new Float32Array(n), pp: new PingPong(this.gpu, patchSource(at, n), this.mod.ROOTS[root]!.size), args: [undefined, undefined] };
      this.uploads[slot.arena].set(slot.offset, u);
    }
    return u;
  }

  /** Queues `u` (after every other queued write). */
  private queue(u: Upload): void {
    this.pending.delete(u);
    this.pending.add(u);
  }

  write(slot: Slot, values: ArrayLike<number>): void {
    const u = this.uploadOf(slot, values.length);
    u.data.set(values);
    this.queue(u);
  }

  writeScalar(slot: Slot, value: number): void {
    const u = this.uploadOf(slot, 1);
    u.data[0] = value;
    this.queue(u);
  }

  /** The compute pass the device records into (one command buffer until `submit`). */
  private recording(device: WebGpuDevice): WebGpuPass {
    if (!this.pass) {
      this.encoder = device.createCommandEncoder();
      this.pass = this.encoder.beginComputePass();
    }
    return this.pass;
  }

  /** Sends what was recorded to the GPU (before anything runs through gpu.js, and at the end of every call). */
  private submit(device: WebGpuDevice | undefined): void {
    if (!this.pass || !device) return;
    this.pass.end();
    this.commands[0] = this.encoder!.finish();
    this.gpuQueue ??= device.queue;
    this.gpuQueue.submit(this.commands);
    this.commands[0] = undefined;
    this.pass = this.encoder = undefined;
    this.submits++;
  }

  /** The GPUDevice, once any kernel is ready for the device to record, and its queue. */
  private webgpu: WebGpuDevice | undefined;
  private gpuQueue: WebGpuQueue | undefined;

  /** Records the queued writes; false (nothing recorded) when one of them has not run through gpu.js twice yet. */
  private recordUploads(): boolean {
    if (this.pending.size === 0) return true;
    for (const u of this.pending) if (!u.pp.ready) return false;
    for (const u of this.pending) {
      this.webgpu ??= u.pp.device;
      u.args[0] = this.values[u.root];
      u.args[1] = u.data;
      this.bind(u.root, u.pp.record(this.recording(this.webgpu), this.values[u.root], u.args));
    }
    this.pending.clear();
    return true;
  }

  /** Uploads the queued writes, in order. */
  private async flush(): Promise<void> {
    if (this.recordUploads()) return this.submit(this.webgpu);
    this.submit(this.webgpu);
    for (const u of this.pending) {
      this.pending.delete(u);
      u.args[0] = this.values[u.root];
      u.args[1] = u.data;
      this.bind(u.root, await u.pp.run(this.values[u.root], u.args));
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
    const names = entry === "step" ? this.stepList : this.lists[entry];
    for (let i = 0; i < names.length; i++) {
      const slow = this.runOne(names[i]!);
      if (slow) await slow;
    }
    this.submit(this.webgpu);
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
    const slow = this.runOne(name);
    if (slow) await slow;
    this.submit(this.webgpu);
  }

  /** Kernel `name`, the queued writes before it: recorded when all of them are ready, else run through gpu.js (returns a promise then only). */
  private runOne(name: string): Promise<void> | undefined {
    if (this.closed) throw new Error(`gpu: the device was closed; load the bundle again`);
    const parts = this.parts.get(name);
    if (!parts) throw new Error(`no kernel named ${name} in this bundle`);
    let ready = true;
    for (let i = 0; i < parts.length && ready; i++) ready = parts[i]!.pp.ready;
    if (!ready || !this.recordUploads()) return this.runThroughGpuJs(parts);
    const pass = this.recording(this.webgpu ?? parts[0]!.pp.device);
    this.webgpu ??= parts[0]!.pp.device;
    for (let i = 0; i < parts.length; i++) this.results[i] = parts[i]!.pp.record(pass, this.values[parts[i]!.entry.out], this.fill(parts[i]!));
    for (let i = 0; i < parts.length; i++) this.bind(parts[i]!.entry.out, this.results[i]!);
    return undefined;
  }

  /** A part's arguments: the roots' current values (then Infinity, left in place). */
  private fill(part: Part): unknown[] {
    const { args } = part.entry;
    for (let j = 0; j < args.length; j++) part.args[j] = this.values[args[j]!];
    return part.args;
  }

  /** A kernel's first runs (and every run on WebGL2): through gpu.js, which builds its pipelines. */
  private async runThroughGpuJs(parts: readonly Part[]): Promise<void> {
    await this.flush();
    for (let i = 0; i < parts.length; i++) this.results[i] = await parts[i]!.pp.run(this.values[parts[i]!.entry.out], this.fill(parts[i]!));
    for (let i = 0; i < parts.length; i++) this.bind(parts[i]!.entry.out, this.results[i]!);
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
