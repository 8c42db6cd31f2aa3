// The WebAssembly target: the TypeScript kernels, with the products of large
// f32 matmuls and convolutions in WebAssembly SIMD (gemmWasm.ts's pass packs
// matmul operands, convWasm.ts's packs convolution patches, wasm.ts
// assembles the module), pooling in WebAssembly (poolWasm.ts); the other matmuls tiled as the ts target
// tiles them. The module is instantiated once when a kernel file loads; `W`
// views its memory, the kernels' scratch; the runtime may split its products
// across worker threads (runtime/wasmThreads.ts).
import { Buffer as NodeBuffer } from "node:buffer";
import type { EmitHooks, ExternSite, HookedKernel } from "../ts/emitTs.js";
import type { Stmt } from "../../kernel/kir.js";
import { probedBody } from "../../kernel/probe.js";
import { stmtsJs } from "../ts/jsExpr.js";
import { isSimdCall, simdExtern, simdExterns, simdLoops } from "./simdLoops.js";
import { WAT_FILE, kernelsWat } from "./wat.js";
import type { Schedule } from "../../lower/schedule.js";
import { kernelsOf } from "../../lower/schedule.js";
import { emitTsKernels } from "../ts/emitTs.js";
import type { TsTarget } from "../ts/target.js";
import { tsTarget } from "../ts/target.js";
import { packProducts, packsOperands, productOf, productRange, productWork, scratchFloats } from "./gemmWasm.js";
import { packConvs } from "./convWasm.js";
import { runPools } from "./poolWasm.js";
import { copyAt, externCopies, kirFunctionBody } from "./kirWasm.js";
import { registerTiles } from "../ts/tile.js";
import { pointerWalks } from "../ts/pointers.js";
import { I32, TILE_COLS, TILE_ROWS, assembleModule, memoryLimitsAt, pagesFor } from "./wasm.js";
import { relaxedProbe } from "../../../runtime/wasmFeatures.js";

/** Pages the module's memory may grow to, holding an arena F besides the scratch (1 GiB). */
const MAX_PAGES = 16384;

/**
 * The WebAssembly module of a file's matmul products and elementwise loops:
 * `wasm` holds its exports, `W` views its memory. The memory is shared where
 * the host has SharedArrayBuffer (Node; a cross-origin-isolated page), so the
 * runtime can run the products on worker threads over it: `WASM` (exported)
 * gives it the module, the memory and each product's multiply-adds, and takes
 * back `threads`, each product's export split across the threads by column
 * panels. A module with elementwise loops or data movement also offers
 * `WASM.arena(floats)`: an arena F placed in its (shared, growable) memory,
 * which its loops and its data movement read and write in place; on any other
 * arena the loops run as JavaScript and the data movement on copies in the
 * scratch.
 */
