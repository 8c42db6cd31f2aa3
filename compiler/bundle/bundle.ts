// The kernel bundle on disk: manifest.json, the emitted modules, weights, data,
// printed graphs and a transpiled copy of the runtime, written into a fresh
// folder that then replaces the old bundle in one rename.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ts } from "ts-morph";
import type { Tensor } from "../ir/node.js";
import { reachable } from "../ir/graph.js";
import { sizeOf } from "../ir/types.js";
import { describeOrigin, printGraph } from "../ir/printer.js";
import { initValues } from "../dsl/init.js";
import type { TrainingConfig } from "../config.js";
import { FORMAT_NAME, FORMAT_VERSION } from "../../runtime/manifest.js";
import type { DataSpec, GenerateSpec, Manifest, Slot, TrainingSpec } from "../../runtime/manifest.js";
import { encodeSafetensors, loadSafetensors, writeFileAtomic } from "../../runtime/safetensors.js";
import { importParams } from "../../runtime/checkpoint.js";
import { sha256 } from "../../runtime/integrity.js";
import { ownValue, setOwn } from "../../runtime/names.js";
import type { NamedTensor } from "../../runtime/safetensors.js";
import type { ArenaPlan } from "../plan/arena.js";
import { offsetOf } from "../plan/arena.js";
import { arenaOf, storageNode, storedDtype } from "../lower/lower.js";
import type { Buffer } from "../lower/lower.js";
import type { Kernel, Schedule } from "../lower/schedule.js";
import { visitKir } from "../kernel/kir.js";
import type { PrintedBuffer } from "../kernel/printer.js";
import { printKernel } from "../kernel/printer.js";
import { TRANSPILE_VERSION, bindingList, transpile } from "../backends/ts/emitTs.js";
import { commentText, printedNodes } from "../lower/names.js";

import type { BundleFiles } from "./swap.js";

export type { BundleFiles };

export const FILES = {
  manifest: "manifest.json",
  forward: "forward.js",
  step: "step.js",
  trainer: "train.js",
  weights: "weights.safetensors",
  data: "data.safetensors",
} as const;

function bufferSlot(plan: ArenaPlan, b: Buffer): Slot {
  if (b.arena === "H") throw new Error(`bundle: buffer "${b.label}" lives in the kernels' own bfloat16 arena H, which the runtime does not address`);
  return { arena: b.arena, offset: offsetOf(plan, b), shape: [...b.shape], dtype: b.dtype };
}

/** A node's slot: its storage buffer's offset, with the node's own shape (aliases reshape). */
function nodeSlot(s: Schedule, plan: ArenaPlan, t: Tensor): Slot {
  const b = s.bufferOf.get(t) ?? s.bufferOf.get(storageNode(t));
  if (!b) throw new Error(`bundle: node ${String(t)} has no buffer`);
  const dtype = storedDtype(t.dtype, s.precision);
  return { arena: arenaOf(dtype), offset: offsetOf(plan, b), shape: [...t.shape], dtype };
}

/** The kernel IR buffer names a body stores into, in first-store order (the manifest's `writes`). */
function writtenBuffers(k: Kernel): string[] {
  const into: string[] = [];
  visitKir(k.body, {
    stmt: (st) => {
      // a scratch buffer private to the kernel is no arena slot, nor is a bfloat16 temporary (arena H belongs to the kernel module)
      if ((st.k === "store" || st.k === "scatterAdd") && k.buffers[st.buf] && k.buffers[st.buf]!.arena !== "H" && !into.includes(st.buf)) into.push(st.buf);
    },
  });
  return into;
}

/**
 * For an i32 input read as class labels (by oneHot) or row indices (by
 * gather), how many there are: every value must lie in [0, classes). Kernels
 * give an out-of-range label a zero row, so the runtime refuses it instead.
 */
export function classesOf(s: Schedule, input: Tensor): number | undefined {
  let classes: number | undefined;
  for (const t of reachable([...(s.graph.loss ? [s.graph.loss] : []), ...Object.values(s.graph.outputs)])) {
    let n: number | undefined;
    if (t.op === "oneHot" && t.inputs[0] === input) n = (t.params as { depth: number }).depth;
    else if (t.op === "gather" && t.inputs[1] === input) n = t.inputs[0]!.shape[0];
    if (n !== undefined) classes = Math.min(classes ?? n, n);
  }
  return classes;
}

