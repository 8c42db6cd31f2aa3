// Convolutions in WebAssembly SIMD (f32, large enough to pay): the packConvs
// pass rewrites the loop nest of a conv2d, conv2dBackpropInput or
// conv2dBackpropFilter kernel (ops/conv.ts) as one product of the module's
// 4×8 SIMD tiles (gemmWasm.ts). Each of them is a masked product nest:
//   for o1 parallel { ... for om parallel {
//     let acc = 0
//     for r1 reduce { lets; if guard { for r2 reduce { ... acc = acc + a * b } } }
//     epilogue } }
// where the guards only skip taps that fall in the padding. The output loops
// split into rows (those `a` reads) and columns (those `b` reads), the
// reduction loops flatten into the summed axis p; then C[i, j] = Σ_p A[i, p]·
// B[p, j] with A and B zero where a guard fails. That is im2col: conv2d packs
// image patches × filter, backprop-input output-gradient patches × filterᵀ
// (the transposed-convolution gather that lowering writes), backprop-filter
// image patchesᵀ × output gradient. The packing loops walk the original nest
// (each guard an if whose else stores the zeros of the taps it skips), the
// product runs in WebAssembly (threads split it by column panels as any
// other), and the epilogue reads C back in the original loops.
import type { Expr, ExternWork, Loop, Stmt } from "../../kernel/kir.js";
import { addE, bin, if_, let_, load, mapExpr, mapExprs, mulE, num, parallel, ref, store, visitKir } from "../../kernel/kir.js";
import { affineOf } from "../../kernel/affine.js";
import type { Kernel } from "../../lower/schedule.js";
import { kirFunctionBody, placeCopy } from "./kirWasm.js";
import type { OpKind } from "../../ir/kinds.js";
import type { KernelPass } from "../target.js";
import { declaredNames, freshNames } from "../ts/productNest.js";
import { WASM_MIN_WORK, productPanels, referenceProduct, scratchFloats, varsOf } from "./gemmWasm.js";
import { TILE_COLS, TILE_ROWS } from "./wasm.js";

/** The ops whose kernels the pass rewrites. */
const CONV_OPS: ReadonlySet<OpKind> = new Set<OpKind>(["conv2d", "conv2dBackpropInput", "conv2dBackpropFilter"]);

/** A masked product nest's parts (see the file header). */
export interface ConvNest {
  /** The parallel loops over the output, outermost first (each but the last with one statement). */
  readonly outer: readonly Loop[];
  /** The last output loop's statements before the reduction (lets; the accumulator's among them). */
  readonly pre: readonly Stmt[];
  /** The outermost reduction loop. */
  readonly tree: Loop;
  /** The statements after it (the epilogue). */
  readonly post: readonly Stmt[];
  readonly acc: string;
  /** The reduction loops, outermost first: one chain. */
  readonly sums: readonly Loop[];
  /** The lets inside the reduction, by name: their values and the guards around them. */
  readonly lets: ReadonlyMap<string, { readonly init: Expr; readonly guards: readonly Expr[] }>;
  readonly guards: readonly Expr[];
  /** acc = acc + a * b. */
  readonly a: Expr;
  readonly b: Expr;
}

/** `s` (a kernel's top-level statement) as a masked product nest, or undefined. */
export function convNest(s: Stmt): ConvNest | undefined {
  const outer: Loop[] = [];
  let at: Stmt = s;
  for (;;) {
    if (at.k !== "for" || at.mark !== "parallel" || at.from !== 0) return undefined;
    outer.push(at);
    if (at.body.length !== 1 || at.body[0]!.k !== "for" || at.body[0]!.mark !== "parallel") break;
    at = at.body[0]!;
  }
  const body = outer.at(-1)!.body;
  const treeAt = body.findIndex((x) => x.k === "for");
  const tree = body[treeAt];
  if (tree?.k !== "for" || tree.mark !== "reduce" || tree.from !== 0) return undefined;
  const pre = body.slice(0, treeAt);
  const post = body.slice(treeAt + 1);
  if (!pre.every((x) => x.k === "let" || x.k === "comment") || !post.every((x) => x.k === "let" || x.k === "store" || x.k === "comment")) return undefined;
  // the chain: lets, then one reduce loop, guard or the accumulation, at each level
  const sums: Loop[] = [];
  const lets = new Map<string, { init: Expr; guards: readonly Expr[] }>();
  const guards: Expr[] = [];
  let last: Stmt | undefined;
  for (let level: readonly Stmt[] = [tree]; ; ) {
    const lead = level.slice(0, -1);
    if (!lead.every((x) => x.k === "let" || x.k === "comment")) return undefined;
    for (const x of lead) if (x.k === "let") lets.set(x.name, { init: x.init, guards: [...guards] });
    const next = level.at(-1);
    if (next?.k === "for" && next.mark === "reduce" && next.from === 0) {
      sums.push(next);
      level = next.body;
    } else if (next?.k === "if" && !next.else) {
      guards.push(next.c);
      level = next.then;
    } else {
      last = next;
      break;
    }
  }
  if (last?.k !== "set") return undefined;
  const acc = last.name;
  const v = last.value;
  if (v.k !== "bin" || v.op !== "+" || v.a.k !== "var" || v.a.name !== acc || v.b.k !== "bin" || v.b.op !== "*") return undefined;
  if (!pre.some((x) => x.k === "let" && x.name === acc && x.init.k === "num" && x.init.v === 0)) return undefined;
  // the accumulator is read only where it accumulates and in the epilogue
  const reads = new Set<string>();
  [v.b, ...guards, ...[...lets.values()].map((l) => l.init)].forEach((e) => varsOf(e, reads));
  if (reads.has(acc)) return undefined;
  return { outer, pre, tree, post, acc, sums, lets, guards, a: v.b.a, b: v.b.b };
}