function wasmModule(ks: readonly HookedKernel[]): string[] {
  const m = moduleOf(ks);
  if (!m) return [];
  const { products, loops, moves, pages, maximum, bytes, sites } = m;
  // elementwise loops and data movement work on an arena placed in the memory
  const inPlace = loops.length > 0 || moves.length > 0;
  const base64 = NodeBuffer.from(bytes).toString("base64");
  const work = [...products.map((p) => [p.name, productWork(p)] as const), ...loops.map((l) => [l.name, l.work] as const)].map(([n, w]) => `${JSON.stringify(n)}: ${w}`).join(", ");
  const what = [
    products.length ? `products (f32x4, ${TILE_ROWS}×${TILE_COLS} register tiles) of ${products.length} matmul kernel${products.length > 1 ? "s" : ""}` : "",
    loops.length ? `${loops.length} elementwise or row loop${loops.length > 1 ? "s" : ""} (f64x2 lanes)` : "",
    moves.length ? `${moves.length} function${moves.length > 1 ? "s" : ""} of data movement (convolution packing, pooling; scalar)` : "",
  ].filter((x) => x).join(" and ");
  return [
    `// WebAssembly SIMD ${what}; W is their scratch memory.`,
    "// Each product's export computes the columns of C in its panels [from, to) (a batched product: its batches [from, to)), each loop's the iterations [from, to) of its outermost loop (the range passed last), so threads can split them without changing a value.",
    `const wasmShared = typeof SharedArrayBuffer === "function";`,
    `const wasmBytes = Uint8Array.from(atob("${base64}"), (c) => c.charCodeAt(0));`,
    "// the memory import's limits: shared (3) or not (1), with a maximum either way",
    `wasmBytes[${memoryLimitsAt(bytes)}] = wasmShared ? 3 : 1;`,
    ...(sites.length
      ? [
          "// relaxed SIMD's fused multiply-add where the engine validates it (Chrome; Node with --experimental-wasm-relaxed-simd, which gradc's runtime sets):",
          "// each multiply-add of the products, `f32x4.mul; local.get acc; f32x4.add`, becomes `local.get acc; f32x4.relaxed_madd; nop; nop; nop`",
          `const wasmFma = WebAssembly.validate(Uint8Array.of(${Array.from(relaxedProbe()).join(", ")}));`,
          "if (wasmFma) {",
          "  let at = 0;",
          `  for (const step of [${sites.map((x, i) => x - (sites[i - 1] ?? 0)).join(", ")}]) {`,
          "    at += step;",
          "    wasmBytes.set([0x20, wasmBytes[at + 4]!, 0xfd, 0x85, 0x02, 1, 1, 1], at);",
          "  }",
          "}",
        ]
      : ["const wasmFma = false;"]),
    `const wasmMemory = new WebAssembly.Memory({ initial: ${pages}, maximum: ${maximum}, shared: wasmShared });`,
    "const wasmCode = new WebAssembly.Module(wasmBytes);",
    "const wasm = new WebAssembly.Instance(wasmCode, { env: { memory: wasmMemory } }).exports as unknown as Readonly<Record<string, (...args: number[]) => void>>;",
    "const W = new Float32Array(wasmMemory.buffer);",
    "// the scratch's pages touched now (the system maps a fresh memory's pages on first write), not in the first step",
    "W.fill(0);",
    ...(inPlace
      ? [
          "/** The arenas F placed in the module's memory, and the byte address of each one's element 0. */",
          "const wasmArenas = new WeakMap<object, number>();",
          "/** An arena F of `floats` elements in the module's memory (grown for it; a shared memory's views stay valid), or undefined where it cannot grow. */",
          "const wasmArena = (floats: number): Float32Array | undefined => {",
          "  if (!wasmShared) return undefined;",
          "  let at: number;",
          "  try {",
          "    at = wasmMemory.grow(Math.max(1, Math.ceil((4 * floats) / 65536))) * 65536;",
          "  } catch {",
          "    return undefined;",
          "  }",
          "  const arena = new Float32Array(wasmMemory.buffer, at, floats);",
          "  // its pages touched now, not in the first step",
          "  arena.fill(0);",
          "  wasmArenas.set(arena, at);",
          "  return arena;",
          "};",
        ]
      : []),
    "/** The module and memory, whether its products use FMA, each ranged export's work (a product's multiply-adds; a loop's elements in those units), (set by the runtime) the exports split across worker threads, and an arena in the memory where the module has elementwise loops or data movement. */",
    "const WASM: { readonly module: WebAssembly.Module; readonly memory: WebAssembly.Memory; readonly fma: boolean; readonly work: Readonly<Record<string, number>>; threads?: Readonly<Record<string, (...args: number[]) => void>>; readonly arena?: (floats: number) => Float32Array | undefined } = {",
    "  module: wasmCode,",
    "  memory: wasmMemory,",
    "  fma: wasmFma,",
    `  work: { ${work} },`,
    ...(inPlace ? ["  arena: wasmArena,"] : []),
    "};",
  ];
}

