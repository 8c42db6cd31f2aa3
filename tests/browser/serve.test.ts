// `gradc serve` in headless Chromium (Debian's chromium through
// playwright-core): the XOR page trains 1000 steps to a loss below 1e-3 with
// exactly Node's losses, the MNIST page trains one epoch to > 90% test
// accuracy and shows its plot, its gradient code and the digit pad's
// probabilities; the server refuses every path outside the bundle. Fails,
// never skips, when chromium is missing.
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BrowserContext, Page } from "playwright-core";
import { launchChromium } from "../chromium.js";
import type { Chromium } from "../chromium.js";
import { main as train } from "../../runtime/trainer.js";
import { parseCsv } from "../../runtime/gradNorms.js";
import { serveBundle } from "../../compiler/serve/server.js";
import type { Serving } from "../../compiler/serve/server.js";
import { exampleBundle, removeBundles } from "../compiler/inspect/bundles.js";
import { distinctColours, readPng, shareOf } from "../compiler/viz/png.js";

const scratch = mkdtempSync(path.join(tmpdir(), "gradc-serve-"));
let chromium: Chromium | undefined;
let browser: BrowserContext | undefined;
const servers: Serving[] = [];

beforeAll(async () => {
  chromium = await launchChromium();
  browser = chromium.browser;
  // a cold chromium start on a loaded machine
}, 180_000);

afterAll(async () => {
  await chromium?.close();
  for (const s of servers) await s.close();
  rmSync(scratch, { recursive: true, force: true });
  removeBundles();
});

async function serve(dir: string): Promise<Serving> {
  const s = await serveBundle(dir, { port: 0 });
  servers.push(s);
  return s;
}

/** A page that records every request and every complaint. */
async function openPage(url: string): Promise<{ page: Page; requests: string[]; problems: string[] }> {
  const page = await browser!.newPage();
  const requests: string[] = [];
  const problems: string[] = [];
  page.on("request", (r) => requests.push(r.url()));
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") problems.push(m.text());
  });
  page.on("pageerror", (e) => problems.push(e.message));
  await page.goto(url);
  return { page, requests, problems };
}

/** Waits for the page to finish its ?steps=N (or fail), and returns window.gradc. */
async function finished(page: Page): Promise<{ status: string; step: number; loss: number; backend: string; losses: number[]; accuracy: [number, number][]; error?: string }> {
  await page.waitForFunction(() => document.title === "gradc: done" || document.title === "gradc: error", null, { timeout: 240_000 });
  return page.evaluate(() => window.gradc);
}

