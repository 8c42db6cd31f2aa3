// The gradient slice of one param: exactly the backward kernels its gradient
// depends on, in execution order, with the forward kernels they read listed
// apart; printed as the emitted TypeScript of step.ts.
import { readFileSync } from "node:fs";
import path from "node:path";
import ts from "typescript";
import type { Graph } from "../ir/graph.js";
import { reachable } from "../ir/graph.js";
import type { Tensor } from "../ir/node.js";
import type { KernelEntry, ParamEntry } from "../../runtime/manifest.js";
import type { BundleView } from "./bundleData.js";
import { nodesOfKernel } from "./bundleData.js";
import { commentText } from "../codegen/names.js";

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

/**
 * The slice of param `name`. With graph data, a kernel belongs to it when it
 * computes a node that dLoss/dNAME depends on: to `backward` when one such
 * node is a backward node (or it copies the gradient out), else to `forward`.
 */
export function gradSlice(view: BundleView, name: string): GradSlice {
  const param = findParam(view, name);
  const m = view.manifest;
  const running = m.kernels.filter((k) => k.entry.includes("gradients"));
  if (!view.train) {
    const backward = running.filter((k) => k.gradOf?.includes(name));
    if (!backward.length) throw new Error(`param "${name}" has no gradient kernels${param.trainable ? "" : " (it is frozen)"}`);
    return { param, backward, forward: [], exact: false };
  }
  if (!param.trainable) throw new Error(`param "${name}" is frozen (trainable: false); it has no gradient kernels`);
  const needed = gradAncestors(view.train, name);
  const backward: KernelEntry[] = [];
  const forward: KernelEntry[] = [];
  for (const k of running) {
    const nodes = nodesOfKernel(view, k.name);
    if (nodes.length === 0) {
      // no graph node: the copy of a gradient out of an input or param buffer
      if (k.gradOf?.length === 1 && k.gradOf[0] === name) backward.push(k);
      continue;
    }
    const hits = nodes.filter((t) => needed.has(t));
    if (!hits.length) continue;
    (hits.some((t) => t.origin) ? backward : forward).push(k);
  }
  return { param, backward, forward, exact: true };
}

/** The top-level function declarations of a source file, by name, each with its JSDoc. */
export function functionSources(source: string, file = "step.ts"): Map<string, string> {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const out = new Map<string, string>();
  for (const st of sf.statements) {
    if (ts.isFunctionDeclaration(st) && st.name) {
      // getStart with JSDoc included starts at the comment above the function
      out.set(st.name.text, source.slice(st.getStart(sf, true), st.end));
    }
  }
  return out;
}

/** The emitted TypeScript of step (step.ts beside step.js) and its path. */
export function stepSource(view: BundleView): { file: string; functions: Map<string, string> } {
  const file = path.join(view.dir, view.manifest.files.step.replace(/\.js$/, ".ts"));
  return { file, functions: functionSources(readFileSync(file, "utf8"), file) };
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
  const code = (k: KernelEntry): string => functions.get(k.name) ?? `// ${k.name}: ${k.node} (not found in ${file})`;
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
