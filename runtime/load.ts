// load(dir): opens a kernel bundle folder (runtime/open.ts does the work, the
// file system read through runtime/nodeIO.ts) and returns a Trainer that runs
// its forward and step kernels on the device of its backend (runtime/device.ts).
import { resolve } from "node:path";
import { createDevice } from "./nodeDevices.js";
import { openBundle } from "./open.js";
import type { LoadOptions, Trainer } from "./open.js";
import { nodeBundleIO } from "./nodeIO.js";

export { readManifest } from "./nodeIO.js";
export type { LoadOptions, ParamStore, Trainer } from "./open.js";

/**
 * Loads the bundle in `dir`: validates its manifest, makes the device its
 * backend runs on (allocating its buffers and binding the kernels) and fills
 * the params from the weights file.
 */
export function load(dir: string, options: LoadOptions = {}): Promise<Trainer> {
  return openBundle(nodeBundleIO(resolve(dir)), createDevice, options);
}
