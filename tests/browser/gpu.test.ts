// A gpu bundle trained in the page `gradc serve` opens, in headless Chromium
// (Debian's chromium through playwright-core): XOR compiled with
// --backend gpu takes the same Adam steps in the page as on Node's gpu device
// (Dawn on llvmpipe), to f32 tolerance. Two browsers: one with
// --enable-unsafe-webgpu, where the page gets Chromium's WebGPU adapter on
// SwiftShader; one without, where navigator.gpu has no adapter and the page
// falls back to gpu.js's WebGL2 (SwiftShader GL through ANGLE). Fails, never
// skips, when chromium is missing.
import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BrowserContext } from "playwright-core";
import { launchChromium, watchPage } from "../chromium.js";
import type { Chromium } from "../chromium.js";
import { compile } from "../../compiler/compile.js";
import { serveBundle, securityHeaders } from "../../compiler/serve/server.js";
import type { Serving } from "../../compiler/serve/server.js";
import { load } from "../../runtime/load.js";
import { loadTrainingData } from "../../runtime/sources.js";
import { TrainingRun } from "../../runtime/run.js";
import { config as xorConfig, xorModel } from "../../examples/xor/model.js";

/** Steps each page trains: enough for f32 rounding to add up, few enough for a loaded machine. */
const STEPS = 20;

const scratch = mkdtempSync(path.join(tmpdir(), "gradc-gpuweb-"));
const gpuDir = path.join(scratch, "xor-gpu");
const wasmDir = path.join(scratch, "xor-wasm");
let serving: Serving;
let webgpu: Chromium | undefined;
let webgl2: Chromium | undefined;
/** Node's losses: the same bundle on the gpu device (Dawn), the same data and steps. */
let nodeLosses: number[] = [];

beforeAll(async () => {
  compile(xorModel(), { ...xorConfig, backend: "gpu", outDir: gpuDir });
  const node = await load(gpuDir);
  try {
    const run = new TrainingRun(node, loadTrainingData(node.manifest.training!.data, gpuDir, node.manifest.inputs), { steps: STEPS });
    while (!run.done) nodeLosses.push(await run.nextAsync());
  } finally {
    await node.close();
  }
  serving = await serveBundle(gpuDir, { port: 0 });
  webgpu = await launchChromium(["--enable-unsafe-webgpu"]);
  webgl2 = await launchChromium();
}, 300_000);

afterAll(async () => {
  await webgpu?.close();
  await webgl2?.close();
  await serving?.close();
  rmSync(scratch, { recursive: true, force: true });
});

/** What the page exposes as window.gradc, the part read here. */
interface PageState {
  status: string;
  step: number;
  backend: string;
  adapter: string;
  losses: number[];
  error?: string;
}

/** Opens the page with ?steps=STEPS in `browser`, waits for it to finish; its state, requests and console complaints. */
async function trainInPage(browser: BrowserContext | undefined): Promise<{ g: PageState; backendText: string | null; requests: string[]; problems: string[] }> {
  if (!browser) throw new Error("chromium did not start (see the beforeAll error)");
  const page = await browser.newPage();
  const { requests, problems } = watchPage(page);
  await page.goto(`${serving.url}?steps=${STEPS}`);
  await page.waitForFunction(() => document.title === "gradc: done" || document.title === "gradc: error", null, { timeout: 240_000 });
  const g = (await page.evaluate(() => window.gradc)) as unknown as PageState;
  const backendText = await page.locator("#backend").textContent();
  await page.close();
  return { g, backendText, requests, problems };
}

/** The page's losses are Node's to f32 tolerance: the first step's to 1e-6 relative, each later one's to 1e-4 (rounding adds up over Adam steps). */
function expectNodeLosses(losses: readonly number[]): void {
  expect(nodeLosses).toHaveLength(STEPS);
  expect(losses).toHaveLength(STEPS);
  expect(Math.abs(losses[0]! - nodeLosses[0]!)).toBeLessThanOrEqual(1e-6 * Math.abs(nodeLosses[0]!));
  for (let i = 0; i < STEPS; i++) expect([i + 1, Math.abs(losses[i]! - nodeLosses[i]!) <= 1e-4 * Math.abs(nodeLosses[i]!)]).toEqual([i + 1, true]);
  // and it trains: the loss falls
  expect(losses[STEPS - 1]!).toBeLessThan(0.5 * losses[0]!);
}

