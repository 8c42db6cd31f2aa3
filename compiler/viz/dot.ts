// A graph as Graphviz DOT text: one node per printed binding (inputs and
// params as sources, backward nodes in their own colour), the nodes of a fused
// kernel in a cluster named after it, and one gradient's path highlighted.
// Every piece of user text is escaped; node ids are generated, never user text.
import type { Graph } from "../ir/graph.js";
import { reachable } from "../ir/graph.js";
import type { Tensor } from "../ir/node.js";
import { describeOrigin, printedName } from "../ir/printer.js";
import { printedNodes } from "../lower/names.js";
import { literalValue } from "../ir/constants.js";

/** Colours of the drawing, shared with the HTML legend. */
export const STYLE = {
  input: { fill: "#dbeafe", line: "#1d4ed8", text: "input" },
  param: { fill: "#fef3c7", line: "#b45309", text: "param" },
  const: { fill: "#f3f4f6", line: "#6b7280", text: "constant" },
  forward: { fill: "#ffffff", line: "#374151", text: "forward op" },
  backward: { fill: "#ede9fe", line: "#6d28d9", text: "backward op (gradient)" },
  highlight: { fill: "#fee2e2", line: "#dc2626", text: "on the highlighted gradient's path" },
} as const;

export type NodeStyle = keyof typeof STYLE;

/** A kernel as the drawing needs it: its name and the nodes it computes. */
export interface KernelGroup {
  readonly name: string;
  readonly nodes: readonly Tensor[];
}

export interface DotOptions {
  /** forward: what the loss and outputs need; backward: the whole training graph (default). */
  readonly stage?: "forward" | "backward";
  /** Kernels of the schedule: each one with several drawn nodes becomes a cluster. */
  readonly kernels?: readonly KernelGroup[];
  /** A param whose gradient's backward path is highlighted. */
  readonly highlightGrad?: string;
}

// Characters that end a line, reorder text (bidi controls) or are invisible: shown as \uXXXX.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

/**
 * Text as the inside of a DOT double-quoted string, shown literally: control
 * and bidi characters as \uXXXX, and backslashes doubled so that Graphviz's
 * escapes (\n, \N, \G, \l) cannot be spelled by user text.
 */
