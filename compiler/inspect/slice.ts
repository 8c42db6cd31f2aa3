// The gradient slice of one param: exactly the backward kernels its gradient
// depends on, in execution order, with the forward kernels they read listed
// apart, printed as the emitted TypeScript of step.ts; and the IR slice (the
// bindings it depends on) at any stage of the pass pipeline.
import path from "node:path";
import type { Graph } from "../ir/graph.js";
import { reachable } from "../ir/graph.js";
import type { Tensor } from "../ir/node.js";
import { describeOrigin, printedName } from "../ir/printer.js";
import { PIPELINE } from "../passes/pipeline.js";
import type { KernelEntry, ParamEntry } from "../../runtime/manifest.js";
import type { BundleView } from "./bundleData.js";
import { noRecordedCode, nodesOfKernel } from "./bundleData.js";
import { commentText, printedNodes } from "../lower/names.js";
import { literalValue } from "../ir/constants.js";

/** The kernels dLoss/dNAME depends on. */
export interface GradSlice {
  readonly param: ParamEntry;
  /** Kernels that compute backward nodes dLoss/dNAME depends on (and a gradient copy), in execution order. */
  readonly backward: readonly KernelEntry[];
  /** Forward kernels whose values the slice reads (directly or through other forward kernels). */
  readonly forward: readonly KernelEntry[];
  /**
   * True when computed from the bundle's graph data; false for bundles
   * without it, where `backward` holds every kernel the manifest's gradOf
   * names for the param, forward ones included, and `forward` is empty.
   */
  readonly exact: boolean;
}

/** The param named `name`, with an error that lists the params. */
export function findParam(view: BundleView, name: string): ParamEntry {
  const m = view.manifest;
  const param = m.params.find((p) => p.name === name);
  if (!param) throw new Error(`no param "${name}" in ${m.name}; the params are ${m.params.map((p) => p.name).join(", ") || "(none)"}`);
  return param;
}

/** dLoss/dNAME as a node of `g`, with errors for frozen or unknown params. */
export function gradNode(g: Graph, name: string): Tensor {
  const t = g.grads[name];
  if (t) return t;
  const p = g.param(name);
  if (p && !p.trainable) throw new Error(`param "${name}" is frozen (trainable: false); it has no gradient`);
  throw new Error(`graph "${g.name}" has no gradient for "${name}"; the gradients are ${Object.keys(g.grads).join(", ") || "(none)"}`);
}

/** Nodes that dLoss/dNAME depends on, itself included. */
export function gradAncestors(g: Graph, name: string): Set<Tensor> {
  return new Set(reachable([gradNode(g, name)]));
}

/** A slot or buffer range in one arena. */
interface Range {
  readonly arena: "F" | "I" | "H";
  readonly offset: number;
  readonly size: number;
}

/**
 * The kernels whose writes the final value of `target` depends on, by
 * dataflow over arena elements: kernels run in `order`; a kernel depends on
 * the last earlier writer of every element it reads. Kernels with no
 * recorded buffers are never included.
 */
export function dataflowClosure(view: BundleView, order: readonly KernelEntry[], target: Range): Set<string> {
  const m = view.manifest;
  // arena H (mixed precision's bfloat16 temporaries) is the kernel modules' own: its size is where its last buffer ends
  const halves = Math.max(0, ...[...view.kernels.values()].flatMap((k) => k.buffers.filter((b) => b.arena === "H").map((b) => b.offset + b.size)));
  const last = { F: new Int32Array(m.arena.floats).fill(-1), I: new Int32Array(m.arena.ints).fill(-1), H: new Int32Array(halves).fill(-1) };
  const writersOf = (r: Range): Set<number> => {
    const out = new Set<number>();
    const arr = last[r.arena];
    for (let i = r.offset; i < r.offset + r.size && i < arr.length; i++) if (arr[i]! >= 0) out.add(arr[i]!);
    return out;
  };
  const deps: Set<number>[] = [];
  order.forEach((k, n) => {
    const info = view.kernels.get(k.name);
    const d = new Set<number>();
    for (const b of info?.buffers ?? []) if (b.access === "read" || b.access === "readwrite") for (const w of writersOf(b)) d.add(w);
    deps.push(d);
    for (const b of info?.buffers ?? []) if (b.access === "write" || b.access === "readwrite") last[b.arena].fill(n, b.offset, b.offset + b.size);
  });
  const needed = new Set<number>();
  const stack = [...writersOf(target)];
  while (stack.length) {
    const n = stack.pop()!;
    if (needed.has(n)) continue;
    needed.add(n);
    stack.push(...deps[n]!);
  }
  return new Set([...needed].map((n) => order[n]!.name));
}

