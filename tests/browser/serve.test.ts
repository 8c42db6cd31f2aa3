// `gradc serve` in headless Chromium (Debian's chromium through
// playwright-core): the XOR page trains 1000 steps to a loss below 1e-3 with
// exactly Node's losses, the MNIST page trains one epoch to > 90% test
// accuracy with exactly Node's losses and accuracy, and shows its plot, its
// gradient code and the digit pad's probabilities; the server refuses every
// path outside the bundle. Fails, never skips, when chromium is missing.
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import os, { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { Page } from "playwright-core";
import { chromiumForFile, watchPage } from "../chromium.js";
import { main as train } from "../../runtime/trainer.js";
import { load } from "../../runtime/load.js";
import { loadTrainingData } from "../../runtime/sources.js";
import { TrainingRun } from "../../runtime/run.js";
import { loadSafetensors } from "../../runtime/safetensors.js";
import { run as cli } from "../../compiler/cli.js";
import { parseCsv } from "../../runtime/gradNorms.js";
import { serveBundle } from "../../compiler/serve/server.js";
import type { Serving } from "../../compiler/serve/server.js";
import { exampleBundle, removeBundles } from "../compiler/inspect/bundles.js";
import { compile } from "../../compiler/compile.js";
import * as xor from "../../examples/xor/model.js";
import { distinctColours, readPng, shareOf } from "../compiler/viz/png.js";

const scratch = mkdtempSync(path.join(tmpdir(), "gradc-serve-"));
const servers: Serving[] = [];

const browser = chromiumForFile(async () => {
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
  const page = await browser().newPage();
  const { requests, problems } = watchPage(page);
  await page.goto(url);
  return { page, requests, problems };
}

/** Waits for the page to finish its ?steps=N (or fail), and returns window.gradc. */
async function finished(page: Page): Promise<{ status: string; step: number; loss: number; backend: string; threads: number; losses: number[]; accuracy: [number, number][]; error?: string }> {
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
    // manifest.backend: the default backend compiled it (its matmuls are too small for a WebAssembly product)
    expect(g.backend).toBe("wasm");
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

    // the downloaded checkpoint: what Node's run saved, bit for bit, and Node resumes from it
    const [download] = await Promise.all([page.waitForEvent("download"), page.locator("#download").click()]);
    expect(download.suggestedFilename()).toBe("xor-step1000.safetensors");
    const file = path.join(scratch, "xor-page.safetensors");
    await download.saveAs(file);
    const fromPage = loadSafetensors(file);
    const fromNode = loadSafetensors(path.join(out, "checkpoints", "latest.safetensors"));
    expect(fromPage.metadata).toEqual(fromNode.metadata);
    expect(Object.keys(fromPage.tensors).sort()).toEqual(Object.keys(fromNode.tensors).sort());
    for (const [name, t] of Object.entries(fromNode.tensors)) expect([name, Array.from(fromPage.tensors[name]!.data)]).toEqual([name, Array.from(t.data)]);
    const resumed = await load(dir);
    resumed.restore(file);
    expect(resumed.stepCount).toBe(1000);

    // kept in IndexedDB, then Reset (the bundle's initial weights), then resumed from IndexedDB
    await page.locator("#save-db").click();
    await page.waitForFunction(() => document.getElementById("saved")!.textContent === "kept at step 1000");
    await page.locator("#reset").click();
    await page.waitForFunction(() => window.gradc.status === "ready" && window.gradc.step === 0);
    expect(await page.locator("#step").textContent()).toBe("0 / 1000");
    await page.locator("#resume-db").click();
    await page.waitForFunction(() => document.getElementById("saved")!.textContent === "resumed at step 1000");
    expect(await page.evaluate(() => [window.gradc.step, window.gradc.status])).toEqual([1000, "done"]);

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

  it("plots each param's gradient norm when the bundle logs them", async () => {
    const dir = path.join(scratch, "xor-norms");
    compile(xor.default, { ...xor.config, training: { ...xor.config.training!, gradNormEvery: 10 }, outDir: dir });
    const s = await serve(dir);
    const { page, problems } = await openPage(`${s.url}?steps=200`);
    const g = await finished(page);
    expect(g.status).toBe("done");
    expect(await page.locator("#grad-section").isVisible()).toBe(true);
    const lines = page.locator("#grad-plot polyline");
    expect(await lines.count()).toBe(4);
    // step 1, then every 10th step: 21 points per param
    for (const points of await lines.evaluateAll((els) => els.map((e) => e.getAttribute("points")!.split(" ").length))) expect(points).toBe(21);
    expect(await page.locator("#grad-plot text.legend").allTextContents()).toEqual(["W1", "b1", "W2", "b2"]);
    expect(problems).toEqual([]);
    await page.close();
  });

  it("checks every file's sha256 in the page (WebCrypto) and names the changed one", async () => {
    const { dir } = await exampleBundle("xor");
    const copy = path.join(scratch, "xor-tampered");
    cpSync(dir, copy, { recursive: true });
    const weights = path.join(copy, "weights.safetensors");
    const bytes = readFileSync(weights);
    bytes[bytes.length - 1]! ^= 0x40;
    writeFileSync(weights, bytes);
    const s = await serve(copy);
    const { page } = await openPage(`${s.url}?steps=10`);
    const g = await finished(page);
    expect(g.status).toBe("error");
    expect(g.error).toMatch(new RegExp(`^${s.url}bundle/weights\\.safetensors: its content \\(\\d+ bytes, sha256 [0-9a-f]{12}…\\) is not what the manifest recorded`));
    expect(await page.locator("#error").textContent()).toBe(g.error);
    await page.close();
  });

  it("gradc serve: its help, and clear errors for a folder that is not a servable bundle", async () => {
    const said: string[] = [];
    const io = { out: (t: string) => said.push(t), err: (t: string) => said.push(t) };
    expect(await cli(["serve", "--help"], io)).toBe(0);
    expect(said.pop()).toMatch(/^Usage: gradc serve <dir> \[--port N\] \[--open\]/);
    expect(await cli(["serve", path.join(scratch, "nothing-here")], io)).toBe(1);
    expect(said.pop()).toMatch(/^gradc: cannot read .*nothing-here\/manifest\.json: no such folder/);
    expect(await cli(["serve", "a", "b"], io)).toBe(1);
    expect(said.pop()).toBe("gradc: gradc serve takes one a bundle folder, got: a b");
    expect(await cli(["serve", scratch, "--port", "70000"], io)).toBe(1);
    expect(said.pop()).toBe("gradc: --port must be in 0..65535 (got 70000)");
    // a bundle compiled before the browser runtime existed
    const { dir } = await exampleBundle("xor");
    const old = path.join(scratch, "xor-old");
    cpSync(dir, old, { recursive: true });
    rmSync(path.join(old, "runtime", "browser"), { recursive: true });
    await expect(serveBundle(old, { port: 0 })).rejects.toThrow(`${old}: has no browser runtime (runtime/browser/page.js); recompile the model with this version of gradc`);
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
    // the page is cross-origin isolated: its WebAssembly products run on a Web Worker beside the main thread
    expect(g.threads).toBe(Math.min(2, os.availableParallelism()));
    expect(await page.locator("#backend").textContent()).toMatch(g.threads === 2 ? /WebAssembly SIMD matmuls, 2 threads/ : /1 thread/);
    expect(g.step).toBe(250);
    expect(g.accuracy).toHaveLength(1);
    expect(g.accuracy[0]![0]).toBe(1);
    expect(g.accuracy[0]![1]).toBeGreaterThan(0.9);
    expect(await page.locator("#acc-list li").textContent()).toMatch(/^epoch 1: 9\d\.\d\d%$/);
    // Node's run of the same bundle on one thread (the same TrainingRun, WebAssembly matmuls included): the same losses and accuracy, bit for bit
    const node = await load(dir);
    const nodeRun = new TrainingRun(node, loadTrainingData(node.manifest.training!.data, dir, node.manifest.inputs), { steps: 250 });
    const nodeLosses: number[] = [];
    while (!nodeRun.done) nodeLosses.push(nodeRun.next());
    expect(g.losses[0]).toBe(nodeLosses[0]);
    expect(g.losses).toEqual(nodeLosses);
    expect(g.accuracy[0]![1]).toBe(nodeRun.evaluate());

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
