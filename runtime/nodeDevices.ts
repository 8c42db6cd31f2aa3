// The devices on Node: the runtime's table (runtime/devices.ts) with the
// WebAssembly products of "wasm" bundles run on worker threads
// (runtime/threads.ts) when a load asks for more than one, relaxed SIMD turned
// on before their kernel files compile their modules (the products' FMA), and
// the modules' WebAssembly compiled by V8's optimizing tier as they load
// (runtime/wasmTiers.ts), so that the first step runs optimized code.
import type { DeviceFactory } from "./devices.js";
import { DEVICES, deviceFor } from "./devices.js";
import { createHostDevice } from "./hostDevice.js";
import { ThreadPool } from "./threads.js";
import type { PoolStarter } from "./wasmThreads.js";
import { relaxedSimd } from "./wasmFeatures.js";
import { compiledEagerly } from "./wasmTiers.js";

/** Node's worker threads for the WebAssembly products. */
export const nodePool: PoolStarter = (units, threads) => ThreadPool.create({ units, threads });

/** Runs `load` (which imports kernel modules) as the Node runtime loads them: relaxed SIMD on (the products' FMA where the CPU has it), their WebAssembly compiled optimized at once. */
export function loadKernels<T>(load: () => Promise<T>): Promise<T> {
  relaxedSimd();
  return compiledEagerly(load);
}

/** A host device whose WebAssembly products may run on Node's worker threads, its kernel modules loaded as loadKernels loads them. */
const hostDevice: DeviceFactory = (manifest, dir, options = {}) => loadKernels(() => createHostDevice(manifest, dir, { ...options, startPool: nodePool }));

/** Every backend the Node runtime runs. */
export const NODE_DEVICES: Readonly<Record<string, DeviceFactory>> = { ...DEVICES, ts: hostDevice, wasm: hostDevice };

/** The device for `manifest.backend` on Node; a clear error for a backend this runtime does not know. */
export const createDevice: DeviceFactory = deviceFor(NODE_DEVICES);