/** A raw GET of `target` (sent as written: no URL normalization), its status and headers. */
function rawGet(url: string, target: string, method = "GET"): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((ok, fail) => {
    const req = request({ hostname, port, path: target, method }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString("utf8")));
      res.on("end", () => ok({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on("error", fail);
    req.end();
  });
}

describe("gradc serve: the XOR page", () => {
  it("trains ?steps=1000 to a loss below 1e-3, with exactly Node's losses from the same bundle and seed", async () => {
    const { dir } = await exampleBundle("xor");
    const s = await serve(dir);
    const { page, requests, problems } = await openPage(`${s.url}?steps=1000`);
    const g = await finished(page);
    expect(g.error).toBeUndefined();
    expect(g.status).toBe("done");
    expect(g.step).toBe(1000);
    expect(g.backend).toBe("ts");
    expect(g.losses).toHaveLength(1000);
    expect(g.loss).toBeLessThan(1e-3);
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
    expect(await page.locator("#status").textContent()).toBe("done");
    expect(await page.locator("#step").textContent()).toBe("1000 / 1000");

    // Node's trainer on the same bundle, seed and data, logging every step's loss at full precision
    const out = path.join(scratch, "xor-node");
    await train(dir, ["--steps", "1000", "--log-every", "1", "--out", out, "--no-progress"], { log: () => {} });
    const rows = parseCsv(readFileSync(path.join(out, "logs", "loss.csv"), "utf8")).slice(1).filter((r) => r.length > 1);
    const nodeLosses = rows.map((r) => Number(r[2]));
    // the same JavaScript kernels on the same f32 arenas in V8: bit-identical, step 1 and every step after
    expect(g.losses[0]).toBe(nodeLosses[0]);
    expect(g.losses).toEqual(nodeLosses);

    // every request went to this server, and nothing complained
    expect(requests.every((u) => u.startsWith(s.url))).toBe(true);
    expect(requests.some((u) => u.endsWith("/bundle/step.js?v=" + JSON.parse(readFileSync(path.join(dir, "manifest.json"), "utf8")).hashes["step.js"]))).toBe(true);
    expect(problems).toEqual([]);
    await page.close();
  });

  it("serves the page with COOP/COEP and a CSP, no inline script, and nothing outside the bundle", async () => {
    const { dir } = await exampleBundle("xor");
    // a link inside the bundle that points out of it, and a dot-file
    const secret = path.join(scratch, "secret.txt");
    writeFileSync(secret, "secret");
    symlinkSync(secret, path.join(dir, "graphs", "leak.txt"));
    writeFileSync(path.join(dir, ".hidden"), "hidden");
    const s = await serve(dir);
    const home = await rawGet(s.url, "/");
    expect(home.status).toBe(200);
    expect(home.headers["cross-origin-opener-policy"]).toBe("same-origin");
    expect(home.headers["cross-origin-embedder-policy"]).toBe("require-corp");
    expect(home.headers["content-security-policy"]).toMatch(/script-src 'self' 'wasm-unsafe-eval';/);
    expect(home.headers["content-security-policy"]).not.toMatch(/unsafe-inline/);
    const scripts = [...home.body.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBe(1);
    for (const [, attrs, body] of scripts) {
      expect(attrs).toMatch(/\bsrc="\/bundle\/runtime\/browser\/page\.js"/);
      expect(body!.trim()).toBe("");
    }
    expect((await rawGet(s.url, "/bundle/manifest.json")).status).toBe(200);
    expect((await rawGet(s.url, "/bundle/runtime/browser/page.js")).headers["content-type"]).toMatch(/^text\/javascript/);
    expect((await rawGet(s.url, "/gradc/page.json")).status).toBe(200);
    for (const target of [
      "/bundle/../package.json",
      "/bundle/%2e%2e/package.json",
      "/bundle/..%2fpackage.json",
      "/bundle/graphs/..%2f..%2fmanifest.json",
      "/bundle/%2fetc%2fpasswd",
      "/bundle//etc/passwd",
      "/bundle/graphs%5c..%5cmanifest.json",
      "/bundle/graphs/leak.txt",
      "/bundle/.hidden",
      "/bundle/manifest.json%00.js",
      "/bundle/",
      "/bundle/graphs",
      "/etc/passwd",
      "/../../etc/passwd",
      "/gradc/mnist.safetensors",
      "/package.json",
    ]) {
      const r = await rawGet(s.url, target);
      expect([target, r.status]).toEqual([target, 404]);
      expect(r.body).not.toContain("secret");
      expect(r.headers["cross-origin-embedder-policy"]).toBe("require-corp");
    }
    expect((await rawGet(s.url, "/bundle/manifest.json", "POST")).status).toBe(405);
  });
});

describe("gradc serve: the MNIST page", () => {
  it("trains one epoch to > 90% test accuracy, plots it, shows dW1's code, and predicts a drawn digit", async () => {
    // examples/mnist as `npm run mnist` compiles it: 8,000 training digits (250 steps of 32), 2,000 test
    const { dir } = await exampleBundle("mnist");
    const s = await serve(dir);
    const { page, requests, problems } = await openPage(`${s.url}?steps=250`);
    const g = await finished(page);
    expect(g.error).toBeUndefined();
    expect(g.backend).toBe("wasm");
    expect(g.step).toBe(250);
    expect(g.accuracy).toHaveLength(1);
    expect(g.accuracy[0]![0]).toBe(1);
    expect(g.accuracy[0]![1]).toBeGreaterThan(0.9);
    expect(await page.locator("#acc-list li").textContent()).toMatch(/^epoch 1: 9\d\.\d\d%$/);

    // the plot: a line of many points, and a screenshot of it that is not blank
    const points = (await page.locator("#loss-plot polyline").getAttribute("points"))!.split(" ");
    expect(points.length).toBeGreaterThan(100);
    const plot = readPng(await page.locator("#loss-plot").screenshot());
    expect(distinctColours(plot)).toBeGreaterThan(10);
    expect(shareOf(plot, [0x1f, 0x6f, 0xb4])).toBeGreaterThan(0.002);
    expect(shareOf(plot, [255, 255, 255])).toBeLessThan(0.98);

    // the gradient code panel: W1's emitted backward kernels, as gradc inspect --grad W1 prints them
    await page.locator("#grad-param").selectOption("W1");
    const code = (await page.locator("#grad-code").textContent())!;
    expect(code).toMatch(/^\/\/ dLoss\/dW1 \(f32\[784,256\]\): \d+ backward kernels? in execution order/);
    expect(code).toMatch(/\nfunction \w+\(F: Float32Array/);
    const panel = readPng(await page.locator("#code-section").screenshot());
    expect(panel.height).toBeGreaterThan(200);
    expect(distinctColours(panel)).toBeGreaterThan(10);

    // the whole page, for the record: plot and code panel on screen
    const shot = readPng(await page.screenshot({ fullPage: true, path: path.join(scratch, "mnist-page.png") }));
    expect(shot.width).toBe(1280);
    expect(shareOf(shot, [0x1f, 0x6f, 0xb4])).toBeGreaterThan(0.0005);

    // draw a digit: predict()'s ten probabilities, summing to 100%
    await expect(page.locator("#draw-section").isVisible()).resolves.toBe(true);
    await page.locator("#pad").scrollIntoViewIfNeeded();
    const box = (await page.locator("#pad").boundingBox())!;
    await page.mouse.move(box.x + 140, box.y + 40);
    await page.mouse.down();
    for (let y = 40; y <= 240; y += 20) await page.mouse.move(box.x + 140, box.y + y);
    await page.mouse.up();
    await page.waitForFunction(() => document.querySelectorAll("#probs li").length === 10);
    const probs = (await page.locator("#probs li span:first-child").allTextContents()).map((t) => Number(/: ([\d.]+)%$/.exec(t)![1]));
    expect(probs).toHaveLength(10);
    expect(Math.abs(probs.reduce((a, b) => a + b, 0) - 100)).toBeLessThan(0.6);

    expect(requests.every((u) => u.startsWith(s.url))).toBe(true);
    expect(problems).toEqual([]);
    await page.close();
  });
});
