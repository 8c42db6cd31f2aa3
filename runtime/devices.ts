// The runtime's devices by backend name: manifest.backend picks the one a
// bundle loads onto. A new backend is one factory and one line here.
import type { Manifest } from "./manifest.js";
import type { Device, DeviceOptions } from "./device.js";
import { createHostDevice } from "./hostDevice.js";
import { createGpuDevice } from "./gpuDevice.js";

/** Makes a device for the bundle in `dir`, a folder path or (in a browser) a URL: its kernel modules bound, its params not yet filled. */
export type DeviceFactory = (manifest: Manifest, dir: string, options?: DeviceOptions) => Promise<Device>;

/**
 * Every backend this runtime runs, without a platform's threads (Node's
 * table, runtime/nodeDevices.ts, adds worker threads). "ts" and "wasm"
 * bundles both run on host arrays.
 */
export const DEVICES: Readonly<Record<string, DeviceFactory>> = {
  ts: createHostDevice,
  wasm: createHostDevice,
  gpu: createGpuDevice,
};

/** A factory that picks the device for `manifest.backend` from `devices` (the browser runtime has its own); a clear error for a backend it does not know. */
export function deviceFor(devices: Readonly<Record<string, DeviceFactory>>): DeviceFactory {
  return (manifest, dir, options) => {
    const backend: unknown = manifest.backend;
    const factory = typeof backend === "string" && Object.hasOwn(devices, backend) ? devices[backend] : undefined;
    if (!factory) {
      throw new Error(
        `${dir}/manifest.json: backend ${JSON.stringify(backend ?? null)} has no device in this runtime (it runs ${Object.keys(devices).map((b) => `"${b}"`).join(", ")}); recompile the model for one of them or update gradc`,
      );
    }
    return factory(manifest, dir, options);
  };
}
