// The test harness: a graph's kernels on one backend, bound to fresh host
// arenas and run by entry point, read and written by the manifest's slots.
// Two ways in, one way to run:
// - `execute` lowers in memory (no bundle written): each kernel is turned
//   into a JavaScript function from the text its emitter writes (the
//   target's module preamble included), fast enough for many random graphs;
// - `compileAndLoad` compiles a bundle into a temp folder and loads its
//   kernel modules, as the runtime does.
// Either way the kernels become the same `EntryPoints` over the same arenas,
// and `bindRun` gives the tests one interface to both. A gpu backend's
// kernels (gpu.js functions) run on the host, one call per thread.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { compile, lowerGraph } from "../../../compiler/compile.js";
import type { CompileResult } from "../../../compiler/compile.js";
import type { CompileOptions } from "../../../compiler/config.js";
import type { Graph } from "../../../compiler/ir/graph.js";
import type { ArenaPlan } from "../../../compiler/plan/arena.js";
import { kernelJs, transpile } from "../../../compiler/backends/ts/emitTs.js";
import { verifyKernel } from "../../../compiler/kernel/verify.js";
import { TARGETS } from "../../../compiler/backends/index.js";
import type { BackendName } from "../../../compiler/backends/index.js";
import { isTsTarget } from "../../../compiler/backends/ts/target.js";
import type { Schedule } from "../../../compiler/lower/schedule.js";
import { initValues } from "../../../compiler/dsl/init.js";
import { buildManifest } from "../../../compiler/bundle/bundle.js";
import { GPU_MODULE, gpuKernel, gpuLayout } from "../../../compiler/backends/gpu/emitGpu.js";
import type { ForwardModule, Manifest, Slot, StepModule } from "../../../runtime/manifest.js";
import type { GpuModule } from "../../../runtime/gpuDevice.js";
import { loadSafetensors } from "../../../runtime/safetensors.js";
import { floatArena } from "../../../runtime/hostDevice.js";
import { relaxedSimd } from "../../../runtime/wasmFeatures.js";

// relaxed SIMD on, as the Node runtime turns it on, before any kernel module compiles: the products run with FMA where the CPU has it
relaxedSimd();

/** Every backend in the target registry: tests run `describe.each(BACKENDS)`, so a new backend gets them all. */
export const BACKENDS = Object.keys(TARGETS) as BackendName[];

/** The finest precision a backend computes in: f64 where it can (gradient checks), else f32 (gpu: WGSL has no f64). */
export const finest = (backend: BackendName): "f32" | "f64" => (TARGETS[backend].capabilities.f64 ? "f64" : "f32");

type FloatArena = Float32Array | Float64Array;
type KernelFn = (F: FloatArena, I: Int32Array) => void;

/** What a backend's kernels do to the arenas, by entry point. */
interface EntryPoints {
  forward(): void;
  gradients(): void;
  update(): void;
  step(): void;
}

/** A graph's kernels on one backend, bound to host arenas, with slots by name. */
export interface Run {
  readonly manifest: Manifest;
  readonly F: FloatArena;
  readonly I: Int32Array;
  forward(): void;
  gradients(): void;
  update(): void;
  step(): void;
  read(slot: Slot): Float64Array;
  write(slot: Slot, values: ArrayLike<number>): void;
  /** Writes an input by name. */
  input(name: string, values: ArrayLike<number>): void;
  /** Reads (and with `values`, first writes) a param by name. */
  param(name: string, values?: ArrayLike<number>): Float64Array;
  grad(name: string): Float64Array;
  output(name: string): Float64Array;
  loss(): number;
  /** The runtime's job before each step(): the learning rate and the 1-based step count. */
  hyper(lr: number, step: number): void;
}

/** A run lowered in memory, with the schedule and memory plan it runs. */
export interface Executed extends Run {
  readonly schedule: Schedule;
  readonly plan: ArenaPlan;
}

