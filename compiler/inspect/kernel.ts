// `gradc inspect <dir> --kernel NAME`: one kernel's emitted source, the
// buffers it reads and writes (shapes, dtypes, arena ranges), the graph nodes
// it computes, and its static cost (FLOPs, elements loaded and stored).
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import type { KernelEntry } from "../../runtime/manifest.js";
import { describeOrigin } from "../ir/printer.js";
import { commentText, printedNodes } from "../lower/names.js";
import type { BundleView, KernelBufferInfo } from "./bundleData.js";
import { noRecordedCode, nodesOfKernel } from "./bundleData.js";
import type { KernelCost } from "./flops.js";
import { humanCount } from "./flops.js";

/** The manifest entry of kernel `name`, or an error naming close matches. */
export function findKernel(view: BundleView, name: string): KernelEntry {
  const ks = view.manifest.kernels;
  const k = ks.find((x) => x.name === name);
  if (k) return k;
  const near = ks.filter((x) => x.name.toLowerCase().includes(name.toLowerCase())).map((x) => x.name);
  const hint = near.length ? `; did you mean ${near.slice(0, 5).join(", ")}?` : `; gradc graph ${view.dir} --stage kernels lists all ${ks.length}`;
  throw new Error(`no kernel "${name}" in ${view.manifest.name}${hint}`);
}

/**
 * The emitted source of a kernel (step.ts's, or forward.ts's for a kernel only
 * forward() runs), as kernels.json recorded it: the emitted modules are never
 * read back. A bundle that records no code was written by an older gradc.
 */
export function kernelSource(view: BundleView, k: KernelEntry): { file: string; text: string } {
  const source = view.kernels.get(k.name)?.source;
  if (!source) throw noRecordedCode(view, k.name);
  return { file: path.join(view.dir, source.file), text: source.text };
}

/** The bundle's record of every kernel's kernel IR (written by the bundle writer). */
export const KERNEL_IR_FILE = "graphs/kernels.kir";

/** `gradc inspect <dir> --kernel NAME --kir`: the kernel's IR as the bundle recorded it (never recomputed). */
export function kernelIrText(view: BundleView, name: string): string {
  const k = findKernel(view, name);
  const file = path.join(view.dir, KERNEL_IR_FILE);
  if (!existsSync(file)) throw new Error(`${file}: this bundle records no kernel IR; compile it again with this gradc`);
  const lines = readFileSync(file, "utf8").split("\n");
  // a kernel is printed from its header line to the first closing brace at column 0
  const start = lines.indexOf(lines.find((l) => l.startsWith(`kernel ${k.name}(`)) ?? "");
  if (start < 0) throw new Error(`${file}: no kernel IR for ${k.name}`);
  const end = lines.indexOf("}", start);
  return lines.slice(start, end + 1).join("\n") + "\n";
}

/** The wasm backend's record of its modules' text, by kernel (written by compiler/backends/wasm/wat.ts). */
export const KERNEL_WAT_FILE = "graphs/kernels.wat";

/**
 * `gradc inspect <dir> --wat`: the WebAssembly text of the bundle's modules,
 * each kernel's functions under a `;; kernel NAME (FILE)` line; with a kernel
 * name, that kernel's functions only (in every file that holds them).
 */
export function kernelWatText(view: BundleView, name?: string): string {
  const file = path.join(view.dir, KERNEL_WAT_FILE);
  if (!existsSync(file)) {
    throw new Error(`${view.dir}: this bundle has no WebAssembly text (${KERNEL_WAT_FILE}): its backend is ${view.manifest.backend}, or it was compiled by an older gradc or has no WebAssembly kernels`);
  }
  const text = readFileSync(file, "utf8");
  if (name === undefined) return text;
  const k = findKernel(view, name);
  // a kernel's section runs from its header to the next header (or a module's)
  const sections = text.split(/\n(?=;; )/).filter((part) => part.startsWith(`;; kernel ${k.name} (`));
  if (!sections.length) throw new Error(`kernel ${k.name} runs no WebAssembly: all of it is JavaScript (gradc inspect ${view.dir} --kernel ${k.name})`);
  return sections.map((part) => part.trimEnd()).join("\n\n") + "\n";
}

/** `in0  x  f32[4,2]  input  F[8:16]` rows, aligned. */
function bufferRows(list: readonly KernelBufferInfo[]): string[] {
  const cells = list.map((b) => [b.name, JSON.stringify(b.label), `${b.dtype}[${b.shape.join(",")}]`, b.role, `${b.arena}[${b.offset}:${b.offset + b.size}]`]);
  const widths = [0, 1, 2, 3].map((c) => Math.max(0, ...cells.map((r) => r[c]!.length)));
  return cells.map((r) => r.map((cell, c) => (c < 4 ? cell.padEnd(widths[c]!) : cell)).join("  "));
}

/** "128 (* 64, + 64)". */
export function costText(cost: KernelCost): string {
  const ops = Object.entries(cost.byOp)
    .sort(([, a], [, b]) => b - a)
    .map(([op, n]) => `${op} ${humanCount(n)}`)
    .join(", ");
  const total = (r: Readonly<Record<string, number>>) => Object.values(r).reduce((a, b) => a + b, 0);
  const flops = `${humanCount(cost.flops)}${ops ? ` (${ops})` : ""}${cost.branches ? ", counting the costlier branch" : ""}`;
  return `flops: ${flops}; elements loaded ${humanCount(total(cost.loads))}, stored ${humanCount(total(cost.stores))}`;
}

/** The text `gradc inspect <dir> --kernel NAME` prints: comment lines, then the function. */
export function kernelText(view: BundleView, name: string): string {
  const k = findKernel(view, name);
  const info = view.kernels.get(k.name);
  const src = kernelSource(view, k);
  const lines: string[] = [`// kernel ${k.name}: run by ${k.entry.join(", ")}; source in ${src.file}`];
  const nodes = nodesOfKernel(view, k.name);
  if (nodes.length && view.train) {
    const printed = printedNodes(view.train);
    lines.push(`// computes ${nodes.length === 1 ? "one node" : `${nodes.length} nodes`}:`);
    for (const t of nodes) {
      const why = describeOrigin(t);
      lines.push(`//   ${printed.get(t)?.binding ?? String(t)}${why ? `  # ${why}` : ""}`);
    }
  } else {
    lines.push(`// computes: ${k.node}${k.src ? `  # ${k.src}` : ""}`);
  }
  if (info) {
    const reads = info.buffers.filter((b) => b.access === "read" || b.access === "readwrite");
    const writes = info.buffers.filter((b) => b.access === "write" || b.access === "readwrite");
    const section = (title: string, list: readonly KernelBufferInfo[]) => {
      lines.push(`// ${title}:${list.length ? "" : " (none)"}`);
      for (const row of bufferRows(list)) lines.push(`//   ${row}`);
    };
    section("reads", reads);
    section("writes", writes);
    lines.push(`// ${costText(info.cost)}`);
  } else {
    lines.push("// (this bundle has no graphs/kernels.json: buffers and cost are unknown)");
  }
  if (k.gradOf?.length) lines.push(`// the gradients of ${k.gradOf.join(", ")} depend on it`);
  const head = lines.map(commentText).join("\n");
  return `${head}\n\n${src.text}`;
}