/** The loop variables an expression depends on, through the nest's lets; undefined when it reads a local the reduction does not declare. */
function loopDeps(e: Expr, nest: ConvNest, loops: ReadonlySet<string>, into = new Set<string>()): Set<string> | undefined {
  for (const name of varsOf(e)) {
    if (loops.has(name)) into.add(name);
    else {
      const l = nest.lets.get(name);
      if (!l || !loopDeps(l.init, nest, loops, into)) return undefined;
    }
  }
  return into;
}

/** The lets of the reduction an expression reads, transitively. */
function letsOf(e: Expr, nest: ConvNest, into = new Set<string>()): Set<string> {
  for (const name of varsOf(e)) {
    const l = nest.lets.get(name);
    if (l && !into.has(name)) {
      into.add(name);
      letsOf(l.init, nest, into);
    }
  }
  return into;
}

const hasLoad = (e: Expr): boolean => {
  let found = false;
  mapExpr(e, (x) => ((found ||= x.k === "load"), x));
  return found;
};

/** Which operand each guard masks, and the output loops of each operand; undefined when the nest is no product. */
function split(nest: ConvNest): { rows: Loop[]; cols: Loop[]; owner: Map<Expr, "a" | "b"> } | undefined {
  const outerVars = new Set(nest.outer.map((l) => l.v));
  const loops = new Set([...outerVars, ...nest.sums.map((l) => l.v)]);
  const of = (e: Expr) => {
    const d = loopDeps(e, nest, loops);
    return d && new Set([...d].filter((x) => outerVars.has(x)));
  };
  const rows = of(nest.a);
  const cols = of(nest.b);
  if (!rows || !cols) return undefined;
  const owner = new Map<Expr, "a" | "b">();
  for (const g of nest.guards) {
    const d = of(g);
    if (!d) return undefined;
    const side = [...d].some((x) => cols.has(x)) ? "b" : "a";
    if (side === "b" && [...d].some((x) => rows.has(x))) return undefined;
    d.forEach((x) => (side === "a" ? rows : cols).add(x));
    owner.set(g, side);
  }
  if ([...rows].some((x) => cols.has(x)) || rows.size + cols.size !== outerVars.size || !rows.size || !cols.size) return undefined;
  // an operand's loads and lets never depend on a local that only the other operand's guards keep in range
  for (const side of ["a", "b"] as const) {
    const used = letsOf(nest[side], nest);
    nest.guards.filter((g) => owner.get(g) === side).forEach((g) => letsOf(g, nest, used));
    for (const name of used) {
      const l = nest.lets.get(name)!;
      if (hasLoad(l.init)) return undefined;
      if (l.guards.some((g) => owner.get(g) !== side)) return undefined;
    }
  }
  return { rows: nest.outer.filter((l) => rows.has(l.v)), cols: nest.outer.filter((l) => cols.has(l.v)), owner };
}

/** Row-major index over loops (outermost first) and the count of its values. */
function flat(loops: readonly Loop[]): { index: Expr; size: number } {
  let index: Expr = num(0);
  let size = 1;
  for (let x = loops.length - 1; x >= 0; x--) {
    index = addE(index, mulE(ref(loops[x]!.v), size));
    size *= loops[x]!.to;
  }
  return { index, size };
}