/** Checks the values of one data column from a model's config: numbers, finite, integers in range for an int input. */
function checkColumn(name: string, dtype: string, values: ArrayLike<unknown>, classes: number | undefined): void {
  const int = dtype === "i32" || dtype === "bool";
  for (let k = 0; k < values.length; k++) {
    const v = values[k];
    const why =
      typeof v !== "number"
        ? `is ${typeof v}, not a number`
        : !Number.isFinite(v)
          ? "is not finite"
          : int && !Number.isInteger(v)
            ? `is not an integer (input "${name}" is ${dtype})`
            : int && (v < -(2 ** 31) || v >= 2 ** 31)
              ? "does not fit in i32"
              : classes !== undefined && !(v >= 0 && v < classes)
                ? `is not a class index in [0, ${classes})`
                : undefined;
    if (why) throw new Error(`training data: input "${name}": value ${typeof v === "string" ? JSON.stringify(v) : String(v)} at index ${k} ${why}`);
  }
}

/** manifest.json's content (see runtime/manifest.ts). */
export function buildManifest(s: Schedule, plan: ArenaPlan, training?: TrainingSpec, generate?: GenerateSpec): Manifest {
  const g = s.graph;
  const printed = printedNodes(s.train);
  return {
    format: FORMAT_NAME,
    version: FORMAT_VERSION,
    name: g.name,
    backend: s.target.device,
    dtype: s.precision,
    arena: { floats: plan.floats, ints: plan.ints, ...(s.mixed ? { halves: plan.halves } : {}) },
    ...(s.mixed ? { mixed: s.mixed } : {}),
    peakBytes: plan.peakBytes,
    savedActivations: plan.savedActivations,
    inputs: g.inputs.map((i) => {
      const classes = classesOf(s, i.node);
      return { name: i.name, ...nodeSlot(s, plan, i.node), usedBy: s.inputUse.get(i.name) ?? [], ...(classes !== undefined ? { classes } : {}) };
    }),
    params: g.params.map((p) => {
      const gb = s.grads.get(p.name);
      return {
        name: p.name,
        ...nodeSlot(s, plan, p.node),
        trainable: p.trainable,
        init: { ...p.init },
        ...(gb ? { grad: { ...bufferSlot(plan, gb), shape: [...p.shape] } } : {}),
      };
    }),
    outputs: Object.entries(g.outputs).map(([name, t]) => ({ name, ...nodeSlot(s, plan, t) })),
    ...(s.train.loss ? { loss: nodeSlot(s, plan, s.train.loss) } : {}),
    optimizer: s.optimizer,
    ...(s.gradClip !== undefined ? { gradClip: s.gradClip } : {}),
    state: s.state.map((st) => ({ param: st.param, slot: st.slot, ...bufferSlot(plan, st.buffer) })),
    hyper: { lr: bufferSlot(plan, s.hyper.lr), step: bufferSlot(plan, s.hyper.step), ...(s.hyper.lossScale ? { lossScale: bufferSlot(plan, s.hyper.lossScale) } : {}), ...(s.hyper.runSeed ? { seed: bufferSlot(plan, s.hyper.runSeed) } : {}) },
    kernels: s.kernels.map((k) => ({
      name: k.name,
      node: k.what,
      ...(k.where ? { src: k.where } : {}),
      entry: k.entry,
      ...(k.gradOf.length ? { gradOf: k.gradOf } : {}),
      writes: writtenBuffers(k).map((name) => ({ ...bufferSlot(plan, k.buffers[name]!), label: k.buffers[name]!.label })),
      ...(k.nodes.length > 1 ? { nodes: k.nodes.map((t) => ({ node: printed.get(t)?.binding ?? String(t), op: t.op, ...(describeOrigin(t) ? { src: describeOrigin(t) } : {}) })) } : {}),
    })),
    files: { forward: FILES.forward, step: FILES.step, weights: FILES.weights, trainer: FILES.trainer },
    ...(training ? { training } : {}),
    ...(generate ? { generate } : {}),
  };
}

