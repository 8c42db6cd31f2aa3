// The SVG line plots: well-formed markup, one path per series, escaped text,
// ticks on linear and log axes.
import { describe, expect, it } from "vitest";
import { downsample, escapeXml, linePlot, logTicks, niceTicks, seriesColor, tickLabel } from "../../runtime/plot.js";
import type { Series } from "../../runtime/plot.js";
import { checkBalanced } from "./svg.js";

const line = (name: string, f: (x: number) => number, n = 50): Series => ({ name, points: Array.from({ length: n }, (_, i) => [i + 1, f(i + 1)] as const) });

describe("linePlot", () => {
  it("writes balanced SVG with one path per series and a legend entry each", () => {
    const series = [line("W1", (x) => 1 / x), line("b1", (x) => 2 / x), line("W2", (x) => Math.exp(-x / 10))];
    const svg = linePlot(series, { title: "norms", xLabel: "step", yLabel: "norm", logY: true });
    const tags = checkBalanced(svg);
    expect(tags[0]).toBe("svg");
    expect(svg.match(/<path /g)?.length).toBe(3);
    for (const s of series) expect(svg).toContain(`>${s.name}</text>`);
    // each path starts with a move and draws 49 segments
    for (const d of svg.matchAll(/<path d="([^"]*)"/g)) {
      expect(d[1]!.startsWith("M")).toBe(true);
      expect(d[1]!.match(/L/g)?.length).toBe(49);
    }
    expect(svg).toContain("(log scale)");
  });

  it("escapes hostile names and titles", () => {
    const hostile = `</text><script>alert("x")</script>&<!--`;
    const svg = linePlot([line(hostile, (x) => x), line("a'b\"c", (x) => x + 1)], { title: `<b>${hostile}`, xLabel: "x & y", yLabel: "<y>" });
    checkBalanced(svg);
    expect(svg).not.toContain("<script");
    expect(svg).not.toContain("<b>");
    expect(svg).toContain("&lt;/text&gt;&lt;script&gt;");
    expect(svg).toContain("x &amp; y");
    expect(svg).toContain("a&#39;b&quot;c");
    expect(svg.match(/<path /g)?.length).toBe(2);
  });

  it("breaks a log-scale line at values it cannot draw, keeping one path", () => {
    const s: Series = { name: "g", points: [[1, 1], [2, 0.1], [3, 0], [4, NaN], [5, 0.01], [6, 0.001]] };
    const svg = linePlot([s], { title: "t", xLabel: "x", yLabel: "y", logY: true });
    checkBalanced(svg);
    const d = /<path d="([^"]*)"/.exec(svg)![1]!;
    expect(d.match(/M/g)?.length).toBe(2);
    expect(d.match(/L/g)?.length).toBe(2);
    expect(svg.match(/<path /g)?.length).toBe(1);
  });

  it("copes with no points, one point and a flat line", () => {
    for (const points of [[], [[3, 2]], [[1, 5], [2, 5], [3, 5]]] as const) {
      const svg = linePlot([{ name: "s", points }], { title: "t", xLabel: "x", yLabel: "y" });
      checkBalanced(svg);
      expect(svg).not.toMatch(/NaN|Infinity/);
    }
    expect(checkBalanced(linePlot([], { title: "empty", xLabel: "x", yLabel: "y", logY: true }))).toContain("svg");
  });

  it("lays a long legend out in columns and colors many series apart", () => {
    const series = Array.from({ length: 60 }, (_, i) => line(`layer${i}.W`, (x) => (i + 1) / x, 5));
    const svg = linePlot(series, { title: "t", xLabel: "x", yLabel: "y", logY: true, height: 360 });
    checkBalanced(svg);
    const width = Number(/<svg[^>]* width="(\d+(?:\.\d+)?)"/.exec(svg)![1]);
    const one = Number(/<svg[^>]* width="(\d+(?:\.\d+)?)"/.exec(linePlot(series.slice(0, 3), { title: "t", xLabel: "x", yLabel: "y" }))![1]);
    expect(width).toBeGreaterThan(one + 150);
    const colors = new Set(Array.from({ length: 60 }, (_, i) => seriesColor(i, 60)));
    expect(colors.size).toBeGreaterThan(50);
  });
});

describe("ticks and helpers", () => {
  it("picks round linear ticks inside the range", () => {
    const unit = niceTicks(0, 1, 5);
    expect(unit.length).toBe(6);
    unit.forEach((v, i) => expect(v).toBeCloseTo(i / 5, 12));
    const t = niceTicks(3, 997, 6);
    expect(t[0]).toBeGreaterThanOrEqual(3);
    expect(t.at(-1)).toBeLessThanOrEqual(997);
    expect(t.slice(1).map((v, i) => v - t[i]!)).toEqual(Array(t.length - 1).fill(200));
  });

  it("puts log ticks on decades, thinned over wide ranges", () => {
    expect(logTicks(1e-3, 10)).toEqual([1e-3, 1e-2, 1e-1, 1, 10]);
    expect(logTicks(2e-3, 5)).toEqual([1e-3, 1e-2, 1e-1, 1, 10]);
    const wide = logTicks(1e-14, 1e2);
    expect(wide.length).toBeLessThanOrEqual(9);
    expect(wide[0]).toBe(1e-14);
    expect(wide.at(-1)).toBeGreaterThanOrEqual(1e2);
    // evenly spaced in decades
    const steps = wide.slice(1).map((v, i) => Math.round(Math.log10(v / wide[i]!)));
    expect(new Set(steps).size).toBe(1);
  });

  it("labels ticks briefly", () => {
    expect(tickLabel(1e-12, true)).toBe("1e-12");
    expect(tickLabel(0.01, true)).toBe("0.01");
    expect(tickLabel(200)).toBe("200");
    expect(tickLabel(0.6000000000000001)).toBe("0.6");
    expect(tickLabel(2.5e7)).toBe("2.5e7");
  });

  it("escapes the five XML specials and drops control characters", () => {
    expect(escapeXml(`<a href="x">&'</a>`)).toBe("&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
    expect(escapeXml("a\u0001b")).toBe("a\ufffdb");
  });

  it("averages long series down to the point budget", () => {
    const pts = Array.from({ length: 1000 }, (_, i) => [i, i % 2] as const);
    const d = downsample(pts, 100);
    expect(d.length).toBe(100);
    for (const [, y] of d) expect(y).toBeCloseTo(0.5, 10);
    expect(downsample(pts.slice(0, 10), 100).length).toBe(10);
  });
});
