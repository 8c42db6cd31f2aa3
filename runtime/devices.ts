// The runtime's devices by backend name: manifest.backend picks the one a
// bundle loads onto. A new backend is one factory and one line here.
import { join } from "node:path";
import type { Manifest } from "./manifest.js";
import type { Device } from "./device.js";
import { createHostDevice } from "./hostDevice.js";

/** Makes a device for the bundle in `dir` (its kernel modules bound, its params not yet filled). */
export type DeviceFactory = (manifest: Manifest, dir: string) => Promise<Device>;

/** Every backend this runtime runs. "ts" and "wasm" bundles both run on host arrays. */
export const DEVICES: Readonly<Record<string, DeviceFactory>> = {
  ts: createHostDevice,
  wasm: createHostDevice,
};

/** The device for `manifest.backend`; a clear error for a backend this runtime does not know. */
export function createDevice(manifest: Manifest, dir: string): Promise<Device> {
  const backend: unknown = manifest.backend;
  const factory = typeof backend === "string" && Object.hasOwn(DEVICES, backend) ? DEVICES[backend] : undefined;
  if (!factory) {
    throw new Error(
      `${join(dir, "manifest.json")}: backend ${JSON.stringify(backend ?? null)} has no device in this runtime (it runs ${Object.keys(DEVICES).map((b) => `"${b}"`).join(", ")}); recompile the model for one of them or update gradc`,
    );
  }
  return factory(manifest, dir);
}