/**
 * Initial values of every param in the F arena's precision: drawn by its
 * initializer, or read by name from `initFrom` (a safetensors file).
 */
export function initialWeights(s: Schedule, initFrom?: string): Uint8Array {
  const F = s.precision === "f64" ? Float64Array : Float32Array;
  const imported = initFrom === undefined ? undefined : importParams(loadSafetensors(initFrom), initFrom, s.graph.params);
  const tensors: Record<string, NamedTensor> = Object.create(null) as Record<string, NamedTensor>;
  for (const p of s.graph.params) tensors[p.name] = { shape: [...p.shape], data: F.from(imported?.get(p.name) ?? initValues(p.init, p.shape)) };
  return encodeSafetensors(tensors, { format: FORMAT_NAME, graph: s.graph.name });
}

/**
 * The manifest's TrainingSpec; arrays given in the model's config are stored
 * as data.safetensors (one tensor per graph input, examples along axis 0).
 */
export function trainingSpec(s: Schedule, cfg: TrainingConfig): { spec: TrainingSpec; data?: Uint8Array } {
  const { data, ...rest } = cfg;
  if (data.kind !== "arrays") return { spec: { ...rest, data } };
  const tensors: Record<string, NamedTensor> = Object.create(null) as Record<string, NamedTensor>;
  const known = new Set(s.graph.inputs.map((i) => i.name));
  for (const name of Object.keys(data.inputs)) {
    if (!known.has(name)) throw new Error(`training data: "${name}" is not an input of graph "${s.graph.name}"`);
  }
  for (const input of s.graph.inputs) {
    const values = ownValue(data.inputs, input.name);
    if (values === undefined) {
      if (s.inputUse.get(input.name)?.includes("train")) throw new Error(`training data: no values for input "${input.name}"`);
      continue;
    }
    if (input.shape.length === 0) throw new Error(`training data: input "${input.name}" is a scalar; it has no example axis`);
    const per = sizeOf(input.shape.slice(1));
    const n = per === 0 ? 0 : values.length / per;
    if (!Number.isInteger(n)) {
      throw new Error(`training data: input "${input.name}" has ${values.length} values, not a whole number of examples of ${per}`);
    }
    const dtype = storedDtype(input.dtype, s.precision);
    const Ctor = dtype === "f64" ? Float64Array : dtype === "f32" ? Float32Array : Int32Array;
    checkColumn(input.name, dtype, values, classesOf(s, input.node));
    tensors[input.name] = { shape: [n, ...input.shape.slice(1)], data: Ctor.from(values as ArrayLike<number>) };
  }
  const spec: DataSpec = {
    kind: "arrays",
    file: FILES.data,
    ...(data.testFraction !== undefined ? { testFraction: data.testFraction } : {}),
    ...(data.seed !== undefined ? { seed: data.seed } : {}),
  };
  return { spec: { ...rest, data: spec }, data: encodeSafetensors(tensors) };
}

/** graphs/kernels.txt: the schedule, one line per kernel with its buffers. */
export function printKernels(s: Schedule, plan: ArenaPlan): string {
  const lines = [
    `# schedule of ${commentText(JSON.stringify(s.graph.name))}: ${s.kernels.length} kernels; arena F ${plan.floats} ${s.precision}, I ${plan.ints} i32`,
    `# names as in graphs/backward.txt; buffers as name="label"@arena[start:end]`,
  ];
  for (const k of s.kernels) {
    // one line per kernel, whatever the names and paths hold
    const why = k.where ? `  # ${k.where}` : "";
    lines.push(commentText(`${k.name} [${k.entry.join(",")}] ${bindingList(k, plan)}  # ${k.what}${why}`));
  }
  return lines.join("\n") + "\n";
}

/** graphs/kernels.kir: every kernel's kernel IR, as `gradc inspect --kernel NAME --kir` prints it. */
export function printKernelIr(s: Schedule): string {
  const header = `# kernel IR of ${commentText(JSON.stringify(s.graph.name))} (${s.target.name} backend): ${s.kernels.length} kernels in execution order\n\n`;
  return header + s.kernels.map((k) => printKernel(k.name, kernelBuffers(k), k.body)).join("\n");
}

