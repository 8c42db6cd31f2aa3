// Where the gpu device finds a GPU, the same code in Node and in a page. In a
// browser, gpu.js uses navigator.gpu (WebGPU) and, where a page has no
// WebGPU adapter, WebGL2; gpu.js itself is its browser build, loaded by the
// page (its global `GPU`). Node has no navigator.gpu: this module makes one
// from the `webgpu` package (Google's Dawn): Dawn's own backend where a GPU's
// driver can answer (Vulkan, Metal, D3D12), else OpenGL ES in compatibility
// mode, which on a machine without a GPU is Mesa's llvmpipe (a CPU). gpu.js
// reads `navigator.gpu` itself, so in Node this module sets
// `globalThis.navigator` (or its `gpu`) when there is none, once per process;
// nothing else is made global.
import type { GPU } from "gpu.js";

/** How to get an adapter on a Linux machine, for errors. */
const HOW =
  "the gpu backend runs on WebGPU: in Node through the `webgpu` package (Dawn), which needs EGL_PLATFORM=surfaceless on a machine without a display and Mesa's EGL and drivers (Debian: apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri); in a browser, on WebGPU (Chrome or Edge; Chromium without a GPU: --enable-unsafe-webgpu, on a page served from http://127.0.0.1 or https) or else WebGL2";

/** What a WebGPU adapter says about itself. */
interface AdapterInfo {
  readonly vendor?: string;
  readonly architecture?: string;
  readonly device?: string;
  readonly description?: string;
}

interface NavigatorGpu {
  requestAdapter(options?: Record<string, unknown>): Promise<{ info?: AdapterInfo } | null>;
}

/** What gpu.js runs its kernels on: its mode and the adapter (or WebGL2 renderer) it got. */
export interface GpuKind {
  /** gpu.js's mode: "webgpu", or "webgl2" in a browser without a WebGPU adapter. */
  readonly mode: "webgpu" | "webgl2";
  /** The adapter, as benchmarks and the page name it: "WebGPU: google swiftshader", "WebGL2: ANGLE (…)". */
  readonly adapter: string;
}

const inNode = (): boolean => typeof process !== "undefined" && process.versions?.node !== undefined;

/** One way of asking Dawn for an adapter in Node: the flags Dawn is made with, and the adapter options. */
export interface DawnAttempt {
  readonly flags: readonly string[];
  readonly options: Readonly<Record<string, unknown>>;
}

/** Dawn through OpenGL ES in compatibility mode: what Mesa's llvmpipe (a CPU) gives a machine without a GPU. */
export const DAWN_GLES: DawnAttempt = { flags: ["backend=opengles"], options: { featureLevel: "compatibility" } };
/** Dawn's own backend: Vulkan on Linux, Metal on macOS, D3D12 on Windows (a real GPU's). */
export const DAWN_NATIVE: DawnAttempt = { flags: [], options: {} };
/** Dawn's EGL platform when none is set: without a display, EGL must not look for one. */
export const EGL_PLATFORM = "surfaceless";

/** Where Linux distributions put the Vulkan loader Dawn opens (libvulkan.so.1). */
const VULKAN_LOADER_DIRS = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib/x86_64-linux-gnu", "/lib64"];

/**
 * How Node asks Dawn for an adapter, in order, the first that answers wins:
 * Dawn's own backend where there is one (macOS, Windows, and Linux with a
 * Vulkan loader: a GPU's driver), then OpenGL ES (on a machine without a GPU,
 * Mesa's llvmpipe). Without a Vulkan loader Dawn's Vulkan cannot answer and
 * would only print a warning, so Linux then asks OpenGL ES alone.
 */
export function dawnAttempts(): readonly DawnAttempt[] {
  if (!inNode()) return [];
  if (process.platform !== "linux") return [DAWN_NATIVE, DAWN_GLES];
  const builtin = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
  const fs = builtin?.("node:fs") as { existsSync(path: string): boolean } | undefined;
  const vulkan = fs !== undefined && VULKAN_LOADER_DIRS.some((d) => fs.existsSync(`${d}/libvulkan.so.1`));
  return vulkan ? [DAWN_NATIVE, DAWN_GLES] : [DAWN_GLES];
}

