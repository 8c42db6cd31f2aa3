// The WebAssembly target: the TypeScript kernels, with the products of large
// f32 matmuls in WebAssembly SIMD (gemmWasm.ts's pass packs their operands,
// wasm.ts assembles the module); the other matmuls tiled as the ts target
// tiles them. The module is instantiated once when a kernel file loads; `W`
// views its memory, the kernels' scratch; the runtime may split its products
// across worker threads (runtime/wasmThreads.ts).
import { Buffer as NodeBuffer } from "node:buffer";
import type { Kernel } from "../../lower/schedule.js";
import type { EmitHooks } from "../ts/emitTs.js";
import { emitTsKernels } from "../ts/emitTs.js";
import type { TsTarget } from "../ts/target.js";
import { tsTarget } from "../ts/target.js";
import { packProducts, packsOperands, productOf, productRange, productWork, scratchFloats } from "./gemmWasm.js";
import { registerTiles } from "../ts/tile.js";
import { pointerWalks } from "../ts/pointers.js";
import { TILE_COLS, TILE_ROWS, encodeModule, memoryLimitsAt, pagesFor } from "./wasm.js";

/**
 * The WebAssembly module of a file's matmul products: `wasm` holds its
 * exports, `W` views its memory. The memory is shared where the host has
 * SharedArrayBuffer (Node; a cross-origin-isolated page), so the runtime can
 * run the products on worker threads over it: `WASM` (exported) gives it the
 * module, the memory and each product's multiply-adds, and takes back
 * `threads`, each product's export split across the threads by column panels.
 */
function wasmModule(ks: readonly Kernel[]): string[] {
  const products = ks.flatMap((k) => (k.extern ? [productOf(k.name, k.extern)] : []));
  if (!products.length) return [];
  const floats = Math.max(...products.map((p) => scratchFloats(p)));
  const pages = pagesFor(4 * floats);
  const bytes = encodeModule(products, pages, { ranged: true, shared: true });
  const base64 = NodeBuffer.from(bytes).toString("base64");
  const work = products.map((p) => `${JSON.stringify(p.name)}: ${productWork(p)}`).join(", ");
  return [
    `// WebAssembly SIMD products (f32x4, ${TILE_ROWS}×${TILE_COLS} register tiles) of ${products.length} matmul kernel${products.length > 1 ? "s" : ""}; W is their scratch memory.`,
    "// Each export computes the columns of C in its panels [from, to) (a batched product: its batches [from, to)), so threads can split a product without changing a value.",
    `const wasmShared = typeof SharedArrayBuffer === "function";`,
    `const wasmBytes = Uint8Array.from(atob("${base64}"), (c) => c.charCodeAt(0));`,
    "// the memory import's limits: shared (3) or not (1), with a maximum either way",
    `wasmBytes[${memoryLimitsAt(bytes)}] = wasmShared ? 3 : 1;`,
    `const wasmMemory = new WebAssembly.Memory({ initial: ${pages}, maximum: ${pages}, shared: wasmShared });`,
    "const wasmCode = new WebAssembly.Module(wasmBytes);",
    "const wasm = new WebAssembly.Instance(wasmCode, { env: { memory: wasmMemory } }).exports as unknown as Readonly<Record<string, (from: number, to: number) => void>>;",
    "const W = new Float32Array(wasmMemory.buffer);",
    "/** The products' module and memory, each product's multiply-adds, and (set by the runtime) each product split across worker threads. */",
    "const WASM: { readonly module: WebAssembly.Module; readonly memory: WebAssembly.Memory; readonly work: Readonly<Record<string, number>>; threads?: Readonly<Record<string, (from: number, to: number) => void>> } = {",
    "  module: wasmCode,",
    "  memory: wasmMemory,",
    `  work: { ${work} },`,
    "};",
  ];
}

const emit: EmitHooks = {
  preamble: wasmModule,
  // the product's reference loops become the call to its export (named after the kernel) over every column panel (or batch), on threads when the runtime set them
  externJs: (k) => [`(WASM.threads?.${k.name} ?? wasm.${k.name})(0, ${productRange(productOf(k.name, k.extern!))});`],
  scratchArray: "W",
  moduleNames: ["W", "wasm", "wasmMemory", "wasmShared", "wasmBytes", "wasmCode", "WASM"],
  exported: ["WASM"],
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