/** A kernel's buffers as its printed header lists them: arena buffers, then its scratch. */
export function kernelBuffers(k: Kernel): PrintedBuffer[] {
  const list: PrintedBuffer[] = Object.entries(k.buffers).map(([name, b]) => ({ name, size: b.size, label: b.label }));
  const scratch = k.extern?.scratch;
  return scratch ? [...list, { name: scratch.name, size: scratch.size, label: "scratch" }] : list;
}

/** The trainer entry point: the runtime does the work. */
export function trainerSource(): string {
  return [
    "// The generated trainer: `node train.js [--steps N | --epochs N]`. Generated by gradc; do not edit.",
    'import { dirname } from "node:path";',
    'import { fileURLToPath } from "node:url";',
    'import { errorText, main } from "./runtime/trainer.js";',
    "",
    "try {",
    "  await main(dirname(fileURLToPath(import.meta.url)), process.argv.slice(2));",
    "} catch (e) {",
    "  // one clear line, not a stack trace, unless --verbose",
    '  console.error(errorText(e, process.argv.includes("--verbose")));',
    "  process.exitCode = 1;",
    "}",
    "",
  ].join("\n");
}

const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const RUNTIME_DIR = path.join(PACKAGE_ROOT, "runtime");
const runtimeCache = new Map<string, { stamp: string; js: string }>();

/**
 * Transpiled runtime files survive the process in the package's own
 * node_modules/.cache (never a shared temp folder: the files become code),
 * keyed by TypeScript's version and the source. A cold transpile of the
 * runtime costs most of a first compile.
 */
export function transpileCached(source: string, fileName: string): string {
  const modules = path.join(PACKAGE_ROOT, "node_modules");
  const key = createHash("sha256").update(`${ts.version}\0${TRANSPILE_VERSION}\0${fileName}\0`).update(source).digest("hex").slice(0, 40);
  const file = path.join(modules, ".cache", "gradc", `${key}.js`);
  try {
    return readFileSync(file, "utf8");
  } catch {
    // not cached yet
  }
  const js = transpile(source, fileName);
  if (existsSync(modules)) {
    try {
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileAtomic(file, js);
    } catch {
      // a read-only install: no disk cache
    }
  }
  return js;
}

/** The runtime's TypeScript sources transpiled to runtime/**.js (cached while unchanged). */
export function runtimeFiles(dir = RUNTIME_DIR): BundleFiles {
  const out: BundleFiles = new Map();
  const walk = (sub: string) => {
    for (const entry of readdirSync(path.join(dir, sub), { withFileTypes: true })) {
      const rel = path.join(sub, entry.name);
      if (entry.isDirectory()) walk(rel);
      else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts") && !entry.name.endsWith(".test.ts")) {
        const file = path.join(dir, rel);
        const st = statSync(file);
        const stamp = `${st.mtimeMs}:${st.size}`;
        let hit = runtimeCache.get(file);
        if (!hit || hit.stamp !== stamp) {
          hit = { stamp, js: transpileCached(readFileSync(file, "utf8"), entry.name) };
          runtimeCache.set(file, hit);
        }
        out.set(path.join("runtime", rel.replace(/\.ts$/, ".js")).split(path.sep).join("/"), hit.js);
      }
    }
  };
  walk("");
  return out;
}

/** The sha256 of every file of the bundle (manifest.json aside), by path. */
export function digests(files: BundleFiles): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rel of [...files.keys()].sort()) if (rel !== FILES.manifest) setOwn(out, rel, sha256(files.get(rel)!));
  return out;
}

/**
 * The graph's digest, for checkpoints: the printed forward graph without its
 * `# file:line` comments, so editing the model file elsewhere keeps it.
 */
export function graphDigest(printedForward: string): string {
  return sha256(printedForward.split("\n").map((line) => line.replace(/\s+#.*$/, "")).join("\n"));
}

/** The printed graphs of every stage so far. */
export function graphTexts(s: Schedule, plan: ArenaPlan): BundleFiles {
  return new Map([
    ["graphs/forward.txt", printGraph(s.graph) + "\n"],
    ["graphs/backward.txt", printGraph(s.train) + "\n"],
    ["graphs/kernels.txt", printKernels(s, plan)],
    ["graphs/kernels.kir", printKernelIr(s)],
  ]);
}