/** Every Dawn instance made: kept for the process (Dawn 0.3.10 aborts when one is collected). */
const dawns: unknown[] = [];

let instance: Promise<{ gpu: GPU; kind: GpuKind }> | undefined;
/** Devices using the instance; the last to let go releases WebGPU. */
let users = 0;

/** Imports package `name`: from this module's folder, else (Node, a bundle outside the project) from the working folder's node_modules. */
async function importPackage(name: string): Promise<unknown> {
  try {
    return await import(/* @vite-ignore */ name);
  } catch (first) {
    // Node's own modules through process (no import of them: this module is part of the browser runtime too)
    const builtin = typeof process === "undefined" ? undefined : (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
    if (!builtin) throw first;
    const { createRequire } = builtin("node:module") as { createRequire(from: string): { resolve(id: string): string } };
    const { pathToFileURL } = builtin("node:url") as { pathToFileURL(path: string): URL };
    let path: string;
    try {
      path = createRequire(`${process.cwd()}/package.json`).resolve(name);
    } catch {
      throw first;
    }
    return import(/* @vite-ignore */ pathToFileURL(path).href);
  }
}

let shim: Promise<NavigatorGpu | undefined> | undefined;

/** navigator.gpu, made from Dawn in Node (the first of `dawnAttempts` that gives an adapter); undefined when there is no WebGPU here. */
function navigatorGpu(): Promise<NavigatorGpu | undefined> {
  const nav = (globalThis as { navigator?: { gpu?: NavigatorGpu } }).navigator;
  if (nav?.gpu) return Promise.resolve(nav.gpu);
  if (!inNode()) return Promise.resolve(undefined);
  shim ??= (async () => {
    // Dawn reads it when it loads: without a display, EGL must not look for one
    process.env["EGL_PLATFORM"] ??= EGL_PLATFORM;
    let create: (flags: string[]) => NavigatorGpu;
    try {
      ({ create } = (await importPackage("webgpu")) as { create: typeof create });
    } catch (e) {
      throw new Error(`gpu: cannot load the webgpu package (${(e as Error).message}); ${HOW}`);
    }
    let gpu: NavigatorGpu | undefined;
    for (const { flags, options } of dawnAttempts()) {
      const dawn = create([...flags]);
      dawns.push(dawn);
      gpu = { requestAdapter: (o = {}) => dawn.requestAdapter({ ...options, ...o }) };
      if (await gpu.requestAdapter()) break;
    }
    const now = (globalThis as { navigator?: { gpu?: NavigatorGpu } }).navigator;
    if (now) Object.assign(now, { gpu });
    else Object.assign(globalThis, { navigator: { gpu } });
    return gpu;
  })();
  shim.catch(() => (shim = undefined));
  return shim;
}

/** Whether a WebGPU adapter answers here (what `backend: "auto"` asks). */
export async function gpuAvailable(): Promise<boolean> {
  try {
    const gpu = await navigatorGpu();
    return gpu !== undefined && (await gpu.requestAdapter()) !== null;
  } catch {
    return false;
  }
}

/** An adapter's words: vendor, architecture, device, description (Dawn on Mesa: the driver and "llvmpipe", a CPU). */
function adapterWords(info: AdapterInfo | undefined): string {
  return [info?.vendor, info?.architecture, info?.device, info?.description].filter((x) => x).join(" ") || "unknown adapter";
}

/** The WebGL2 renderer of this page (SwiftShader, ANGLE on the GPU…), or undefined without WebGL2. */
function webgl2Renderer(): string | undefined {
  if (typeof document === "undefined") return undefined;
  const gl = document.createElement("canvas").getContext("webgl2");
  if (!gl) return undefined;
  const ext = gl.getExtension("WEBGL_debug_renderer_info");
  const renderer: unknown = gl.getParameter(ext ? ext.UNMASKED_RENDERER_WEBGL : gl.RENDERER);
  gl.getExtension("WEBGL_lose_context")?.loseContext();
  return typeof renderer === "string" ? renderer : "unknown renderer";
}

/**
 * The gpu.js instance, made once: on WebGPU when an adapter answers, else (in
 * a page) on WebGL2; an error that says what is missing when neither does.
 */
export function gpuInstance(): Promise<{ gpu: GPU; kind: GpuKind }> {
  instance ??= (async () => {
    const nav = await navigatorGpu();
    const adapter = await nav?.requestAdapter();
    const { GPU: Gpu } = await gpuJs();
    if (adapter) return { gpu: new Gpu({ mode: "webgpu" }), kind: { mode: "webgpu", adapter: `WebGPU: ${adapterWords(adapter.info)}` } };
    const renderer = inNode() ? undefined : webgl2Renderer();
    if (renderer !== undefined) return { gpu: new Gpu({ mode: "webgl2" }), kind: { mode: "webgl2", adapter: `WebGL2: ${renderer}` } };
    if (!nav) throw new Error(`gpu: no WebGPU here (navigator.gpu is missing) and no WebGL2; ${HOW}`);
    const egl = inNode() ? ` (EGL_PLATFORM=${process.env["EGL_PLATFORM"] ?? "unset"})` : " and the page has no WebGL2";
    throw new Error(`gpu: WebGPU found no adapter${egl}; ${HOW}`);
  })();
  instance.catch(() => (instance = undefined));
  return instance;
}

/** The gpu.js module: its GPU class and the shared WebGPU device's owner. */
interface GpuJs {
  GPU: typeof GPU;
  WebGPUContext?: { destroy(): Promise<void> };
}

/**
 * gpu.js: in a page, its browser build's global `GPU` (the page loads it
 * before a gpu bundle: see runtime/browser/index.ts); in Node, the package.
 */
async function gpuJs(): Promise<GpuJs> {
  const global = (globalThis as unknown as { GPU?: typeof GPU & Pick<GpuJs, "WebGPUContext"> }).GPU;
  if (typeof global?.prototype?.createKernel === "function") return { GPU: global, WebGPUContext: global.WebGPUContext };
  if (!inNode()) {
    throw new Error("gpu: gpu.js is not loaded in this page: load its browser build (gpu.js/dist/gpu-browser.min.js; gradc serve serves it at /gradc/gpu.js) before the bundle, or pass loadBundle(url, { gpuScript: URL })");
  }
  const mod = (await importPackage("gpu.js")) as Partial<GpuJs> & { default?: GpuJs };
  return mod.GPU ? (mod as GpuJs) : mod.default!;
}

/**
 * The gpu.js instance for one device, and its release. When the last device
 * lets go, the instance's kernels and the WebGPU device are destroyed: while
 * Dawn holds a device, Node keeps polling it and never exits. The Dawn
 * instance itself (navigator.gpu in Node) stays for the process, so a later
 * load makes a new device from it; Dawn 0.3.10 aborts when it is collected.
 */
export async function acquireGpu(): Promise<{ gpu: GPU; kind: GpuKind; release(): Promise<void> }> {
  const { gpu, kind } = await gpuInstance();
  users++;
  let released = false;
  return {
    gpu,
    kind,
    release: async () => {
      if (released) return;
      released = true;
      if (--users > 0) return;
      const made = instance;
      instance = undefined;
      await (await made?.catch(() => undefined))?.gpu.destroy();
      await (await gpuJs()).WebGPUContext?.destroy();
    },
  };
}

/** The adapter's description (Dawn on Mesa: the driver and "llvmpipe", a CPU), for benchmarks to say what they measured. */
export async function gpuAdapterName(): Promise<string> {
  const gpu = await navigatorGpu();
  return adapterWords((await gpu?.requestAdapter())?.info);
}