describe("a gpu bundle in the page (gradc serve, headless Chromium)", () => {
  it("with --enable-unsafe-webgpu: trains on WebGPU (SwiftShader) with Node's losses, gpu.js from /gradc/gpu.js", async () => {
    const { g, backendText, requests, problems } = await trainInPage(webgpu?.browser);
    expect(g.error).toBeUndefined();
    expect(g.status).toBe("done");
    expect(g.backend).toBe("gpu");
    expect(g.step).toBe(STEPS);
    // the adapter Chromium gives a machine without a GPU
    expect(g.adapter).toMatch(/^WebGPU: .*swiftshader/i);
    expect(backendText).toBe(`gpu: gpu.js kernels on ${g.adapter}, on the gpu device`);
    expectNodeLosses(g.losses);
    expect(requests).toContain(`${serving.url}gradc/gpu.js`);
    expect(requests.some((u) => u.includes("/bundle/kernels.gpu.js?v="))).toBe(true);
    expect(requests.every((u) => u.startsWith(serving.url))).toBe(true);
    expect(problems).toEqual([]);
  });

  it("without WebGPU flags (navigator.gpu has no adapter): falls back to gpu.js's WebGL2 (SwiftShader GL) with the same losses", async () => {
    const { g, backendText, problems } = await trainInPage(webgl2?.browser);
    expect(g.error).toBeUndefined();
    expect(g.status).toBe("done");
    expect(g.adapter).toMatch(/^WebGL2: .*SwiftShader/);
    expect(backendText).toBe(`gpu: gpu.js kernels on ${g.adapter}, on the gpu device`);
    expectNodeLosses(g.losses);
    // Chromium's own notes: requestAdapter() answering null, and reading a texture back
    expect(problems.filter((p) => !/^No available adapters\.$|GPU stall due to ReadPixels/.test(p))).toEqual([]);
  });

  it("allows eval (gpu.js's new Function) on a gpu bundle's page only; a wasm page keeps its policy and gets no gpu.js", async () => {
    const csp = (backend: string): string => securityHeaders(backend)["Content-Security-Policy"]!;
    expect(csp("gpu")).toMatch(/script-src 'self' 'unsafe-eval';/);
    expect(csp("wasm")).toMatch(/script-src 'self' 'wasm-unsafe-eval';/);
    expect(csp("ts")).toMatch(/script-src 'self';/);
    for (const b of ["wasm", "ts"]) expect(csp(b)).not.toMatch(/'unsafe-eval'|unsafe-inline/);

    const page = await get(serving.url, "/");
    expect(page.status).toBe(200);
    expect(page.headers["content-security-policy"]).toBe(csp("gpu"));
    const gpuJs = await get(serving.url, "/gradc/gpu.js");
    expect(gpuJs.status).toBe(200);
    expect(gpuJs.headers["content-type"]).toBe("text/javascript; charset=utf-8");
    expect(gpuJs.body).toMatch(/gpu\.js[\s\S]*@version 2\.24\.1/);

    compile(xorModel(), { ...xorConfig, backend: "wasm", outDir: wasmDir });
    const wasm = await serveBundle(wasmDir, { port: 0 });
    try {
      expect((await get(wasm.url, "/")).headers["content-security-policy"]).toBe(csp("wasm"));
      expect((await get(wasm.url, "/gradc/gpu.js")).status).toBe(404);
    } finally {
      await wasm.close();
    }
  });
});

/** A GET of `target` on the server at `url`: its status, headers and body. */
function get(url: string, target: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((ok, fail) => {
    const req = request({ hostname, port, path: target }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString("utf8")));
      res.on("end", () => ok({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on("error", fail);
    req.end();
  });
}
