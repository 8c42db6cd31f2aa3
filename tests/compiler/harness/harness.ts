// Test harness for compiled bundles: compiles a graph into a temp folder, then
// loads forward.js/step.js and the initial weights into fresh arenas, the way
// the runtime does, and reads and writes slots by name.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { compile } from "../../../compiler/compile.js";
import type { CompileResult } from "../../../compiler/compile.js";
import type { CompileOptions } from "../../../compiler/config.js";
import type { Graph } from "../../../compiler/ir/graph.js";
import type { ForwardModule, Manifest, Slot, StepModule } from "../../../runtime/manifest.js";
import { loadSafetensors } from "../../../runtime/safetensors.js";

/** A compiled bundle bound to its arenas. */
export interface Loaded {
  readonly result: CompileResult;
  readonly manifest: Manifest;
  readonly F: Float32Array | Float64Array;
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

let root: string | undefined;
let counter = 0;

/** A fresh folder under the OS temp dir for one bundle. */
export function tempBundleDir(tag = "b"): string {
  root ??= mkdtempSync(path.join(os.tmpdir(), "gradc-codegen-"));
  return path.join(root, `${tag}-${counter++}`);
}

/** Removes every bundle this test file wrote. */
export function cleanupBundles(): void {
  if (root) rmSync(root, { recursive: true, force: true });
  root = undefined;
}

/** Imports a bundle that is already on disk and binds it to fresh arenas with its initial weights. */
export async function loadBundle(result: CompileResult): Promise<Loaded> {
  const m = result.manifest;
  const F = m.dtype === "f64" ? new Float64Array(m.arena.floats) : new Float32Array(m.arena.floats);
  const I = new Int32Array(Math.max(1, m.arena.ints));
  const arena = (s: Slot) => (s.arena === "F" ? F : I);
  const size = (s: Slot) => s.shape.reduce((a, b) => a * b, 1);
  const read = (s: Slot) => Float64Array.from(arena(s).subarray(s.offset, s.offset + size(s)));
  const write = (s: Slot, v: ArrayLike<number>) => {
    if (v.length !== size(s)) throw new Error(`harness: ${v.length} values for a slot of ${size(s)}`);
    arena(s).set(Array.from(v), s.offset);
  };
  const weights = loadSafetensors(path.join(result.outDir, m.files.weights)).tensors;
  for (const p of m.params) write(p, weights[p.name]!.data);
  const fwd = ((await import(pathToFileURL(path.join(result.outDir, m.files.forward)).href)) as ForwardModule).create(F, I);
  const stp = ((await import(pathToFileURL(path.join(result.outDir, m.files.step)).href)) as StepModule).create(F, I);
  const find = <T extends { name: string }>(list: readonly T[], name: string, what: string): T => {
    const e = list.find((x) => x.name === name);
    if (!e) throw new Error(`harness: no ${what} "${name}"`);
    return e;
  };
  return {
    result,
    manifest: m,
    F,
    I,
    forward: () => fwd.forward(),
    gradients: () => stp.gradients(),
    update: () => stp.update(),
    step: () => stp.step(),
    read,
    write,
    input: (name, v) => write(find(m.inputs, name, "input"), v),
    param: (name, v) => {
      const p = find(m.params, name, "param");
      if (v) write(p, v);
      return read(p);
    },
    grad: (name) => read(find(m.params, name, "param").grad!),
    output: (name) => read(find(m.outputs, name, "output")),
    loss: () => read(m.loss!)[0]!,
    hyper: (lr, step) => {
      F[m.hyper.lr.offset] = lr;
      I[m.hyper.step.offset] = step;
    },
  };
}

/** Compiles `graph` into a temp folder and loads it. */
export async function compileAndLoad(graph: Graph, options: Omit<CompileOptions, "outDir"> = {}): Promise<Loaded> {
  return loadBundle(compile(graph, { ...options, outDir: tempBundleDir(graph.name.replace(/[^A-Za-z0-9]/g, "") || "g") }));
}