/** A run of a compiled bundle on disk. */
export interface Loaded extends Run {
  readonly result: CompileResult;
}

/** Fresh arenas for a manifest; an f32 arena F in the kernels' WebAssembly memory where their module (`mod`) offers one, as the runtime places it. */
function arenas(m: Manifest, mod?: unknown): { F: FloatArena; I: Int32Array } {
  return { F: floatArena(m, mod), I: new Int32Array(Math.max(1, m.arena.ints)) };
}

/** Entry points that call a backend's kernels one by one, in the manifest's order. */
function entryPoints(m: Manifest, fns: ReadonlyMap<string, KernelFn>, F: FloatArena, I: Int32Array): EntryPoints {
  const list = (entry: "forward" | "gradients" | "update"): KernelFn[] =>
    m.kernels.filter((k) => k.entry.includes(entry)).map((k) => {
      const fn = fns.get(k.name);
      if (!fn) throw new Error(`harness: no function for kernel ${k.name}`);
      return fn;
    });
  const lists = { forward: list("forward"), gradients: list("gradients"), update: list("update") };
  const runAll = (fs: readonly KernelFn[]) => fs.forEach((f) => f(F, I));
  return {
    forward: () => runAll(lists.forward),
    gradients: () => runAll(lists.gradients),
    update: () => runAll(lists.update),
    step: () => runAll([...lists.gradients, ...lists.update]),
  };
}

/** The one interface tests use: entry points over arenas, slots by the manifest's names. */
function bindRun(m: Manifest, F: FloatArena, I: Int32Array, run: EntryPoints): Run {
  const arena = (s: Slot) => (s.arena === "F" ? F : I);
  const size = (s: Slot) => s.shape.reduce((a, b) => a * b, 1);
  const read = (s: Slot) => Float64Array.from(arena(s).subarray(s.offset, s.offset + size(s)));
  const write = (s: Slot, v: ArrayLike<number>) => {
    if (v.length !== size(s)) throw new Error(`harness: ${v.length} values for a slot of ${size(s)}`);
    arena(s).set(Array.from(v), s.offset);
  };
  const find = <T extends { name: string }>(list: readonly T[], name: string, what: string): T => {
    const e = list.find((x) => x.name === name);
    if (!e) throw new Error(`harness: no ${what} "${name}"`);
    return e;
  };
  return {
    manifest: m,
    F,
    I,
    forward: () => run.forward(),
    gradients: () => run.gradients(),
    update: () => run.update(),
    step: () => run.step(),
    read,
    write,
    input: (name, v) => write(find(m.inputs, name, "input"), v),
    param: (name, v) => {
      const p = find(m.params, name, "param");
      if (v) write(p, v);
      return read(p);
    },
    grad: (name) => {
      const g = find(m.params, name, "param").grad;
      if (!g) throw new Error(`harness: param "${name}" has no gradient`);
      return read(g);
    },
    output: (name) => read(find(m.outputs, name, "output")),
    loss: () => {
      if (!m.loss) throw new Error("harness: the graph has no loss");
      return read(m.loss)[0]!;
    },
    hyper: (lr, step) => {
      F[m.hyper.lr.offset] = lr;
      I[m.hyper.step.offset] = step;
    },
  };
}

/**
 * A gpu bundle's kernel module run on the host: each gpu.js function is
 * called once per element of its root with `this.thread.x` set, as a GPU
 * thread runs it (tests/runtime/gpu.test.ts runs the same functions on
 * WebGPU), reading the roots where the arenas hold them; every root a kernel
 * writes is stored back, rounded as its arena rounds, once all its functions
 * have run. The roots' constants are written first.
 */