/**
 * One operand's packing statements for the reduction statements `stmts`:
 * loops kept (as parallel: each position is written once), the lets the
 * operand needs, its guards as ifs that store zeros where they fail, and the
 * operand's value at `at` + `stride`·p.
 */
function packLevel(stmts: readonly Stmt[], nest: ConvNest, side: "a" | "b", owner: ReadonlyMap<Expr, "a" | "b">, needed: ReadonlySet<string>, scratch: string, at: Expr, stride: number, p: Expr): Stmt[] {
  const out: Stmt[] = [];
  const again = (x: readonly Stmt[]) => packLevel(x, nest, side, owner, needed, scratch, at, stride, p);
  for (const s of stmts) {
    if (s.k === "let") {
      if (needed.has(s.name)) out.push(s);
    } else if (s.k === "for") {
      out.push(parallel(s.v, s.to, again(s.body)));
    } else if (s.k === "if") {
      if (owner.get(s.c) === side) out.push(if_(s.c, again(s.then), zeros(s.then, scratch, at, stride, p)));
      else out.push(...again(s.then));
    } else if (s.k === "set") {
      out.push(store(scratch, addE(at, mulE(p, stride)), nest[side]));
    }
  }
  return out;
}

/** Zeros at the positions of the reduction loops in `stmts` (the taps a failed guard skips). */
function zeros(stmts: readonly Stmt[], scratch: string, at: Expr, stride: number, p: Expr): Stmt[] {
  const loops: Loop[] = [];
  for (let level = stmts; ; ) {
    const next = level.at(-1);
    if (next?.k === "for") {
      loops.push(next);
      level = next.body;
    } else if (next?.k === "if") level = next.then;
    else break;
  }
  return loops.reduceRight((inner: Stmt[], l) => [parallel(l.v, l.to, inner)], [store(scratch, addE(at, mulE(p, stride)), num(0))]);
}

/** Nested copies of `loops` (parallel, outermost first) around `body`. */
const within = (loops: readonly Loop[], body: Stmt[]): Stmt[] => loops.reduceRight((inner, l) => [parallel(l.v, l.to, inner)], body);

/** The nest with its product in WebAssembly (see the file header), or undefined when it does not qualify. */
function packedConv(nest: ConvNest, buffers: Kernel["buffers"], taken: Set<string>): { stmts: Stmt[]; work: ExternWork } | undefined {
  const parts = split(nest);
  if (!parts) return undefined;
  const rows = flat(parts.rows);
  const cols = flat(parts.cols);
  const sum = flat(nest.sums);
  const [m, n, k] = [rows.size, cols.size, sum.size];
  if (m * n * k < WASM_MIN_WORK) return undefined;
  const fresh = freshNames(taken);
  const scratch = fresh("W");
  // scratch floats: packed A, packed B, then C
  const { rowPanels, colPanels, width, aSize, bSize } = productPanels(m, n, k);
  const [a, b, c] = [0, aSize, aSize + bSize];
  const product = { m, n, rowPanels, colPanels, k, a: 4 * a, b: 4 * b, c: 4 * c };
  // one operand: for each of its rows (or columns) `r`, its values at `panelAt(r)` + tile·p, and zeros in the rows (columns) past its edge
  const operand = (side: "a" | "b", loops: readonly Loop[], index: Expr, size: number, from: number, tile: number, panels: number): Stmt[] => {
    const needed = letsOf(nest[side], nest);
    nest.guards.filter((g) => parts.owner.get(g) === side).forEach((g) => letsOf(g, nest, needed));
    const panelAt = (r: Expr) => addE(from, addE(mulE(bin("idiv", r, tile), tile * k), bin("mod", r, tile)));
    const at = fresh(side === "a" ? "pa" : "pb");
    const stmts = within(loops, [let_(at, panelAt(index)), ...packLevel([nest.tree], nest, side, parts.owner, needed, scratch, ref(at), tile, sum.index)]);
    if (size < panels * tile) {
      const [r, q] = [fresh("r"), fresh("q")];
      stmts.push(parallel(r, panels * tile, [parallel(q, k, [store(scratch, addE(panelAt(ref(r)), mulE(ref(q), tile)), num(0))])], size));
    }
    return stmts;
  };
  // the epilogue reads C from scratch in place of the accumulator
  const cAt = load(scratch, addE(c, addE(mulE(rows.index, width), cols.index)));
  const epilogue = within(nest.outer, mapExprs([...nest.pre.filter((s) => !(s.k === "let" && s.name === nest.acc)), ...nest.post], (x) => (x.k === "var" && x.name === nest.acc ? cAt : x)));
  const packing = [...operand("a", parts.rows, rows.index, m, a, TILE_ROWS, rowPanels), ...operand("b", parts.cols, cols.index, n, b, TILE_COLS, colPanels)];
  // past C: copies of the buffers the packing reads, then the output as the epilogue writes it, where those run in WebAssembly
  const data: Record<string, number> = { ...product };
  let end = c + rowPanels * TILE_ROWS * width;
  const place = (names: readonly string[]) => {
    for (const name of names) end = placeCopy(data, name, buffers[name]!.size, end);
  };
  const sources = inWasm(packing, scratch, buffers);
  if (sources) place(sources);
  const target = sources && copiedOut(nest, epilogue, scratch, buffers);
  if (target) place([target]);
  const stmts: Stmt[] = [
    { k: "comment", text: `im2col: A[${m}×${k}] into panels of ${TILE_ROWS} rows, B[${k}×${n}] into panels of ${TILE_COLS} columns, in the scratch memory ${scratch} (zeros where a tap is padding)${sources ? `, in WebAssembly from ${sources.join(", ")}` : ""}` },
    ...(sources ? [{ k: "extern", call: "pack", reference: packing } as const] : packing),
    { k: "comment", text: `C[${m}×${n}] over ${k} in WebAssembly SIMD (${TILE_ROWS}×${TILE_COLS} tiles), then the epilogue per element${target ? `, in WebAssembly into ${target}` : ""}` },
    { k: "extern", call: "product", reference: referenceProduct(product, scratch) },
    ...(target ? [{ k: "extern", call: "unpack", reference: epilogue } as const] : epilogue),
  ];
  return { stmts, work: { data, scratch: { name: scratch, size: Math.max(end, scratchFloats(product)) } } };
}

