// The gpu target: kernels as gpu.js kernel functions (emitGpu.ts), run by the
// runtime's gpu device on WebGPU (Dawn in Node, the browser's WebGPU) with
// every buffer kept on the device. WGSL computes in float32 only, has no
// atomic float add and gpu.js gives a kernel one output, so: f64 compiles are
// refused, scatter-adds are emitted as gathers, and each kernel computes one
// graph node (no fusion), one gpu.js function per device buffer it writes.
import type { Target } from "../target.js";
import { PLAIN_TS } from "../target.js";

export const gpuTarget: Target = {
  name: "gpu",
  device: "gpu",
  capabilities: { f64: false, vectorWidth: 1, threads: Infinity, atomics: false, fusion: false },
  // fusion is off: the cost model is never weighed
  cost: { operandCost: 0, matmulReuse: () => [1, 1] },
  reduceColumns: 1,
  matmulKernel: () => {
    throw new Error(`gpu: fused matmul kernels are not emitted; the gpu target compiles one kernel per graph node`);
  },
  // the TypeScript modules of a gpu bundle are plain (the host reference of its kernels)
  emit: PLAIN_TS,
};
