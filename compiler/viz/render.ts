// The drawing as documents: DOT → SVG with Graphviz compiled to WebAssembly
// (@viz-js/viz: no system binary, no network), and the self-contained HTML
// page around it (inline SVG, a legend, the printed graph; no scripts, no fetch).
import { instance } from "@viz-js/viz";
import type { Viz } from "@viz-js/viz";
import { STYLE } from "./dot.js";
import type { NodeStyle } from "./dot.js";

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

/** Text as HTML character data or a quoted attribute value. */
export function htmlText(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

export interface PageParts {
  /** The page title and heading (user text: escaped here). */
  readonly title: string;
  /** One line under the heading (escaped here). */
  readonly subtitle: string;
  /** The SVG element, as Graphviz wrote it (its text is escaped by Graphviz). */
  readonly svg: string;
  /** The printed graph (escaped here). */
  readonly text: string;
  /** Which legend entries apply (default: all). */
  readonly legend?: readonly NodeStyle[];
}

const CSS = `
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #111827; background: #ffffff; }
h1 { font-size: 1.3em; margin: 0 0 0.2em; }
p.sub { margin: 0 0 1em; color: #4b5563; }
ul.legend { list-style: none; padding: 0; margin: 0 0 1em; display: flex; flex-wrap: wrap; gap: 0.4em 1.2em; font-size: 0.9em; }
ul.legend li { display: flex; align-items: center; gap: 0.4em; }
ul.legend .swatch { display: inline-block; width: 1.6em; height: 1em; border: 2px solid; border-radius: 3px; }
div.drawing { overflow: auto; border: 1px solid #e5e7eb; padding: 0.5em; }
div.drawing svg { max-width: 100%; height: auto; }
pre { background: #f9fafb; border: 1px solid #e5e7eb; padding: 0.8em; overflow: auto; font-size: 0.85em; }
`;

/** The whole page as one HTML document with no external resources. */
export function graphPage(p: PageParts): string {
  const entries = p.legend ?? (Object.keys(STYLE) as NodeStyle[]);
  const legend = entries
    .map((k) => {
      const s = STYLE[k];
      return `<li class="legend-${k}"><span class="swatch" style="background:${s.fill};border-color:${s.line}"></span>${htmlText(s.text)}</li>`;
    })
    .join("\n");
  return [
    "<!DOCTYPE html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    // nothing on the page may run or load: styles are inline, the drawing is inline SVG
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${htmlText(p.title)}</title>`,
    `<style>${CSS}</style>`,
    "</head>",
    "<body>",
    `<h1>${htmlText(p.title)}</h1>`,
    `<p class="sub">${htmlText(p.subtitle)}</p>`,
    `<ul class="legend">\n${legend}\n</ul>`,
    `<div class="drawing">\n${p.svg}\n</div>`,
    "<h2>Printed graph</h2>",
    `<pre class="graph-text">${htmlText(p.text)}</pre>`,
    "</body>",
    "</html>",
    "",
  ].join("\n");
}