/** The module of a file's kernels (their products, then their elementwise and row loops), or undefined when they have none. */
function moduleOf(ks: readonly HookedKernel[]) {
  const products = ks.flatMap((k) => (k.extern && k.body.some((s) => s.k === "extern" && s.call === "product") ? [productOf(k.name, k.extern)] : []));
  const loops = ks.flatMap((k) => simdExterns(k));
  const moves = ks.flatMap(movesOf);
  if (!products.length && !loops.length && !moves.length) return undefined;
  const floats = Math.max(0, ...ks.map((k) => k.extern?.scratch?.size ?? 0), ...products.map((p) => scratchFloats(p)));
  const pages = pagesFor(4 * floats);
  const maximum = loops.length || moves.length ? MAX_PAGES : pages;
  const functions = [...loops.map((l) => ({ name: l.name, ...l.encode({ fma: false }) })), ...moves];
  // the products multiply then add; `sites`: where they become FMA when the file loads
  const { bytes, sites } = assembleModule(products, pages, { ranged: true, shared: true, maximum, functions, kernel: { fma: false } });
  return { products, loops, moves, pages, maximum, bytes, sites };
}

/** graphs/kernels.wat: the text of each file's module, by kernel (`gradc inspect --wat`). */
function watFile(s: Schedule): string | undefined {
  const parts: string[] = [];
  for (const [file, ks] of [["forward.js", kernelsOf(s, "forward")], ["step.js", [...kernelsOf(s, "gradients"), ...kernelsOf(s, "update")]]] as const) {
    const m = moduleOf(ks);
    const fma = "where relaxed SIMD validates, each product's `f32x4.mul; local.get acc; f32x4.add` runs as `local.get acc; f32x4.relaxed_madd` (FMA)";
    if (m) parts.push(kernelsWat(file, ks.map((k) => k.name), m.bytes, m.sites.length ? [fma] : []));
  }
  return parts.length ? parts.join("\n") : undefined;
}

/**
 * An elementwise extern: the call of its export with its buffers' byte
 * addresses (the arena's in the module's memory, the scratch's) and the names
 * it reads from outside, when the kernel's arena F is in the memory; else its
 * reference loops as JavaScript. The checked form (--check-numerics) runs the
 * reference loops with their probes.
 */
function simdExternJs(k: HookedKernel, s: Stmt & { k: "extern" }, site: ExternSite): string[] {
  const reference = (stmts: readonly Stmt[]) => stmtsJs(stmts, site.bind, 1);
  if (site.checked) return ["{", ...reference(probedBody(s.reference, k.probes ?? new Map())), "}"];
  const x = simdExtern(k, s);
  const nest = x.params;
  const args = nest.buffers.map((name) => {
    const b = site.bind(name);
    if (b.array === "F") return `wasmAt + ${4 * b.offset}`;
    if (b.array === emit.scratchArray) return `${4 * b.offset}`;
    throw new Error(`wasm: kernel ${k.name}'s elementwise loop reads ${name} from arena ${b.array}`);
  });
  // on threads when the runtime split it (`WASM.threads`), over the outermost loop's range
  const name = JSON.stringify(x.name);
  const call = `(WASM.threads?.[${name}] ?? wasm[${name}])(${[...args, ...nest.indexVars, ...nest.valueVars, ...x.range].join(", ")});`;
  return ["{", "  const wasmAt = wasmArenas.get(F);", `  if (wasmAt !== undefined) ${call}`, "  else {", ...reference(s.reference).map((l) => `  ${l}`), "  }", "}"];
}

/** The export of a kernel's data movement in WebAssembly (`pack`, `unpack`, `run`; `$` keeps it apart from every kernel name). */
const moveName = (kernel: string, call: string): string => `${kernel}$${call}`;

/** Whether an extern statement is data movement in WebAssembly (convWasm.ts, poolWasm.ts). */
const isMove = (call: string): boolean => call === "pack" || call === "unpack" || call === "run";

/** The buffers of a data movement extern besides the kernel's scratch: the byte address of each is a parameter of its function. */
function moveBuffers(k: HookedKernel, s: Stmt & { k: "extern" }): string[] {
  const { into, back } = externCopies(s, k.extern!.scratch?.name);
  return [...new Set([...into, ...back])];
}