function gpuOnHost(mod: GpuModule, F: FloatArena, I: Int32Array): Map<string, KernelFn> {
  for (const r of mod.ROOTS) if (r.fill) (r.arena === "F" ? F : I).set(r.fill, r.offset);
  return new Map(
    mod.KERNELS.map((k): [string, KernelFn] => {
      const run: KernelFn = (F, I) => {
        const root = (r: number) => mod.ROOTS[r]!;
        const view = (r: number) => (root(r).arena === "F" ? F : I).subarray(root(r).offset, root(r).offset + root(r).size);
        const results = k.parts.map((p) => {
          const args: unknown[] = p.args.map((a) => Float32Array.from(view(a)));
          if (p.inf) args.push(Infinity);
          const thread = { x: 0 };
          const self = { thread };
          const fn = p.fn as unknown as (...a: unknown[]) => number;
          const out = new Float64Array(root(p.out).size);
          for (let t = 0; t < out.length; t++) {
            thread.x = t;
            out[t] = Math.fround(fn.apply(self, args));
          }
          return out;
        });
        k.parts.forEach((p, i) => view(p.out).set(results[i]!));
      };
      return [k.name, run];
    }),
  );
}

/**
 * A lowered schedule's kernels as functions of the arenas, from the text the
 * emitter writes: for a TypeScript target its module preamble, then each
 * kernel's body, transpiled; for gpu the gpu.js functions of kernels.gpu.js.
 */
function scheduleKernels(s: Schedule, plan: ArenaPlan, m: Manifest): { fns: Map<string, KernelFn>; F: FloatArena; I: Int32Array } {
  if (s.target.device === "gpu") {
    const { F, I } = arenas(m);
    const layout = gpuLayout(s, plan);
    const KERNELS = s.kernels.map((k) => ({
      name: k.name,
      parts: gpuKernel(k, layout).parts.map((p) => ({ out: p.out, args: p.args, inf: p.inf, fn: new Function(`return ${p.source}`)() as GpuModule["KERNELS"][number]["parts"][number]["fn"] })),
    }));
    return { fns: gpuOnHost({ ROOTS: layout.roots, KERNELS }, F, I), F, I };
  }
  const target = TARGETS[s.target.name as BackendName];
  if (!isTsTarget(target)) throw new Error(`harness: the ${s.target.name} backend's kernels are neither TypeScript nor gpu.js`);
  const hooks = target.hooks;
  const source = [
    "const makeKernels = () => {",
    ...hooks.preamble(s.kernels),
    ...s.kernels.map((k, i) => `function kernel${i}(F, I) {\n${kernelJs(k, plan, hooks).join("\n")}\n}`),
    `return { fns: [${s.kernels.map((_, i) => `kernel${i}`).join(", ")}], WASM: typeof WASM === "undefined" ? undefined : WASM };`,
    "};",
  ].join("\n");
  const made = new Function(`${transpile(source)}\nreturn makeKernels();`)() as { fns: KernelFn[]; WASM?: unknown };
  return { fns: new Map(s.kernels.map((k, i) => [k.name, made.fns[i]!])), ...arenas(m, made) };
}

/** Verifies every kernel of a schedule against its buffers' sizes (throws a KirError naming the kernel and each problem). */
export function verifySchedule(s: Schedule): void {
  for (const k of s.kernels) {
    const sizes = new Map(Object.entries(k.buffers).map(([name, b]) => [name, b.size]));
    if (k.extern?.scratch) sizes.set(k.extern.scratch.name, k.extern.scratch.size);
    verifyKernel(k.name, k.body, sizes);
  }
}

/** Lowers `graph` with `options` in memory, verifies its kernels after lowering and after each backend pass, and binds them to fresh arenas. */
export function execute(graph: Graph, options: Omit<CompileOptions, "outDir"> = {}): Executed {
  const { schedule, plan } = lowerGraph(graph, options, (_, after) => verifySchedule(after));
  return bind(schedule, plan);
}

