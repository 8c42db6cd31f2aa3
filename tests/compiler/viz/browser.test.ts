// The XOR bundle's graph page in headless Chromium (Debian's chromium through
// playwright-core): the SVG renders, a matmul node is visible, the W1
// gradient's path is highlighted, nothing is fetched, and a screenshot is a
// real picture. Fails, never skips, when chromium is missing.
import { readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { chromiumForFile, watchPage } from "../../chromium.js";
import { writeDrawing } from "../../../compiler/viz/draw.js";
import { STYLE, drawnNodes, gradPath } from "../../../compiler/viz/dot.js";
import { readBundle } from "../../../compiler/inspect/bundleData.js";
import { exampleBundle, removeBundles } from "../inspect/bundles.js";
import { distinctColours, readPng, shareOf } from "./png.js";

const browser = chromiumForFile(removeBundles);

const rgb = (hex: string): [number, number, number] => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];

describe("the graph page in a browser", () => {
  it("renders the XOR training graph with dW1's path highlighted", async () => {
    const { dir } = await exampleBundle("xor");
    // the page as `gradc graph <dir> --stage backward --format html --highlight-grad W1` writes it
    const said = await writeDrawing(dir, { format: "html", stage: "backward", highlightGrad: "W1" });
    const file = path.join(dir, "graphs", "graph.html");
    expect(said).toMatch(/^wrote .*graphs\/graph\.html \(backward graph: \d+ nodes/);
    const drawing = { nodes: drawnNodes(readBundle(dir).train!, "backward").length };
    const page = await browser().newPage();
    const { requests, problems } = watchPage(page);
    await page.goto(pathToFileURL(file).href);

    const nodes = page.locator("div.drawing svg g.node");
    expect(await nodes.count()).toBe(drawing.nodes);
    expect(drawing.nodes).toBeGreaterThan(20);
    const matmul = page.locator("svg g.node", { hasText: "matmul" }).first();
    await expect(matmul.isVisible()).resolves.toBe(true);
    const box = await matmul.boundingBox();
    expect(box!.width).toBeGreaterThan(50);
    // the highlighted path: dW1's backward nodes (and W1 itself), joined by highlighted edges
    const g = readBundle(dir).train!;
    const drawnIds = new Set(await nodes.evaluateAll((els) => els.map((e) => e.id)));
    const expected = [...gradPath(g, "W1")].filter((t) => drawnIds.has(`n${t.id}`)).length + 1;
    expect(await page.locator("svg g.node.hl").count()).toBe(expected);
    expect(await page.locator("svg g.edge.hl").count()).toBeGreaterThan(2);
    expect(await page.locator("svg g.node.hl", { hasText: "dW1" }).isVisible()).toBe(true);
    expect(await page.locator("ul.legend li").count()).toBeGreaterThanOrEqual(4);
    expect(await page.locator("pre.graph-text").textContent()).toContain("in (loss=");
    // self-contained: the page itself is the only request, and nothing complained
    expect(requests).toEqual([pathToFileURL(file).href]);
    expect(problems).toEqual([]);

    const shot = path.join(dir, "graph.png");
    await page.screenshot({ path: shot, fullPage: true });
    await page.close();
    const bytes = readFileSync(shot);
    expect(bytes.length).toBeGreaterThan(20_000);
    const png = readPng(bytes);
    expect(png.width).toBe(1280);
    expect(png.height).toBeGreaterThan(600);
    expect(distinctColours(png)).toBeGreaterThan(50);
    // the backward and highlight fills are on screen, and white does not fill everything
    expect(shareOf(png, rgb(STYLE.highlight.fill))).toBeGreaterThan(0.002);
    expect(shareOf(png, rgb(STYLE.backward.fill))).toBeGreaterThan(0.002);
    expect(shareOf(png, [255, 255, 255])).toBeLessThan(0.97);
  });
});