export function dotText(text: string): string {
  return text
    .replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
    .replace(/\\/g, "\\\\")
    .replace(/"/g, '\\"');
}

/** A DOT quoted string of lines (each escaped), left-justified. */
function label(lines: readonly string[]): string {
  return `"${lines.map((l) => `${dotText(l)}\\l`).join("")}"`;
}

/** Scalar and uniform constants: the printer writes them inline, so they get no node. */
function inline(t: Tensor): boolean {
  return literalValue(t) !== undefined;
}

/** How a node is drawn. */
export function styleOf(t: Tensor): NodeStyle {
  if (t.op === "input") return "input";
  if (t.op === "param") return "param";
  if (t.op === "const") return "const";
  return t.origin ? "backward" : "forward";
}

/** The nodes drawn for a stage, in graph order. */
export function drawnNodes(g: Graph, stage: "forward" | "backward"): Tensor[] {
  const shown = stage === "forward" ? g.with({ grads: {} }) : g;
  const nodes = new Set(shown.nodes);
  // inputs and params the stage does not read are drawn too, as the graph's signature
  for (const s of [...g.inputs, ...g.params]) nodes.add(s.node);
  return [...nodes].filter((t) => !inline(t)).sort((a, b) => a.id - b.id);
}

/** The backward nodes dLoss/dNAME depends on, itself included. */
export function gradPath(g: Graph, name: string): Set<Tensor> {
  const root = g.grads[name];
  if (!root) throw new Error(`graph "${g.name}" has no gradient for "${name}"; the gradients are ${Object.keys(g.grads).join(", ") || "(none)"}`);
  return new Set(reachable([root]).filter((t) => t.origin !== undefined || t === root));
}

/** The roots as labels: loss, outputs by name, gradients as dNAME. */
function resultNames(g: Graph, stage: "forward" | "backward"): Map<Tensor, string[]> {
  const out = new Map<Tensor, string[]>();
  const add = (t: Tensor, n: string) => out.set(t, [...(out.get(t) ?? []), n]);
  if (g.loss) add(g.loss, "loss");
  for (const [k, t] of Object.entries(g.outputs)) add(t, k);
  if (stage === "backward") for (const [k, t] of Object.entries(g.grads)) add(t, `d${k}`);
  return out;
}

/** The DOT text of `g` at a stage (see DotOptions). */
export function graphDot(g: Graph, options: DotOptions = {}): string {
  const stage = options.stage ?? "backward";
  const shown = stage === "forward" ? g.with({ grads: {} }) : g;
  const printed = printedNodes(shown);
  const nodes = drawnNodes(g, stage);
  const drawn = new Set(nodes);
  const id = (t: Tensor) => `n${t.id}`;
  const path = options.highlightGrad !== undefined ? gradPath(g, options.highlightGrad) : new Set<Tensor>();
  const param = options.highlightGrad !== undefined ? g.param(options.highlightGrad)?.node : undefined;
  const results = resultNames(g, stage);

  const nodeLine = (t: Tensor): string => {
    const st = STYLE[styleOf(t)];
    const p = printed.get(t);
    const head = t.op === "input" || t.op === "param" ? `${printedName(p?.name ?? t.op)}: ${t.dtype}[${t.shape.join(",")}]` : (p?.binding ?? String(t));
    const lines = [head];
    const where = describeOrigin(t);
    if (where) lines.push(where);
    const res = results.get(t);
    if (res) lines.push(`→ ${res.join(", ")}`);
    const on = path.has(t) || t === param;
    const classes = [`op_${t.op}`, styleOf(t), ...(on ? ["hl"] : []), ...(res ? ["result"] : [])];
    const attrs = [
      `id="${id(t)}"`,
      `class="${classes.join(" ")}"`,
      `label=${label(lines)}`,
      `fillcolor="${on ? STYLE.highlight.fill : st.fill}"`,
      `color="${on ? STYLE.highlight.line : st.line}"`,
      ...(on ? ["penwidth=2.5"] : res ? ["penwidth=2"] : []),
      ...(t.op === "input" || t.op === "param" ? ['shape="box"', 'style="filled"'] : []),
    ];
    return `${id(t)} [${attrs.join(", ")}];`;
  };

  const lines: string[] = [
    `digraph "${dotText(g.name)}" {`,
    `  graph [rankdir="TB", fontname="Helvetica", fontsize=11, nodesep=0.3, ranksep=0.35, label="${dotText(`${g.name}: ${stage} graph`)}", labelloc="t"];`,
    `  node [shape="box", style="rounded,filled", fontname="Courier", fontsize=10, margin="0.12,0.05"];`,
    `  edge [color="#6b7280", arrowsize=0.6];`,
  ];

  // clusters: kernels that compute several of the drawn nodes (first kernel wins a shared node)
  const placed = new Set<Tensor>();
  (options.kernels ?? []).forEach((k, i) => {
    const members = k.nodes.filter((t) => drawn.has(t) && !placed.has(t));
    if (members.length < 2) return;
    members.forEach((t) => placed.add(t));
    lines.push(`  subgraph "cluster_k${i}" {`);
    lines.push(`    graph [id="kernel_${i}", class="kernel", label="${dotText(`kernel ${k.name}`)}", style="dashed,rounded", color="#9ca3af", fontname="Courier", fontsize=10];`);
    for (const t of members) lines.push(`    ${nodeLine(t)}`);
    lines.push("  }");
  });
  for (const t of nodes) if (!placed.has(t)) lines.push(`  ${nodeLine(t)}`);

  for (const t of nodes) {
    for (const i of new Set(t.inputs)) {
      if (!drawn.has(i)) continue;
      const on = path.has(t) && (path.has(i) || i === param);
      const into = path.has(t);
      const attrs = on ? ['class="hl"', `color="${STYLE.highlight.line}"`, "penwidth=2"] : into ? [`color="${STYLE.highlight.line}"`, 'style="dashed"'] : [];
      lines.push(`  ${id(i)} -> ${id(t)}${attrs.length ? ` [${attrs.join(", ")}]` : ""};`);
    }
  }
  lines.push("}");
  return lines.join("\n") + "\n";
}
