// The self-contained HTML page of a drawn graph: the SVG inline, a legend,
// the printed graph text, and a policy that forbids scripts and any fetch.
import { STYLE } from "./dot.js";
import type { NodeStyle } from "./dot.js";

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