/** A lowered schedule bound to fresh arenas laid out by `plan` (constants filled, params initialized). */
export function bind(s: Schedule, plan: ArenaPlan): Executed {
  const m = buildManifest(s, plan);
  const { fns, F, I } = scheduleKernels(s, plan, m);
  for (const b of s.buffers) {
    if (b.role !== "const" || !b.fill) continue;
    const at = plan.offsets.get(b)!;
    const arena = b.arena === "F" ? F : I;
    if (b.fill.length === 1) arena.fill(b.fill[0]!, at, at + b.size);
    else arena.set(b.fill, at);
  }
  const run = bindRun(m, F, I, entryPoints(m, fns, F, I));
  for (const p of s.graph.params) run.param(p.name, initValues(p.init, p.shape));
  return { ...run, schedule: s, plan };
}

let root: string | undefined;
let counter = 0;
/** Bundles `loadShared` compiled, by graph and options. */
const shared = new Map<Graph, Map<string, CompileResult>>();

/** A fresh folder under the OS temp dir for one bundle. */
export function tempBundleDir(tag = "b"): string {
  root ??= mkdtempSync(path.join(os.tmpdir(), "gradc-codegen-"));
  return path.join(root, `${tag}-${counter++}`);
}

/** Removes every bundle this test file wrote. */
export function cleanupBundles(): void {
  if (root) rmSync(root, { recursive: true, force: true });
  root = undefined;
  shared.clear();
}

/**
 * Loads a bundle that is already on disk into fresh arenas with its initial
 * weights: forward.js and step.js bound by their `create(F, I)` as the host
 * device binds them, or for a gpu bundle its kernels.gpu.js run on the host.
 */
export async function loadBundle(result: CompileResult): Promise<Loaded> {
  const m = result.manifest;
  const url = (file: string) => pathToFileURL(path.join(result.outDir, file)).href;
  let run: EntryPoints;
  let F: FloatArena;
  let I: Int32Array;
  if (m.backend === "gpu") {
    ({ F, I } = arenas(m));
    const mod = (await import(url(m.files.gpu ?? GPU_MODULE))) as GpuModule;
    run = entryPoints(m, gpuOnHost(mod, F, I), F, I);
  } else {
    const fwdMod = (await import(url(m.files.forward))) as ForwardModule;
    const stpMod = (await import(url(m.files.step))) as StepModule;
    // the arena where the runtime places it: in the step module's WebAssembly memory when it offers one
    F = floatArena(m, stpMod, fwdMod);
    I = new Int32Array(Math.max(1, m.arena.ints));
    const fwd = fwdMod.create(F, I);
    const stp = stpMod.create(F, I);
    run = {
      forward: () => fwd.forward(),
      gradients: () => stp.gradients(),
      update: () => stp.update(),
      step: () => stp.step(),
    };
  }
  const bound = bindRun(m, F, I, run);
  const weights = loadSafetensors(path.join(result.outDir, m.files.weights)).tensors;
  for (const p of m.params) bound.write(p, weights[p.name]!.data);
  return { ...bound, result };
}

/**
 * Loads `graph` compiled with `options` into fresh arenas, compiling it only
 * the first time a test file asks for that graph with those options: tests
 * that differ only in what they run share one bundle.
 */
export async function loadShared(graph: Graph, options: Omit<CompileOptions, "outDir"> = {}): Promise<Loaded> {
  let byOptions = shared.get(graph);
  if (!byOptions) shared.set(graph, (byOptions = new Map()));
  const key = JSON.stringify(options);
  let result = byOptions.get(key);
  if (!result) byOptions.set(key, (result = compile(graph, { ...options, outDir: tempBundleDir(graph.name.replace(/[^A-Za-z0-9]/g, "") || "g") })));
  return loadBundle(result);
}

/** Compiles `graph` into a temp folder and loads it. */
export async function compileAndLoad(graph: Graph, options: Omit<CompileOptions, "outDir"> = {}): Promise<Loaded> {
  return loadBundle(compile(graph, { ...options, outDir: tempBundleDir(graph.name.replace(/[^A-Za-z0-9]/g, "") || "g") }));
}