/**
 * The slice of param `name`. With graph data, it is computed by dataflow
 * over the arena: the kernels of gradients() whose writes the gradient's slot
 * depends on. Those computing a backward node go to `backward`, the rest
 * (forward values the backward pass reads) to `forward`.
 */
export function gradSlice(view: BundleView, name: string): GradSlice {
  const param = findParam(view, name);
  const m = view.manifest;
  const running = m.kernels.filter((k) => k.entry.includes("gradients"));
  const exact = view.train !== undefined && running.every((k) => view.kernels.has(k.name));
  if (!exact) {
    const backward = running.filter((k) => k.gradOf?.includes(name));
    if (!backward.length) throw new Error(`param "${name}" has no gradient kernels${param.trainable ? "" : " (it is frozen)"}`);
    return { param, backward, forward: [], exact: false };
  }
  if (!param.trainable || !param.grad) throw new Error(`param "${name}" is frozen (trainable: false); it has no gradient kernels`);
  const g = param.grad;
  const needed = dataflowClosure(view, running, { arena: g.arena, offset: g.offset, size: g.shape.reduce((a, b) => a * b, 1) });
  const backward: KernelEntry[] = [];
  const forward: KernelEntry[] = [];
  for (const k of running) {
    if (!needed.has(k.name)) continue;
    const nodes = nodesOfKernel(view, k.name);
    // a kernel with no graph node copies a gradient out of an input or param buffer
    (nodes.length === 0 || nodes.some((t) => t.origin) ? backward : forward).push(k);
  }
  if (!backward.length) throw new Error(`param "${name}" has no gradient kernels (its gradient is not computed by any kernel)`);
  return { param, backward, forward, exact: true };
}

/**
 * Step's emitted TypeScript (step.ts beside step.js): its path, and each
 * kernel's function as the bundle recorded it in kernels.json (the emitted
 * modules are never read back).
 */
export function stepSource(view: BundleView): { file: string; functions: Map<string, string> } {
  const file = path.join(view.dir, view.manifest.files.step.replace(/\.js$/, ".ts"));
  const recorded = [...view.kernels].filter(([, k]) => k.source !== undefined);
  return { file, functions: new Map(recorded.map(([name, k]) => [name, k.source!.text])) };
}

export interface SliceTextOptions {
  /** Print the forward kernels' code too, before the backward ones. */
  readonly withForward?: boolean;
}

const shapeText = (p: { dtype: string; shape: readonly number[] }): string => `${p.dtype}[${p.shape.join(",")}]`;

/**
 * `gradc inspect --grad NAME`: a header paragraph (what is printed, the
 * forward kernels the slice reads), then one paragraph per kernel: its
 * JSDoc (the node it computes, the op and line it differentiates) and code.
 */
