// The gpu target: kernels as gpu.js kernel functions (emitGpu.ts), run by the
// runtime's gpu device on WebGPU (Dawn in Node, the browser's WebGPU) with
// every buffer kept on the device. WGSL computes in float32 only, has no
// atomic float add and gpu.js gives a kernel one output, so: f64 compiles are
// refused, scatter-adds are emitted as gathers, and each kernel computes one
// graph node (no fusion), one gpu.js function per device buffer it writes.
import type { Target } from "../target.js";
import { PLAIN_TS, emitTsKernels } from "../ts/emitTs.js";
import { GPU_MODULE, emitGpuModule } from "./emitGpu.js";

export const gpuTarget: Target = {
  name: "gpu",
  device: "gpu",
  capabilities: { f64: false, vectorWidth: 1, threads: Infinity, atomics: false, fusion: false },
  // gpu.js builds each kernel (and its WGSL or GLSL) with new Function in the page
  pageScriptSources: ["'unsafe-eval'"],
  // fusion is off: the cost model is never weighed
  cost: { operandCost: 0, matmulReuse: () => [1, 1] },
  reduceColumns: 1,
  reservedNames: PLAIN_TS.moduleNames,
  // one output element per thread: the reference loop nests as lowered
  passes: [],
  emitKernels: (s, plan) => {
    // the TypeScript modules stay in the bundle: the host reference of the same kernels
    const ts = emitTsKernels(s, plan, PLAIN_TS);
    const gpu = emitGpuModule(s, plan);
    return {
      files: new Map([...ts.files, [GPU_MODULE, gpu.source]]),
      functions: gpu.functions,
      manifestFiles: { gpu: GPU_MODULE },
      ...(ts.transpileMs !== undefined ? { transpileMs: ts.transpileMs } : {}),
    };
  },
};
