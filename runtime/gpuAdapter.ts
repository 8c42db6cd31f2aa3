// Where the gpu device finds WebGPU. In a browser, gpu.js uses
// navigator.gpu. Node has none: this module makes one from the `webgpu`
// package (Google's Dawn), through OpenGL ES in compatibility mode, which on a
// machine without a GPU is Mesa's llvmpipe (a CPU). gpu.js reads
// `navigator.gpu` itself, so in Node this module sets `globalThis.navigator`
// (or its `gpu`) when there is none, once per process; nothing else is made
// global.
import type { GPU } from "gpu.js";

/** How to get an adapter on a Linux machine, for errors. */
const HOW =
  "the gpu backend runs on WebGPU: in Node through the `webgpu` package (Dawn), which needs EGL_PLATFORM=surfaceless on a machine without a display and Mesa's EGL and drivers (Debian: apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri); in a browser, WebGPU (Chromium: --enable-unsafe-webgpu on a page served from http://127.0.0.1 or https)";

interface NavigatorGpu {
  requestAdapter(options?: Record<string, unknown>): Promise<unknown>;
}

let instance: Promise<GPU> | undefined;
/** Devices using the instance; the last to let go releases WebGPU. */
let users = 0;
/** The navigator.gpu this module made from Dawn, and whether it made navigator too. */
let shim: { gpu: NavigatorGpu; navigator: boolean } | undefined;

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

/** navigator.gpu, made from Dawn in Node; undefined when there is no WebGPU here. */
async function navigatorGpu(): Promise<NavigatorGpu | undefined> {
  const nav = (globalThis as { navigator?: { gpu?: NavigatorGpu } }).navigator;
  if (nav?.gpu) return nav.gpu;
  if (typeof process === "undefined" || !process.versions?.node) return undefined;
  // Dawn reads it when it loads: without a display, EGL must not look for one
  process.env["EGL_PLATFORM"] ??= "surfaceless";
  let dawn: { requestAdapter(o?: Record<string, unknown>): Promise<unknown> };
  try {
    const mod = (await importPackage("webgpu")) as { create(flags: string[]): typeof dawn };
    dawn = mod.create(["backend=opengles"]);
  } catch (e) {
    throw new Error(`gpu: cannot load the webgpu package (${(e as Error).message}); ${HOW}`);
  }
  const gpu: NavigatorGpu = { requestAdapter: (o = {}) => dawn.requestAdapter({ featureLevel: "compatibility", ...o }) };
  if (nav) Object.assign(nav, { gpu });
  else Object.assign(globalThis, { navigator: { gpu } });
  shim = { gpu, navigator: !nav };
  return gpu;
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

/** The gpu.js instance on WebGPU, made once; an error that says what is missing when there is no adapter. */
export function gpuInstance(): Promise<GPU> {
  instance ??= (async () => {
    const gpu = await navigatorGpu();
    if (!gpu) throw new Error(`gpu: no WebGPU here (navigator.gpu is missing); ${HOW}`);
    const adapter = await gpu.requestAdapter();
    if (!adapter) {
      throw new Error(`gpu: WebGPU found no adapter (EGL_PLATFORM=${process.env["EGL_PLATFORM"] ?? "unset"}); ${HOW}`);
    }
    const { GPU: Gpu } = await gpuJs();
    return new Gpu({ mode: "webgpu" });
  })();
  instance.catch(() => (instance = undefined));
  return instance;
}

/** The gpu.js module: its GPU class and the shared WebGPU device's owner. */
interface GpuJs {
  GPU: typeof GPU;
  WebGPUContext?: { destroy(): Promise<void> };
}

async function gpuJs(): Promise<GpuJs> {
  const mod = (await importPackage("gpu.js")) as Partial<GpuJs> & { default?: GpuJs };
  return mod.GPU ? (mod as GpuJs) : mod.default!;
}

/**
 * The gpu.js instance for one device, and its release. When the last device
 * lets go, the instance's kernels and the WebGPU device are destroyed and the
 * navigator.gpu made from Dawn is dropped: while Dawn holds a device, Node
 * keeps polling it and never exits.
 */
export async function acquireGpu(): Promise<{ gpu: GPU; release(): Promise<void> }> {
  const gpu = await gpuInstance();
  users++;
  let released = false;
  return {
    gpu,
    release: async () => {
      if (released) return;
      released = true;
      if (--users > 0) return;
      const made = instance;
      instance = undefined;
      await (await made?.catch(() => undefined))?.destroy();
      await (await gpuJs()).WebGPUContext?.destroy();
      if (shim) {
        const g = globalThis as { navigator?: { gpu?: unknown } };
        if (shim.navigator && g.navigator?.gpu === shim.gpu) delete g.navigator;
        else if (g.navigator?.gpu === shim.gpu) delete g.navigator.gpu;
        shim = undefined;
      }
    },
  };
}

/** The adapter's description (Dawn on Mesa: the driver and "llvmpipe", a CPU), for benchmarks to say what they measured. */
export async function gpuAdapterName(): Promise<string> {
  const gpu = await navigatorGpu();
  const adapter = (await gpu?.requestAdapter()) as { info?: { description?: string; device?: string; vendor?: string } } | null | undefined;
  const info = adapter?.info;
  return [info?.vendor, info?.device, info?.description].filter((x) => x).join(" ") || "unknown adapter";
}
