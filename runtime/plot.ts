// Line plots as hand-written SVG, for the trainer's loss curve and gradient
// norms: axes with ticks, a linear or log-scale y axis, one path per series
// and a legend. No dependencies; every piece of text is escaped.

/** One line of a plot: (x, y) points in order of x. */
export interface Series {
  readonly name: string;
  readonly points: readonly (readonly [number, number])[];
}

/** What `linePlot` draws around the lines. */
export interface PlotOptions {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  /** A log10 y axis; points with y ≤ 0 are left out (the line breaks there). */
  readonly logY?: boolean;
  /** Size of the plotting area in pixels (default 640 × 360); the legend adds to the width. */
  readonly width?: number;
  readonly height?: number;
  /** Series longer than this are averaged down to it, in buckets of consecutive points (default 2000). */
  readonly maxPoints?: number;
}

/** Text made safe for SVG/XML content and attribute values. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!)
    // characters XML 1.0 does not allow at all
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, "\ufffd");
}

/** About `count` round tick values (1, 2 or 5 × 10^k apart) covering [min, max]. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!(max > min)) return [min];
  const raw = (max - min) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return ticks;
}

/** Powers of ten from below `min` to at or above `max` (both > 0), every k-th decade so that at most ~9 are shown. */
export function logTicks(min: number, max: number): number[] {
  const lo = Math.floor(Math.log10(min));
  const hi = Math.ceil(Math.log10(max));
  const every = Math.max(1, Math.ceil((hi - lo) / 8));
  const ticks: number[] = [];
  for (let e = lo; e < hi + every; e += every) ticks.push(Number(`1e${e}`));
  return ticks;
}

/** A tick label: short, exponent form for very large or small values. */
export function tickLabel(v: number, log = false): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (log && (a < 1e-3 || a >= 1e4)) return `1e${Math.round(Math.log10(a))}`;
  if (a < 1e-3 || a >= 1e6) return v.toExponential(1).replace(/\.0e/, "e").replace("e+", "e");
  return String(Number(v.toPrecision(6)));
}

/** Ten colors that tell lines apart; longer lists get a gradient from first (blue) to last (red). */
const PALETTE = ["#1f6fb4", "#e8771a", "#2a9d3a", "#cf2e2e", "#8a5cc2", "#8c564b", "#d957b0", "#6f6f6f", "#a8a820", "#17a8bd"];

/** The color of series `i` of `n`. */
export function seriesColor(i: number, n: number): string {
  if (n <= PALETTE.length) return PALETTE[i]!;
  // from blue (first parameter, the input side) to red (last, the output side)
  const hue = Math.round(235 - (235 * i) / Math.max(1, n - 1));
  return `hsl(${hue}, 75%, ${hue > 40 && hue < 200 ? 36 : 46}%)`;
}

/** Averages consecutive points into at most `max` points. */
export function downsample(points: readonly (readonly [number, number])[], max: number): (readonly [number, number])[] {
  if (points.length <= max) return [...points];
  const out: [number, number][] = [];
  const per = points.length / max;
  for (let b = 0; b < max; b++) {
    const from = Math.floor(b * per);
    const to = Math.floor((b + 1) * per);
    let sx = 0;
    let sy = 0;
    for (let i = from; i < to; i++) {
      sx += points[i]![0];
      sy += points[i]![1];
    }
    out.push([sx / (to - from), sy / (to - from)]);
  }
  return out;
}

const r1 = (v: number): string => String(Math.round(v * 10) / 10);

/**
 * An SVG line plot of `series`: one `<path>` per series (in order), x and y
 * axes with tick labels and grid lines, a title, axis labels and a legend to
 * the right of the plotting area (in as many columns as it needs).
 */