/**
 * The `pack`, `unpack` and `run` externs of a kernel as module functions: their
 * reference loops over the scratch and the buffers whose addresses they take
 * (the arena's elements where it lies in the memory, else the copies the
 * work's data places in the scratch).
 */
function movesOf(k: HookedKernel): { name: string; params: number[]; body: number[] }[] {
  const moves: { name: string; params: number[]; body: number[] }[] = [];
  for (const s of k.body) {
    if (s.k !== "extern" || !isMove(s.call)) continue;
    const buffers = moveBuffers(k, s);
    const body = kirFunctionBody(s.reference, (buf) => copyAt(k.extern!.data, k.extern!.scratch?.name, buf), buffers);
    if (!body) throw new Error(`wasm: kernel ${k.name}'s ${s.call} is not WebAssembly data movement`);
    moves.push({ name: moveName(k.name, s.call), params: buffers.map(() => I32), body });
  }
  return moves;
}

/**
 * Data movement in WebAssembly: its export, called with the byte address of
 * each buffer it reads or writes; where the arena lies in the module's memory,
 * the buffers' own elements, else copies in the scratch (kirWasm.ts's
 * `externCopies` says which are copied in before the call and back after it,
 * by index loops). In the checked form, its reference loops as JavaScript.
 */
function moveJs(k: HookedKernel, s: Stmt & { k: "extern" }, site: ExternSite): string[] {
  if (site.checked) return ["{", ...stmtsJs(s.reference, site.bind, 1), "}"];
  const data = k.extern!.data;
  const { into, back } = externCopies(s, k.extern!.scratch?.name);
  const [at, size] = [(name: string) => data[`at.${name}`]!, (name: string) => data[`size.${name}`]!];
  const { bind } = site;
  const buffers = moveBuffers(k, s);
  const fn = `wasm[${JSON.stringify(moveName(k.name, s.call))}]`;
  const loop = (name: string, toScratch: boolean): string => {
    const { array, offset } = bind(name);
    const [w, a] = [`W[${at(name)} + i]`, `${array}[${offset} + i]`];
    return `    for (let i = 0; i < ${size(name)}; i++) ${toScratch ? `${w} = ${a}` : `${a} = ${w}`};`;
  };
  const inArena = buffers.every((name) => bind(name).array === "F");
  return [
    "{",
    ...(inArena ? ["  const wasmAt = wasmArenas.get(F);", `  if (wasmAt !== undefined) ${fn}(${buffers.map((name) => `wasmAt + ${4 * bind(name).offset}`).join(", ")});`, "  else {"] : ["  {"]),
    ...into.map((name) => loop(name, true)),
    `    ${fn}(${buffers.map((name) => `${4 * at(name)}`).join(", ")});`,
    ...back.map((name) => loop(name, false)),
    "  }",
    "}",
  ];
}

const emit: EmitHooks = {
  preamble: wasmModule,
  // a product's reference loops become the call to its export (named after the kernel) over every column panel (or batch), on threads when the runtime set them
  externJs: (k, s, site) =>
    isSimdCall(s.call)
      ? simdExternJs(k, s, site)
      : isMove(s.call)
        ? moveJs(k, s, site)
        : [`(WASM.threads?.${k.name} ?? wasm.${k.name})(0, ${productRange(productOf(k.name, k.extern!))});`],
  scratchArray: "W",
  moduleNames: ["W", "wasm", "wasmMemory", "wasmShared", "wasmFma", "wasmBytes", "wasmCode", "WASM", "wasmArenas", "wasmArena", "wasmAt"],
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
  // large f32 products (matmuls, then convolutions as im2col products) packed for WebAssembly first, then pooling, then elementwise loop nests (epilogues included) in WebAssembly; the other matmuls tiled as the ts target tiles them
  passes: [packProducts, packConvs, runPools, simdLoops, registerTiles, pointerWalks],
  hooks: emit,
  emitKernels: (s, plan) => {
    const emitted = emitTsKernels(s, plan, emit);
    const wat = watFile(s);
    return wat ? { ...emitted, files: new Map([...emitted.files, [WAT_FILE, wat]]) } : emitted;
  },
};
