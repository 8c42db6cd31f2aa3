// Runs a schedule in memory, without writing a bundle: each kernel's body is
// turned into a JavaScript function over the arenas at the memory plan's
// offsets (the same text the emitter writes, its target's preamble included),
// and the entry points call them in order. Fast enough to check many random graphs.
import type { Graph } from "../../../compiler/ir/graph.js";
import { lowerGraph } from "../../../compiler/compile.js";
import type { CompileOptions } from "../../../compiler/config.js";
import type { ArenaPlan } from "../../../compiler/plan/arena.js";
import { kernelJs, transpile } from "../../../compiler/backends/ts/emitTs.js";
import { verifyKernel } from "../../../compiler/kernel/verify.js";
import { TARGETS } from "../../../compiler/backends/index.js";
import { isTsTarget } from "../../../compiler/backends/ts/target.js";
import type { BackendName } from "../../../compiler/backends/index.js";
import type { Buffer } from "../../../compiler/lower/lower.js";
import type { Kernel, Schedule } from "../../../compiler/lower/schedule.js";
import { kernelsOf } from "../../../compiler/lower/schedule.js";
import { initValues } from "../../../compiler/dsl/init.js";
import { gpuKernel, gpuLayout } from "../../../compiler/backends/gpu/emitGpu.js";

type Arena = Float32Array | Float64Array | Int32Array;

/** Every backend in the target registry: kernel tests run `describe.each(BACKENDS)`, so a new backend gets them all. */
export const BACKENDS = Object.keys(TARGETS) as BackendName[];

/** The finest precision a backend computes in: f64 where it can (gradient checks), else f32 (gpu: WGSL has no f64). */
export const finest = (backend: BackendName): "f32" | "f64" => (TARGETS[backend].capabilities.f64 ? "f64" : "f32");

/** A schedule bound to fresh arenas holding the params' initial values. */
export interface Executed {
  readonly schedule: Schedule;
  readonly plan: ArenaPlan;
  readonly F: Float32Array | Float64Array;
  readonly I: Int32Array;
  forward(): void;
  gradients(): void;
  step(): void;
  read(b: Buffer): Float64Array;
  write(b: Buffer, values: ArrayLike<number>): void;
  input(name: string, values: ArrayLike<number>): void;
  param(name: string, values?: ArrayLike<number>): Float64Array;
  grad(name: string): Float64Array;
  output(name: string): Float64Array;
  loss(): number;
}

type KernelFn = (F: Arena, I: Arena) => void;

/**
 * The kernels of a schedule as functions of the arenas, from the text the
 * emitter writes (the target's module preamble, then each kernel's body),
 * transpiled and run in memory: whatever the backend, the same code as a bundle.
 */
function compileKernels(s: Schedule, plan: ArenaPlan): Map<Kernel, KernelFn> {
  if (s.target.device === "gpu") return gpuKernelsOnHost(s, plan);
  const target = TARGETS[s.target.name as BackendName];
  if (!isTsTarget(target)) throw new Error(`exec: the ${s.target.name} backend's kernels are not TypeScript; this harness runs only those`);
  const hooks = target.hooks;
  const source = [
    "const makeKernels = () => {",
    ...hooks.preamble(s.kernels),
    ...s.kernels.map((k, i) => `function kernel${i}(F, I) {\n${kernelJs(k, plan, hooks).join("\n")}\n}`),
    `return [${s.kernels.map((_, i) => `kernel${i}`).join(", ")}];`,
    "};",
  ].join("\n");
  const fns = new Function(`${transpile(source)}\nreturn makeKernels();`)() as KernelFn[];
  return new Map(s.kernels.map((k, i) => [k, fns[i]!]));
}

/**
 * The gpu target's kernels as functions of the arenas: each emitted gpu.js
 * function is called once per element of its root with `this.thread.x` set,
 * as a GPU thread runs it (tests/compiler/backends/gpu runs the same
 * functions on WebGPU), reading the roots where the memory plan put them;
 * every root a kernel writes is stored back, rounded as its arena rounds,
 * once all its functions have run.
 */
