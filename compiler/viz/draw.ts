// `gradc graph <dir> --format dot|svg|html`: a bundle's forward or training
// graph drawn from its graph data, with fused kernels as clusters and one
// gradient's path highlighted, as DOT text, an SVG, or a self-contained page.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Graph } from "../ir/graph.js";
import { printGraph } from "../ir/printer.js";
import { UsageError } from "../../runtime/flags.js";
import type { BundleView } from "../inspect/bundleData.js";
import { nodesOfKernel, readBundle } from "../inspect/bundleData.js";
import type { KernelGroup, NodeStyle } from "./dot.js";
import { drawnNodes, gradPath, graphDot, styleOf } from "./dot.js";
import { graphPage, inlineSvg, renderSvg } from "./render.js";

export type DrawFormat = "dot" | "svg" | "html";
export type DrawStage = "forward" | "backward";

export interface DrawRequest {
  readonly format: DrawFormat;
  /** forward, or backward (the training graph; `kernels` and `fused` mean the same here). */
  readonly stage: string;
  readonly highlightGrad?: string;
}

/** A drawing of a bundle's graph: the document and what it shows. */
export interface Drawing {
  readonly text: string;
  readonly stage: DrawStage;
  readonly nodes: number;
  /** Kernels drawn as clusters (those computing two drawn nodes or more). */
  readonly clusters: number;
}

/** The stage a drawing shows. */
export function drawStage(stage: string): DrawStage {
  if (stage === "forward") return "forward";
  if (stage === "backward" || stage === "kernels" || stage === "fused") return "backward";
  throw new UsageError(`--format dot, svg and html draw the forward or backward stage (got "${stage}")`);
}

/** Every kernel with the training-graph nodes it computes. */
export function kernelGroups(view: BundleView): KernelGroup[] {
  return view.manifest.kernels.map((k) => ({ name: k.name, nodes: nodesOfKernel(view, k.name) })).filter((k) => k.nodes.length > 0);
}

function clusterCount(g: Graph, stage: DrawStage, kernels: readonly KernelGroup[]): number {
  const drawn = new Set(drawnNodes(g, stage));
  const placed = new Set();
  let n = 0;
  for (const k of kernels) {
    const members = k.nodes.filter((t) => drawn.has(t) && !placed.has(t));
    if (members.length < 2) continue;
    members.forEach((t) => placed.add(t));
    n++;
  }
  return n;
}

/** Draws a bundle's graph (see DrawRequest). */
export async function drawBundle(dir: string, req: DrawRequest): Promise<Drawing> {
  const view = readBundle(dir);
  const stage = drawStage(req.stage);
  const g = view.train;
  if (!g) throw new Error(`${dir} has no graph data (graphs/train.json); compile it again with this gradc to draw it`);
  const name = req.highlightGrad;
  if (name !== undefined && !g.grads[name]) {
    throw new Error(`no gradient "${name}" to highlight in ${view.manifest.name}; the gradients are ${Object.keys(g.grads).join(", ") || "(none)"}`);
  }
  const kernels = kernelGroups(view);
  const dot = graphDot(g, { stage, kernels, ...(name !== undefined ? { highlightGrad: name } : {}) });
  const nodes = drawnNodes(g, stage);
  const clusters = clusterCount(g, stage, kernels);
  const base = { stage, nodes: nodes.length, clusters };
  if (req.format === "dot") return { ...base, text: dot };
  const svg = await renderSvg(dot);
  if (req.format === "svg") return { ...base, text: svg };

  const shown = stage === "forward" ? g.with({ grads: {} }) : g;
  const used = new Set<NodeStyle>(nodes.map(styleOf));
  if (name !== undefined) used.add("highlight");
  const legend = (["input", "param", "const", "forward", "backward", "highlight"] as const).filter((s) => used.has(s));
  const facts = [
    `${nodes.length} nodes`,
    clusters ? `${clusters} fused kernels drawn as clusters` : `${kernels.length} graph kernels, none fused`,
    ...(name !== undefined ? [`highlighted: the ${gradPath(g, name).size} backward nodes dLoss/d${name} depends on`] : []),
  ];
  const text = graphPage({
    title: `${view.manifest.name}: ${stage} graph`,
    subtitle: facts.join("; "),
    svg: inlineSvg(svg),
    text: printGraph(shown),
    legend,
  });
  return { ...base, text };
}

/**
 * `gradc graph --format ...`: draws the bundle and returns what to print.
 * DOT and SVG go to stdout (the text is returned) unless `out` names a file;
 * the HTML page goes to `out` or <dir>/graphs/graph.html, and a line says so.
 */
export async function writeDrawing(dir: string, req: DrawRequest, out?: string): Promise<string> {
  const d = await drawBundle(dir, req);
  const file = out ?? (req.format === "html" ? path.join(dir, "graphs", "graph.html") : undefined);
  if (file === undefined) return d.text.trimEnd();
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, d.text);
  const clusters = d.clusters ? `, ${d.clusters} fused kernels as clusters` : "";
  return `wrote ${file} (${d.stage} graph: ${d.nodes} nodes${clusters}${req.highlightGrad !== undefined ? `, dLoss/d${req.highlightGrad} highlighted` : ""})`;
}
