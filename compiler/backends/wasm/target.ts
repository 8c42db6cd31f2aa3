// The WebAssembly target: the TypeScript kernels, with the products of large
// f32 matmuls in WebAssembly SIMD (gemmWasm.ts's pass packs their operands,
// wasm.ts assembles the module); the other matmuls tiled as the ts target tiles them. The module is instantiated once when a kernel file
// loads; `W` views its memory, the kernels' scratch.
import { Buffer as NodeBuffer } from "node:buffer";
import type { Kernel } from "../../lower/schedule.js";
import type { EmitHooks } from "../ts/emitTs.js";
import { emitTsKernels } from "../ts/emitTs.js";
import type { TsTarget } from "../ts/target.js";
import { tsTarget } from "../ts/target.js";
import { packProducts, packsOperands, productOf, scratchFloats } from "./gemmWasm.js";
import { registerTiles } from "../ts/tile.js";
import { pointerWalks } from "../ts/pointers.js";
import { TILE_COLS, TILE_ROWS, encodeModule, pagesFor } from "./wasm.js";

/** The WebAssembly module of a file's matmul products: `wasm` holds its exports, `W` views its memory. */
function wasmModule(ks: readonly Kernel[]): string[] {
  const products = ks.flatMap((k) => (k.extern ? [productOf(k.name, k.extern)] : []));
  if (!products.length) return [];
  const floats = Math.max(...products.map((p) => scratchFloats(p)));
  const pages = pagesFor(4 * floats);
  const base64 = NodeBuffer.from(encodeModule(products, pages)).toString("base64");
  return [
    `// WebAssembly SIMD products (f32x4, ${TILE_ROWS}×${TILE_COLS} register tiles) of ${products.length} matmul kernel${products.length > 1 ? "s" : ""}; W is their scratch memory.`,
    `const wasmMemory = new WebAssembly.Memory({ initial: ${pages}, maximum: ${pages} });`,
    `const wasm = new WebAssembly.Instance(new WebAssembly.Module(Uint8Array.from(atob("${base64}"), (c) => c.charCodeAt(0))), { env: { memory: wasmMemory } }).exports as unknown as Readonly<Record<string, () => void>>;`,
    `const W = new Float32Array(wasmMemory.buffer);`,
  ];
}

const emit: EmitHooks = {
  preamble: wasmModule,
  // the product's reference loops become the call to its export, named after the kernel
  externJs: (k) => [`wasm.${k.name}();`],
  scratchArray: "W",
  moduleNames: ["W", "wasm", "wasmMemory"],
};

export const wasmTarget: TsTarget = {
  name: "wasm",
  device: "wasm",
  capabilities: { f64: true, vectorWidth: 4, threads: 1, atomics: true, fusion: true, bf16: true },
  // the page compiles the kernels' WebAssembly module
  pageScriptSources: ["'wasm-unsafe-eval'"],
  cost: {
    operandCost: tsTarget.cost.operandCost,
    // packed operands are computed once per element
    matmulReuse: (mm, precision) => (packsOperands(mm, precision) ? [1, 1] : tsTarget.cost.matmulReuse(mm, precision)),
  },
  reduceColumns: tsTarget.reduceColumns,
  reservedNames: emit.moduleNames,
  // large f32 products packed for WebAssembly first; the others tiled as the ts target tiles them
  passes: [packProducts, registerTiles, pointerWalks],
  hooks: emit,
  emitKernels: (s, plan) => emitTsKernels(s, plan, emit),
};