/** The f32 arena buffers `stmts` read (besides scratch) when WebAssembly can run them on copies of those, else undefined. */
function inWasm(stmts: readonly Stmt[], scratch: string, buffers: Kernel["buffers"]): string[] | undefined {
  const read = new Set<string>();
  visitKir(stmts, { expr: (e) => void (e.k === "load" && e.buf !== scratch && read.add(e.buf)) });
  const names = [...read];
  if (!names.every((x) => buffers[x]?.arena === "F")) return undefined;
  // every store goes to scratch
  let others = false;
  visitKir(stmts, { stmt: (x) => void (x.k === "store" && x.buf !== scratch && (others = true)) });
  return !others && kirFunctionBody(stmts, (x) => (x === scratch || read.has(x) ? 0 : undefined)) ? names : undefined;
}

/**
 * The buffer the epilogue writes, when WebAssembly can write all of it into
 * a copy that then replaces it: the epilogue reads scratch only and stores
 * once per iteration, unconditionally, at the row-major index of the output
 * loops, to an f32 arena buffer of their size; else undefined.
 */
function copiedOut(nest: ConvNest, epilogue: readonly Stmt[], scratch: string, buffers: Kernel["buffers"]): string | undefined {
  const stores = nest.post.filter((x) => x.k === "store");
  const only = stores[0];
  if (stores.length !== 1 || only?.k !== "store" || buffers[only.buf]?.arena !== "F") return undefined;
  const { size } = flat(nest.outer);
  if (buffers[only.buf]!.size !== size) return undefined;
  const index = affineOf(only.index);
  let stride = size;
  const rowMajor = index?.k === 0 && nest.outer.every((l) => ((stride /= l.to), (index.terms.get(l.v) ?? 0) === stride)) && index.terms.size === nest.outer.length;
  if (!rowMajor) return undefined;
  let foreign = false;
  visitKir(epilogue, { expr: (e) => void (e.k === "load" && e.buf !== scratch && (foreign = true)) });
  return !foreign && kirFunctionBody(epilogue, (x) => (x === scratch || x === only.buf ? 0 : undefined)) ? only.buf : undefined;
}

/** The wasm backend's pass for convolutions (f32, large enough): im2col panels and the SIMD product (see the file header). */
export const packConvs: KernelPass = {
  name: "packConvs",
  run: (k, cx) => {
    if (cx.precision !== "f32" || k.extern || !k.node || !CONV_OPS.has(k.node.op)) return k;
    const at = k.body.findIndex((s) => convNest(s) !== undefined);
    if (at < 0) return k;
    const taken = declaredNames(k.body);
    for (const name of Object.keys(k.buffers)) taken.add(name);
    const p = packedConv(convNest(k.body[at]!)!, k.buffers, taken);
    if (!p) return k;
    return { ...k, body: [...k.body.slice(0, at), ...p.stmts, ...k.body.slice(at + 1)], extern: p.work };
  },
};
