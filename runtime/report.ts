// The training report: one self-contained HTML page with the loss and
// gradient-norm plots inline, the final numbers and the compile report.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "./safetensors.js";

/** Text for HTML: the five characters that could open markup or an attribute are escaped. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export interface ReportFacts {
  /** The model's name. */
  readonly model: string;
  /** Lines of results to show (final loss, accuracy, steps, time). */
  readonly results: readonly string[];
  /** SVG files written by the trainer, shown inline in this order. */
  readonly plots: readonly string[];
}

/**
 * Writes `<logs>/report.html`: the plots (already escaped SVG written by
 * runtime/plot.ts), the results, and the bundle's compile report
 * (report.json's text) when the bundle has one. Returns its path.
 */
export function writeReport(bundleDir: string, logs: string, facts: ReportFacts): string {
  const file = join(logs, "report.html");
  const compileReport = join(bundleDir, "report.json");
  let compileText = "";
  if (existsSync(compileReport)) {
    const r = JSON.parse(readFileSync(compileReport, "utf8")) as { text?: unknown };
    if (typeof r.text === "string") compileText = r.text;
  }
  const svgs = facts.plots.filter((p) => existsSync(p)).map((p) => readFileSync(p, "utf8").replace(/^<\?xml[^>]*>\s*/, ""));
  const page = [
    "<!doctype html>",
    '<html lang="en"><head><meta charset="utf-8">',
    // nothing runs and nothing is fetched: the page is data only
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`,
    `<title>${escapeHtml(facts.model)}: training report</title>`,
    "<style>body{font:14px system-ui,sans-serif;margin:24px;max-width:960px}pre{background:#f6f6f6;padding:12px;overflow:auto}figure{margin:16px 0}figure svg{max-width:100%;height:auto}pre{white-space:pre-wrap}</style>",
    "</head><body>",
    `<h1>${escapeHtml(facts.model)}: training report</h1>`,
    `<ul>${facts.results.map((r) => `<li>${escapeHtml(r)}</li>`).join("")}</ul>`,
    ...svgs.map((svg) => `<figure>${svg}</figure>`),
    ...(compileText ? ["<h2>Compile report</h2>", `<pre>${escapeHtml(compileText)}</pre>`] : []),
    "</body></html>",
    "",
  ].join("\n");
  writeFileAtomic(file, page);
  return file;
}
