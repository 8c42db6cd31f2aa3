// DOT → SVG with Graphviz compiled to WebAssembly (@viz-js/viz): no system
// binary, no network. The instance is created once per process.
import { instance } from "@viz-js/viz";
import type { Viz } from "@viz-js/viz";

let viz: Promise<Viz> | undefined;

/** The shared Graphviz instance (its WebAssembly module loads on first use). */
function graphviz(): Promise<Viz> {
  viz ??= instance();
  return viz;
}

/** Renders DOT text to a standalone SVG document; throws with Graphviz's messages on bad input. */
export async function renderSvg(dot: string): Promise<string> {
  const v = await graphviz();
  const result = v.render(dot, { format: "svg", engine: "dot" });
  if (result.status !== "success") {
    const why = result.errors.map((e) => `${e.level ?? "error"}: ${e.message.trim()}`).join("; ");
    throw new Error(`graphviz could not render the graph: ${why || "unknown error"}`);
  }
  return result.output;
}

/** An SVG document as an element to inline in HTML: without its XML declaration, doctype and comments. */
export function inlineSvg(svg: string): string {
  const start = svg.indexOf("<svg");
  if (start < 0) throw new Error("not an SVG document");
  return svg.slice(start).replace(/<!--[\s\S]*?-->\n?/g, "").trim();
}