export function sliceText(view: BundleView, name: string, options: SliceTextOptions = {}): string {
  const slice = gradSlice(view, name);
  const { file, functions } = stepSource(view);
  const code = (k: KernelEntry): string => {
    const text = functions.get(k.name);
    if (text === undefined) throw noRecordedCode(view, k.name);
    return text;
  };
  const head: string[] = [];
  if (!slice.exact) {
    head.push(`// dLoss/d${name} (${shapeText(slice.param)}): ${slice.backward.length} kernels in execution order, from ${file}`);
    head.push("// (this bundle has no graph data: forward and backward kernels are listed together, as the manifest's gradOf says)");
    return [head.join("\n"), ...slice.backward.map(code)].join("\n\n");
  }
  const printed = options.withForward ? [...slice.forward, ...slice.backward] : slice.backward;
  const what = options.withForward ? `${slice.forward.length} forward and ${slice.backward.length} backward kernels` : `${slice.backward.length} backward kernels`;
  head.push(`// dLoss/d${name} (${shapeText(slice.param)}): ${what} in execution order, from ${file}`);
  if (slice.forward.length) {
    head.push(`// forward inputs: ${slice.forward.length} forward kernels compute the values these read${options.withForward ? "" : " (--with-forward prints them)"}`);
    const width = Math.max(...slice.forward.map((k) => k.name.length));
    for (const k of slice.forward) head.push(commentText(`//   ${k.name.padEnd(width)}  ${k.node}${k.src ? `  # ${k.src}` : ""}`));
  }
  return [head.join("\n"), ...printed.map(code)].join("\n\n");
}

// ---- the IR slice at a stage ----

/** Stage names besides the pass names: before the pipeline, and after it. */
export const BEFORE_PIPELINE = ["input", "grad"] as const;
export const AFTER_PIPELINE = ["backward", "optimized"] as const;

/** Every stage name `stageGraph` accepts, in pipeline order: the passes `view` was compiled with (default: today's pipeline). */
export function stageNames(view?: BundleView): string[] {
  const passes = view?.stages ? view.stages.map((st) => st.pass) : PIPELINE.map((p) => p.name);
  return ["forward", BEFORE_PIPELINE[0], ...passes, AFTER_PIPELINE[0]];
}

/** A graph at a stage, and whether only its forward bindings are wanted. */
export interface StageGraph {
  readonly graph: Graph;
  /** How the stage is described in headers. */
  readonly label: string;
  readonly forwardOnly: boolean;
}

function needData<T>(v: T | undefined, dir: string): T {
  if (v === undefined) throw new Error(`${dir} has no graph data (graphs/train.json, graphs/grad.json); compile it again with this gradc`);
  return v;
}

/**
 * The training graph at `stage`: `input` (or `grad`) is the graph autodiff
 * built, before any pass; a pass name is the graph after that pass, as the
 * bundle recorded it; `backward` (or `optimized`) is the graph the kernels
 * compute; `forward` is that graph's forward bindings.
 */
export function stageGraph(view: BundleView, stage: string): StageGraph {
  if (stage === "forward") return { graph: needData(view.train, view.dir), label: "forward (the values the gradient reads)", forwardOnly: true };
  if ((AFTER_PIPELINE as readonly string[]).includes(stage)) return { graph: needData(view.train, view.dir), label: "backward (after the pass pipeline)", forwardOnly: false };
  const raw = needData(view.raw, view.dir);
  if ((BEFORE_PIPELINE as readonly string[]).includes(stage)) return { graph: raw, label: "input (as autodiff built it, before the pass pipeline)", forwardOnly: false };
  const stages = view.stages;
  const at = stages ? stages.findIndex((st) => st.pass === stage) : -1;
  if (!stages || at < 0) {
    if (!stages && PIPELINE.some((p) => p.name === stage)) throw new Error(`${view.dir} has no graphs after each pass (graphs/stages.json); compile it again with this gradc`);
    throw new Error(`no stage "${stage}"; the stages are ${stageNames(view).join(", ")}`);
  }
  return { graph: stages[at]!.graph(), label: `after pass "${stage}" (${at + 1} of ${stages.length})`, forwardOnly: false };
}

/** Printed lines `  name:type = op args  # where`, aligned as the printer aligns them. */
export function bindingLines(g: Graph, nodes: readonly Tensor[]): string[] {
  const printed = printedNodes(g);
  const rows = nodes
    .filter((t) => t.op !== "input" && t.op !== "param" && literalValue(t) === undefined)
    .map((t): [string, string] => [`  ${printed.get(t)?.binding ?? String(t)}`, describeOrigin(t)]);
  const width = Math.min(72, Math.max(0, ...rows.map(([s]) => s.length)));
  return rows.map(([s, c]) => commentText(c ? `${s.padEnd(width)}  # ${c}` : s));
}

/**
 * The IR slice of dLoss/dNAME at a stage: a header, the sources it reads,
 * then every binding it depends on in graph order (with `forwardOnly`, the
 * forward ones only).
 */
export function irSliceText(st: StageGraph, name: string): string {
  const g = st.graph;
  const needed = gradAncestors(g, name);
  const nodes = g.nodes.filter((t) => needed.has(t) && (!st.forwardOnly || !t.origin));
  const printed = printedNodes(g);
  const bound = bindingLines(g, nodes);
  const sources = nodes.filter((t) => t.op === "input" || t.op === "param").map((t) => `${printedName(printed.get(t)!.name)}:${t.dtype}[${t.shape.join(",")}]`);
  const what = st.forwardOnly ? "forward bindings" : "bindings";
  const result = st.forwardOnly ? "" : `  in (d${printedName(name)}=${printed.get(g.grads[name]!)!.name})`;
  return commentText(`# dLoss/d${printedName(name)} at stage ${st.label}: ${bound.length} ${what}, reading ${sources.join(", ") || "nothing"}`) + "\n" + [...bound, ...(result ? [commentText(result)] : [])].join("\n");
}