export function linePlot(series: readonly Series[], options: PlotOptions): string {
  const W = options.width ?? 640;
  const H = options.height ?? 360;
  const log = options.logY === true;
  const maxPoints = options.maxPoints ?? 2000;
  const left = 78;
  const top = 42;
  const bottom = 52;
  const rowH = 18;
  const legendW = 190;
  const perColumn = Math.max(1, Math.floor(H / rowH));
  // a single line needs no legend
  const columns = series.length > 1 ? Math.ceil(series.length / perColumn) : 0;
  const width = left + W + 20 + columns * legendW;
  const height = top + H + bottom;

  const data = series.map((s) => downsample(s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)), maxPoints));
  const drawable = (y: number): boolean => !log || y > 0;
  const xs = data.flatMap((d) => d.map(([x]) => x));
  const ys = data.flatMap((d) => d.filter(([, y]) => drawable(y)).map(([, y]) => y));
  let [x0, x1] = xs.length ? [Math.min(...xs), Math.max(...xs)] : [0, 1];
  if (!(x1 > x0)) [x0, x1] = [x0 - 1, x0 + 1];
  let [y0, y1] = ys.length ? [Math.min(...ys), Math.max(...ys)] : log ? [0.1, 10] : [0, 1];
  if (log) {
    if (!(y1 > y0)) [y0, y1] = [y0 / 10, y0 * 10];
    // the axis runs from tick to tick
    const ticks = logTicks(y0, y1);
    [y0, y1] = [ticks[0]!, ticks.at(-1)!];
  } else {
    if (!(y1 > y0)) [y0, y1] = [y0 - 1, y0 + 1];
    const pad = (y1 - y0) * 0.05;
    [y0, y1] = [y0 - pad, y1 + pad];
  }
  const px = (x: number): number => left + ((x - x0) / (x1 - x0)) * W;
  const fy = (y: number): number => (log ? Math.log10(y) : y);
  const py = (y: number): number => top + H - ((fy(y) - fy(y0)) / (fy(y1) - fy(y0))) * H;

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<title>${escapeXml(options.title)}</title>`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${left + W / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(options.title)}</text>`,
  ];
  // grid and ticks
  const yTicks = log ? logTicks(y0, y1) : niceTicks(y0, y1, 6);
  for (const t of yTicks) {
    const y = r1(py(t));
    out.push(`<line x1="${left}" y1="${y}" x2="${left + W}" y2="${y}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${escapeXml(tickLabel(t, log))}</text>`);
  }
  for (const t of niceTicks(x0, x1, 6)) {
    const x = r1(px(t));
    out.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${top + H}" stroke="#eeeeee"/>`);
    out.push(`<text x="${x}" y="${top + H + 18}" text-anchor="middle">${escapeXml(tickLabel(t))}</text>`);
  }
  out.push(`<rect x="${left}" y="${top}" width="${W}" height="${H}" fill="none" stroke="#333333"/>`);
  out.push(`<text x="${left + W / 2}" y="${top + H + 40}" text-anchor="middle">${escapeXml(options.xLabel)}</text>`);
  out.push(
    `<text x="18" y="${top + H / 2}" text-anchor="middle" transform="rotate(-90 18 ${top + H / 2})">${escapeXml(options.yLabel + (log ? " (log scale)" : ""))}</text>`,
  );
  // the lines: one path per series; a point that cannot be drawn breaks its line
  data.forEach((points, i) => {
    let d = "";
    let pen = false;
    for (const [x, y] of points) {
      if (!drawable(y)) {
        pen = false;
        continue;
      }
      d += `${pen ? "L" : d ? " M" : "M"}${r1(px(x))} ${r1(py(y))}`;
      if (!pen && points.length === 1) d += " l0 0";
      pen = true;
    }
    out.push(`<path d="${d}" fill="none" stroke="${seriesColor(i, series.length)}" stroke-width="1.6" stroke-linejoin="round" stroke-linecap="round"/>`);
  });
  // the legend
  if (columns) series.forEach((s, i) => {
    const x = left + W + 20 + Math.floor(i / perColumn) * legendW;
    const y = top + 8 + (i % perColumn) * rowH;
    const name = s.name.length > 26 ? `${s.name.slice(0, 25)}…` : s.name;
    out.push(`<line x1="${x}" y1="${y}" x2="${x + 22}" y2="${y}" stroke="${seriesColor(i, series.length)}" stroke-width="3"/>`);
    out.push(`<text x="${x + 28}" y="${y}" dominant-baseline="middle">${escapeXml(name)}</text>`);
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}
