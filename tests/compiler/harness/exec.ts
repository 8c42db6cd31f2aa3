// Runs a schedule in memory, without writing a bundle: each kernel's body is
// turned into a JavaScript function over the arenas at the memory plan's
// offsets (the same text the TypeScript emitter writes), and the entry points
// call them in order. Fast enough to check many random graphs.
import type { Graph } from "../../../compiler/ir/graph.js";
import { lowerGraph } from "../../../compiler/compile.js";
import type { CompileOptions } from "../../../compiler/config.js";
import type { ArenaPlan } from "../../../compiler/plan/arena.js";
import { stmtsJs } from "../../../compiler/backends/ts/jsExpr.js";
import { verifyKernel } from "../../../compiler/kernel/verify.js";
import type { Buffer } from "../../../compiler/lower/lower.js";
import type { Kernel, Schedule } from "../../../compiler/lower/schedule.js";
import { kernelsOf } from "../../../compiler/lower/schedule.js";
import { initValues } from "../../../compiler/dsl/init.js";
import { SCRATCH } from "../../../compiler/lower/fusedKernel.js";
import { scratchFloats } from "../../../compiler/backends/wasm/gemmWasm.js";
import { encodeModule, pagesFor } from "../../../compiler/backends/wasm/wasm.js";

type Arena = Float32Array | Float64Array | Int32Array;

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

/** The WebAssembly products of a schedule's kernels, as the emitter instantiates them. */
function wasmOf(s: Schedule): { W: Float32Array; wasm: Record<string, () => void> } {
  const products = s.kernels.flatMap((k) => (k.native ? [k.native.product] : []));
  if (!products.length) return { W: new Float32Array(0), wasm: {} };
  const pages = pagesFor(4 * Math.max(...products.map(scratchFloats)));
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
  const instance = new WebAssembly.Instance(new WebAssembly.Module(encodeModule(products, pages)), { env: { memory } });
  return { W: new Float32Array(memory.buffer), wasm: instance.exports as Record<string, () => void> };
}

/** A kernel as a function of the arenas (and of the WebAssembly scratch and exports). */
function compileKernel(k: Kernel, plan: ArenaPlan): (F: Arena, I: Arena, W: Float32Array, wasm: Record<string, () => void>) => void {
  const bind = (name: string) => {
    if (name === SCRATCH) return { array: "W", offset: 0 };
    const b = k.buffers[name];
    if (!b) throw new Error(`exec: ${k.name} uses unbound buffer ${name}`);
    return { array: b.arena, offset: plan.offsets.get(b)! };
  };
  const lines = stmtsJs(k.body, bind, 0, () => [`wasm.${k.native!.product.name}();`]);
  return new Function("F", "I", "W", "wasm", lines.join("\n")) as (F: Arena, I: Arena, W: Float32Array, wasm: Record<string, () => void>) => void;
}

/** Verifies every kernel of a schedule against its buffers' sizes (throws a KirError naming the kernel and each problem). */
export function verifySchedule(s: Schedule): void {
  for (const k of s.kernels) {
    const sizes = new Map(Object.entries(k.buffers).map(([name, b]) => [name, b.size]));
    if (k.native) sizes.set(SCRATCH, scratchFloats(k.native.product));
    verifyKernel(k.name, k.body, sizes);
  }
}

/** Lowers `graph` with `options`, verifies its kernels and binds them to arenas (constants filled, params initialized). */
export function execute(graph: Graph, options: Omit<CompileOptions, "outDir"> = {}): Executed {
  const { schedule: s, plan } = lowerGraph(graph, options);
  verifySchedule(s);
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
  const fns = new Map(s.kernels.map((k) => [k, compileKernel(k, plan)]));
  const { W, wasm } = wasmOf(s);
  const runAll = (ks: readonly Kernel[]) => ks.forEach((k) => fns.get(k)!(F, I, W, wasm));
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
