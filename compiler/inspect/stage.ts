// The training graph of a bundle at one compilation stage (before the pass
// pipeline, after any pass, after all of them) and the IR slice of one
// gradient at that stage: the bindings dLoss/dNAME depends on.
import type { Graph } from "../ir/graph.js";
import type { Tensor } from "../ir/node.js";
import { describeOrigin, printedName } from "../ir/printer.js";
import { PIPELINE, runPipeline } from "../passes/pipeline.js";
import { commentText, printedNodes } from "../codegen/names.js";
import type { BundleView } from "./bundleData.js";
import { gradAncestors } from "./slice.js";

/** Stage names besides the pass names: before the pipeline, and after it. */
export const BEFORE_PIPELINE = ["input", "grad"] as const;
export const AFTER_PIPELINE = ["backward", "optimized"] as const;

/** Every stage name `stageGraph` accepts, in pipeline order. */
export function stageNames(): string[] {
  return ["forward", BEFORE_PIPELINE[0], ...PIPELINE.map((p) => p.name), AFTER_PIPELINE[0]];
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
 * built, before any pass; a pass name is the graph after that pass (the
 * pipeline is run again from the input); `backward` (or `optimized`) is the
 * graph the kernels compute; `forward` is that graph's forward bindings.
 */
export function stageGraph(view: BundleView, stage: string): StageGraph {
  if (stage === "forward") return { graph: needData(view.train, view.dir), label: "forward (the values the gradient reads)", forwardOnly: true };
  if ((AFTER_PIPELINE as readonly string[]).includes(stage)) return { graph: needData(view.train, view.dir), label: "backward (after the pass pipeline)", forwardOnly: false };
  const raw = needData(view.raw, view.dir);
  if ((BEFORE_PIPELINE as readonly string[]).includes(stage)) return { graph: raw, label: "input (as autodiff built it, before the pass pipeline)", forwardOnly: false };
  const at = PIPELINE.findIndex((p) => p.name === stage);
  if (at < 0) throw new Error(`no stage "${stage}"; the stages are ${stageNames().join(", ")}`);
  const { graph } = runPipeline(raw, { passes: PIPELINE.slice(0, at + 1) });
  return { graph, label: `after pass "${stage}" (${at + 1} of ${PIPELINE.length})`, forwardOnly: false };
}

/** Printed lines `  name:type = op args  # where`, aligned as the printer aligns them. */
export function bindingLines(g: Graph, nodes: readonly Tensor[]): string[] {
  const printed = printedNodes(g);
  const rows = nodes
    .filter((t) => t.op !== "input" && t.op !== "param" && !(t.op === "const" && t.p("const").value.length === 1))
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
