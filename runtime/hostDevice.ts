// The host device of the "ts" and "wasm" backends: two arenas of host typed
// arrays (F for floats, I for i32/bool) and the emitted forward.js and step.js
// bound to them by their `create(F, I)`.
import type { ForwardModule, Manifest, Slot, StepModule } from "./manifest.js";
import type { Arenas, FloatArray, SlotView } from "./arena.js";
import { sizeOf, slotView } from "./arena.js";
import type { DeviceOptions, EntryPoint, HostDevice, KernelList } from "./device.js";
import type { PoolStarter, ProductThreads } from "./wasmThreads.js";
import { threadProducts, wasmProductsOf } from "./wasmThreads.js";

/** One emitted kernel: reads and writes the arenas at fixed offsets. */
export type KernelFn = (F: FloatArray, I: Int32Array) => void;

/** What forward.js and step.js export as `KERNELS`: the kernels in execution order, by name. */
export type KernelTable = readonly (readonly [string, KernelFn])[];

/** A fused kernel's checked form: also sets flags[i] where its i-th node made NaN or infinity (see Device.runKernelChecked). */
export type CheckedFn = (F: FloatArray, I: Int32Array, flags: Uint8Array) => void;

/** A module's `CHECKED` table (absent in bundles compiled before it), checked; `file` names it in errors. */
function checkedTableOf(mod: unknown, file: string): (readonly [string, CheckedFn])[] {
  const table = (mod as { CHECKED?: unknown }).CHECKED;
  if (table === undefined) return [];
  if (!Array.isArray(table) || !table.every((row) => Array.isArray(row) && typeof row[0] === "string" && typeof row[1] === "function")) {
    throw new Error(`${file}: CHECKED must list [name, function] pairs`);
  }
  return table as (readonly [string, CheckedFn])[];
}

/** A module's `KERNELS`, checked; `file` names it in errors. */
export function kernelTableOf(mod: unknown, file: string): KernelTable {
  const table = (mod as { KERNELS?: unknown }).KERNELS;
  if (!Array.isArray(table)) {
    throw new Error(`${file}: exports no KERNELS list, which running kernels one at a time (--check-numerics, the update alone) needs; recompile the model with this version of gradc`);
  }
  for (const row of table) {
    if (!Array.isArray(row) || typeof row[0] !== "string" || typeof row[1] !== "function") {
      throw new Error(`${file}: KERNELS must list [name, function] pairs`);
    }
  }
  return table as KernelTable;
}

/**
 * A fresh arena F for a manifest: f64, or an f32 arena in the first kernel
 * module's WebAssembly memory that offers one (`WASM.arena`: its elementwise
 * and row loops then run in place), else a plain Float32Array.
 */
export function floatArena(manifest: Pick<Manifest, "dtype" | "arena">, ...mods: unknown[]): FloatArray {
  const floats = manifest.arena.floats;
  if (manifest.dtype === "f64") return new Float64Array(floats);
  for (const mod of mods) {
    const arena = (mod as { WASM?: { arena?: (floats: number) => Float32Array | undefined } } | undefined)?.WASM?.arena?.(floats);
    if (arena) return arena;
  }
  return new Float32Array(floats);
}

/** Loads of bundles without digests, to version their modules' URLs. */
let unversioned = 0;

/**
 * The URL to import a bundle module from. `dir` is a folder path (Node) or an
 * absolute URL (a browser). The URL carries the file's recorded digest: a
 * module is cached by URL for the life of the process or page, and a
 * recompiled bundle must run its new kernels (a bundle without digests gets a
 * fresh URL on every load).
 */
export function moduleUrl(dir: string, rel: string, manifest: Manifest): string {
  const base = /^[a-z][a-z0-9+.-]*:\/\//i.test(dir) ? dir : `file://${dir.split("/").map(encodeURIComponent).join("/")}`;
  const url = new URL(rel.split("/").map(encodeURIComponent).join("/"), `${base}/`);
  url.search = `v=${manifest.hashes?.[rel] ?? `load${++unversioned}`}`;
  return url.href;
}

/** Imports a kernel module of the bundle and checks that it exports `create`. */
async function importKernels<T>(dir: string, file: string, manifest: Manifest): Promise<T> {
  const path = `${dir}/${file}`;
  let mod: { create?: unknown };
  try {
    mod = (await import(/* @vite-ignore */ moduleUrl(dir, file, manifest))) as { create?: unknown };
  } catch (e) {
    throw new Error(`${path}: cannot load it as a kernel module (${(e as Error).message}); recompile the model`);
  }
  if (typeof mod.create !== "function") throw new Error(`${path}: does not export create(F, I)`);
  return mod as T;
}

/** The kernels of each list, bound once on first use. */
interface KernelLists {
  readonly byName: ReadonlyMap<string, KernelFn>;
  readonly checked: ReadonlyMap<string, CheckedFn>;
  readonly names: Readonly<Record<KernelList, readonly string[]>>;
  readonly update: readonly KernelFn[];
}

/** Host device options: how many threads, and the platform's pool of them (without one, every kernel runs on the calling thread). */
export interface HostDeviceOptions extends DeviceOptions {
  readonly startPool?: PoolStarter;
}