function gpuKernelsOnHost(s: Schedule, plan: ArenaPlan): Map<Kernel, KernelFn> {
  const layout = gpuLayout(s, plan);
  return new Map(
    s.kernels.map((k) => {
      const parts = gpuKernel(k, layout).parts.map((p) => ({ ...p, fn: new Function(`return ${p.source}`)() as (...a: unknown[]) => number }));
      const run: KernelFn = (F, I) => {
        const arena = (r: number) => (layout.roots[r]!.arena === "F" ? F : I);
        const view = (r: number) => arena(r).subarray(layout.roots[r]!.offset, layout.roots[r]!.offset + layout.roots[r]!.size);
        const results = parts.map((p) => {
          const args: unknown[] = p.args.map((a) => Float32Array.from(view(a)));
          if (p.inf) args.push(Infinity);
          const thread = { x: 0 };
          const self = { thread };
          const out = new Float64Array(layout.roots[p.out]!.size);
          for (let t = 0; t < out.length; t++) {
            thread.x = t;
            out[t] = Math.fround(p.fn.apply(self, args));
          }
          return out;
        });
        parts.forEach((p, i) => view(p.out).set(results[i]!));
      };
      return [k, run];
    }),
  );
}

/** Verifies every kernel of a schedule against its buffers' sizes (throws a KirError naming the kernel and each problem). */
export function verifySchedule(s: Schedule): void {
  for (const k of s.kernels) {
    const sizes = new Map(Object.entries(k.buffers).map(([name, b]) => [name, b.size]));
    if (k.extern?.scratch) sizes.set(k.extern.scratch.name, k.extern.scratch.size);
    verifyKernel(k.name, k.body, sizes);
  }
}

/** Lowers `graph` with `options`, verifies its kernels and binds them to arenas (constants filled, params initialized). */
export function execute(graph: Graph, options: Omit<CompileOptions, "outDir"> = {}): Executed {
  // every kernel verified after lowering and after each of the target's passes
  const { schedule, plan } = lowerGraph(graph, options, (_, after) => verifySchedule(after));
  return bind(schedule, plan);
}

/** A lowered schedule bound to fresh arenas laid out by `plan` (constants filled, params initialized). */
export function bind(s: Schedule, plan: ArenaPlan): Executed {
  const F = s.precision === "f64" ? new Float64Array(plan.floats) : new Float32Array(plan.floats);
  const I = new Int32Array(Math.max(1, plan.ints));
  const arena = (b: Buffer): Arena => (b.arena === "F" ? F : I);
  const read = (b: Buffer) => Float64Array.from(arena(b).subarray(plan.offsets.get(b)!, plan.offsets.get(b)! + b.size));
  const write = (b: Buffer, v: ArrayLike<number>) => {
    if (v.length !== b.size) throw new Error(`exec: ${v.length} values for ${b.label} of ${b.size}`);
    arena(b).set(Array.from(v), plan.offsets.get(b)!);
  };
  for (const b of s.buffers) {
    if (b.role !== "const" || !b.fill) continue;
    if (b.fill.length === 1) arena(b).fill(b.fill[0]!, plan.offsets.get(b)!, plan.offsets.get(b)! + b.size);
    else write(b, b.fill);
  }
  for (const p of s.graph.params) write(s.bufferOf.get(p.node)!, initValues(p.init, p.shape));
  const fns = compileKernels(s, plan);
  const runAll = (ks: readonly Kernel[]) => ks.forEach((k) => fns.get(k)!(F, I));
  const node = <T>(what: string, name: string, t: T | undefined): T => {
    if (!t) throw new Error(`exec: no ${what} ${name}`);
    return t;
  };
  return {
    schedule: s,
    plan,
    F,
    I,
    forward: () => runAll(kernelsOf(s, "forward")),
    gradients: () => runAll(kernelsOf(s, "gradients")),
    step: () => runAll([...kernelsOf(s, "gradients"), ...kernelsOf(s, "update")]),
    read,
    write,
    input: (name, v) => write(s.bufferOf.get(node("input", name, s.graph.input(name)).node)!, v),
    param: (name, v) => {
      const b = s.bufferOf.get(node("param", name, s.graph.param(name)).node)!;
      if (v) write(b, v);
      return read(b);
    },
    grad: (name) => read(node("gradient", name, s.grads.get(name))),
    output: (name) => {
      const t = node("output", name, s.graph.outputs[name]);
      return read(s.bufferOf.get(t)!).slice(0, t.size);
    },
    loss: () => read(s.bufferOf.get(s.train.loss!)!)[0]!,
  };
}