/**
 * Loads the kernel modules of the bundle in `dir` into a host device with
 * freshly allocated arenas. `create(F, I)` writes the bundle's constants, so
 * the arenas are ready once this resolves (the params still to be filled).
 * With `threads` > 1 and a pool starter, a "wasm" bundle's WebAssembly
 * products are split across worker threads (runtime/wasmThreads.ts).
 */
export async function createHostDevice(manifest: Manifest, dir: string, options: HostDeviceOptions = {}): Promise<HostDevice> {
  const forwardMod = await importKernels<ForwardModule>(dir, manifest.files.forward, manifest);
  const stepMod = await importKernels<StepModule>(dir, manifest.files.step, manifest);
  const [forwardWasm, stepWasm] = [wasmProductsOf(forwardMod, `${dir}/${manifest.files.forward}`), wasmProductsOf(stepMod, `${dir}/${manifest.files.step}`)];
  // in the step module's memory (else the forward module's) where it offers one
  const F = floatArena(manifest, stepMod, forwardMod);
  const arenas: Arenas = { F, I: new Int32Array(manifest.arena.ints) };
  const forward = forwardMod.create(F, arenas.I);
  const step = stepMod.create(F, arenas.I);
  const threads = options.threads ?? 1;
  const units = [forwardWasm, stepWasm].filter((u) => u !== undefined);
  const pool = options.startPool ? await threadProducts(units, threads, options.startPool) : undefined;
  let lists: KernelLists | undefined;
  const kernelLists = (): KernelLists => {
    if (lists) return lists;
    const forwardTable = kernelTableOf(forwardMod, `${dir}/${manifest.files.forward}`);
    const stepTable = kernelTableOf(stepMod, `${dir}/${manifest.files.step}`);
    const entries = new Map(manifest.kernels.map((k) => [k.name, k]));
    const inList = (table: KernelTable, file: string, list: KernelList): string[] =>
      table
        .filter(([name]) => {
          const entry = entries.get(name);
          if (!entry) throw new Error(`${dir}/${file}: kernel ${name} is not in the manifest's kernel list`);
          return entry.entry.includes(list);
        })
        .map(([name]) => name);
    const byName = new Map<string, KernelFn>([...forwardTable, ...stepTable]);
    const names = {
      forward: inList(forwardTable, manifest.files.forward, "forward"),
      gradients: inList(stepTable, manifest.files.step, "gradients"),
      update: inList(stepTable, manifest.files.step, "update"),
    };
    const checked = new Map([...checkedTableOf(forwardMod, `${dir}/${manifest.files.forward}`), ...checkedTableOf(stepMod, `${dir}/${manifest.files.step}`)]);
    lists = { byName, checked, names, update: names.update.map((n) => byName.get(n)!) };
    return lists;
  };
  return new ArenaDevice(manifest.backend, arenas, forward, step, kernelLists, pool);
}

/** The host device: kernels called directly on the arenas. */
class ArenaDevice implements HostDevice {
  readonly synchronous = true;

  constructor(
    readonly backend: string,
    private readonly arenas: Arenas,
    private readonly forward: { forward(): void },
    private readonly step: { gradients(): void; update?(): void; step(): void },
    private readonly lists: () => KernelLists,
    private pool: ProductThreads | undefined,
  ) {}

  get threads(): number {
    return this.pool?.threads ?? 1;
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await pool?.close();
  }

  private arena(slot: Slot): FloatArray | Int32Array {
    return slot.arena === "F" ? this.arenas.F : this.arenas.I;
  }

  write(slot: Slot, values: ArrayLike<number>): void {
    // set at an offset: no subarray, nothing allocated
    this.arena(slot).set(values, slot.offset);
  }

  writeScalar(slot: Slot, value: number): void {
    this.arena(slot)[slot.offset] = value;
  }

  read(slot: Slot): SlotView {
    return this.view(slot).slice();
  }

  scalar(slot: Slot): number {
    return this.arena(slot)[slot.offset]!;
  }

  norm(slot: Slot): number {
    const a = this.arena(slot);
    const end = slot.offset + sizeOf(slot.shape);
    let sq = 0;
    for (let i = slot.offset; i < end; i++) sq += a[i]! * a[i]!;
    return Math.sqrt(sq);
  }

  view(slot: Slot): SlotView {
    return slotView(this.arenas, slot);
  }

  run(entry: EntryPoint): void {
    switch (entry) {
      case "forward":
        this.forward.forward();
        return;
      case "gradients":
        this.step.gradients();
        return;
      case "step":
        this.step.step();
        return;
      case "update": {
        if (this.step.update) {
          this.step.update();
          return;
        }
        // a bundle from before step.js had update(): its update kernels one by one
        const { update } = this.lists();
        for (let i = 0; i < update.length; i++) update[i]!(this.arenas.F, this.arenas.I);
        return;
      }
      default:
        entry satisfies never;
    }
  }

  kernels(list: KernelList): readonly string[] {
    return this.lists().names[list];
  }

  runKernel(name: string): void {
    const fn = this.lists().byName.get(name);
    if (!fn) throw new Error(`no kernel named ${name} in this bundle`);
    fn(this.arenas.F, this.arenas.I);
  }

  runKernelChecked(name: string, flags: Uint8Array): boolean {
    const fn = this.lists().checked.get(name);
    if (!fn) return false;
    fn(this.arenas.F, this.arenas.I, flags);
    return true;
  }
}
