// Products in WebAssembly SIMD (f32, large enough to pay): the packProducts
// pass rewrites a product nest (ts/productNest.ts), or one inside the batch
// loops of a batched matmul (attention's [B, H, S, D] products), into
// JavaScript loops that pack op(A) into panels of 4 rows and op(B) into panels
// of 8 columns in the kernel's scratch memory (computing any elementwise
// prologue on the way; a transposed operand is read by its strides, so the
// packing is the only copy), an extern product that the module's 4×8 SIMD
// tiles compute C with, and a JavaScript loop that applies the epilogue to
// each element of C and stores the kernel's results. A batched product packs
// every batch (one after another in scratch) before one call computes them all.
import type { Expr, ExternWork, Loop, Stmt } from "../../kernel/kir.js";
import { addE, bin, let_, load, mapExpr, mulE, num, parallel, reduce, ref, set, store } from "../../kernel/kir.js";
import { matmulDims } from "../../fusion/matmulFrame.js";
import type { Value } from "../../fusion/program.js";
import type { Precision } from "../../lower/lower.js";
import type { KernelPass } from "../target.js";
import type { ProductNest } from "../ts/productNest.js";
import { declaredNames, freshNames, productNest } from "../ts/productNest.js";
import { foldIndex } from "../../kernel/affine.js";
import { TILE_COLS, TILE_ROWS } from "./wasm.js";
import type { WasmProduct } from "./wasm.js";

/** Products with fewer multiply-adds than this stay in JavaScript (the packing would not pay). */
export const WASM_MIN_WORK = 16384;

/** Whether a matmul's product runs in WebAssembly (its operands then packed, each element computed once): fusion's cost model asks. */
export function packsOperands(mm: Value, precision: Precision): boolean {
  const d = matmulDims(mm);
  return precision === "f32" && d.batch.reduce((a, b) => a * b, 1) * d.m * d.n * d.k >= WASM_MIN_WORK;
}

/** The numeric fields of a product, as `ExternWork.data` holds them. */
const PRODUCT_FIELDS = ["m", "n", "rowPanels", "colPanels", "k", "a", "b", "c"] as const;

/** The fields of a batched product besides those. */
const BATCH_FIELDS = ["batches", "aBatch", "bBatch", "cBatch"] as const;

/** The product a kernel's extern work describes, exported under the kernel's name. */
export function productOf(name: string, work: ExternWork): WasmProduct {
  const missing = PRODUCT_FIELDS.filter((f) => work.data[f] === undefined);
  if (missing.length) throw new Error(`wasm: kernel ${name}'s extern work has no ${missing.join(", ")}`);
  const d = work.data as Readonly<Record<(typeof PRODUCT_FIELDS)[number] | (typeof BATCH_FIELDS)[number], number>>;
  const batched = work.data["batches"] !== undefined;
  if (batched && BATCH_FIELDS.some((f) => work.data[f] === undefined)) throw new Error(`wasm: kernel ${name}'s batched extern work lacks one of ${BATCH_FIELDS.join(", ")}`);
  return {
    name,
    m: d.m,
    n: d.n,
    rowPanels: d.rowPanels,
    colPanels: d.colPanels,
    k: d.k,
    a: d.a,
    b: d.b,
    c: d.c,
    ...(batched ? { batches: d.batches, aBatch: d.aBatch, bBatch: d.bBatch, cBatch: d.cBatch } : {}),
  };
}

/** The range a product's export takes whole: its batches, or (unbatched) its column panels. */
export const productRange = (p: WasmProduct): number => p.batches ?? p.colPanels;

/** Multiply-adds of a product. */
export const productWork = (p: WasmProduct): number => (p.batches ?? 1) * p.m * p.n * p.k;

/** The names an expression reads. */
export function varsOf(e: Expr, into = new Set<string>()): Set<string> {
  mapExpr(e, (x) => (x.k === "var" && into.add(x.name), x));
  return into;
}

/** The lets of `stmts` that `roots` depend on (transitively), in order; undefined when one of them reads a name in `banned`. */
function slice(stmts: readonly Stmt[], roots: Set<string>, banned: ReadonlySet<string>): Stmt[] | undefined {
  const need = new Set(roots);
  const out: Stmt[] = [];
  for (let i = stmts.length - 1; i >= 0; i--) {
    const s = stmts[i]!;
    if (s.k !== "let" || !need.has(s.name)) continue;
    out.unshift(s);
    varsOf(s.init, need);
  }
  for (const v of need) if (banned.has(v)) return undefined;
  return out;
}

/** A statement list with variables replaced (`to`), its lets renamed by `fresh` and its indexes folded. */
function copy(stmts: readonly Stmt[], to: ReadonlyMap<string, Expr>, fresh: (base: string) => string, inlineLoads = false): { stmts: Stmt[]; names: Map<string, Expr> } {
  const names = new Map(to);
  // loads' indexes folded once their variables are replaced
  const ex = (e: Expr) => mapExpr(e, (x) => (x.k === "var" ? (names.get(x.name) ?? x) : x.k === "load" ? { ...x, index: foldIndex(x.index) } : x));
  const out: Stmt[] = [];
  for (const s of stmts) {
    if (s.k === "let") {
      const init = ex(s.init);
      // (in a packing loop, which stores only to scratch) a value that is only a load or a number is used where it is read
      if (inlineLoads && (init.k === "load" || init.k === "num")) {
        names.set(s.name, init);
        continue;
      }
      const name = fresh(s.name);
      names.set(s.name, ref(name));
      out.push(let_(name, init));
    } else if (s.k === "store") {
      out.push({ ...s, index: foldIndex(ex(s.index)), value: ex(s.value) });
    } else if (s.k === "comment") {
      out.push(s);
    } else {
      throw new Error(`packProducts: a ${s.k} statement in a product's operand or epilogue`);
    }
  }
  return { stmts: out, names };
}

/**
 * Packs one operand: for each panel (loop `u`) and each p, the `width` values
 * of the operand at panel offsets 0.. go to consecutive scratch floats from
 * `at` (zeros past its edge, `limit` rows or columns). `value` is the operand
 * (an expression over `lets`) as a function of `along` (its row or column) and `p`.
 */
function pack(
  scratch: string,
  lets: readonly Stmt[],
  value: Expr,
  along: string,
  p: string,
  width: number,
  limit: number,
  k: number,
  at: Expr,
  u: string,
  fresh: (base: string) => string,
): Stmt[] {
  const full = Math.floor(limit / width);
  const rest = limit - full * width;
  const part = (from: number, to: number, live: number): Stmt => {
    const body: Stmt[] = [];
    const stores: Stmt[] = [];
    for (let q = 0; q < width; q++) {
      let v: Expr = num(0);
      if (q < live) {
        const c = copy(lets, new Map([[along, addE(mulE(ref(u), width), q)]]), fresh, true);
        body.push(...c.stmts);
        v = mapExpr(value, (x) => (x.k === "var" ? (c.names.get(x.name) ?? x) : x));
      }
      stores.push(store(scratch, addE(mulE(ref(u), k * width), addE(mulE(ref(p), width), addE(at, q))), v));
    }
    return parallel(u, to, [parallel(p, k, [...body, ...stores])], from);
  };
  const stmts: Stmt[] = [];
  if (full > 0) stmts.push(part(0, full, width));
  if (rest > 0) stmts.push(part(full, full + 1, rest));
  return stmts;
}

/** The batch loops of a batched matmul around its product nest (each parallel, from 0, with one statement), or undefined. */
function batchedNest(s: Stmt): { loops: Loop[]; nest: ProductNest } | undefined {
  const loops: Loop[] = [];
  for (let at = s; ; at = at.body[0]!) {
    const nest = productNest(at);
    if (nest) return { loops, nest };
    if (at.k !== "for" || at.mark !== "parallel" || at.from !== 0 || at.body.length !== 1) return undefined;
    loops.push(at);
  }
}

/** `body` inside copies of the batch loops. */
const inBatches = (loops: readonly Loop[], body: Stmt[]): Stmt[] => loops.reduceRight((inner, l) => [parallel(l.v, l.to, inner)], body);

/** The batch index (row-major over the batch loops), as an expression of their variables. */
function batchIndex(loops: readonly Loop[]): Expr {
  let e: Expr = num(0);
  let stride = 1;
  for (let x = loops.length - 1; x >= 0; x--) {
    e = addE(e, mulE(ref(loops[x]!.v), stride));
    stride *= loops[x]!.to;
  }
  return e;
}

/** A product nest (inside its batch loops, if any) with its product in WebAssembly (see the file header), or undefined when it does not qualify. */
function packed(nest: ProductNest, loops: readonly Loop[], taken: Set<string>): { stmts: Stmt[]; work: ExternWork } | undefined {
  const [m, n, k] = [nest.rows.to, nest.cols.to, nest.sum.to];
  const batches = loops.reduce((a, l) => a * l.to, 1);
  if (batches * m * n * k < WASM_MIN_WORK || nest.sum.from !== 0) return undefined;
  const [i, j, p] = [nest.rows.v, nest.cols.v, nest.sum.v];
  const lets = [...nest.pre, ...nest.sum.body];
  // A depends on (batch, i, p) only, B on (batch, p, j) only, neither on the accumulator
  const aLets = slice(lets, varsOf(nest.a), new Set([j, nest.acc]));
  const bLets = slice(lets, varsOf(nest.b), new Set([i, nest.acc]));
  if (!aLets || !bLets) return undefined;
  const fresh = freshNames(taken);
  const scratch = fresh("W");
  const u = fresh("u");
  // scratch floats: packed A, packed B, then C (row-major, whole tiles), each batch after the one before
  const { rowPanels, colPanels, width, aSize, bSize, cSize } = productPanels(m, n, k);
  const a = 0;
  const b = a + batches * aSize;
  const c = b + batches * bSize;
  const batched = loops.length > 0;
  const product = {
    m,
    n,
    rowPanels,
    colPanels,
    k,
    a: 4 * a,
    b: 4 * b,
    c: 4 * c,
    ...(batched ? { batches, aBatch: 4 * aSize, bBatch: 4 * bSize, cBatch: 4 * cSize } : {}),
  };
  const t = batchIndex(loops);
  const at = (base: number, size: number): Expr => (batched ? addE(mulE(t, size), base) : num(base));
  // the epilogue reads C from scratch: the lets before the p loop that it needs (but the accumulator's), then the statements after it
  const product_ = load(scratch, addE(mulE(ref(i), width), addE(ref(j), at(c, cSize))));
  const roots = new Set<string>();
  for (const s of nest.post) (s.k === "let" ? [s.init] : s.k === "store" ? [s.index, s.value] : s.k === "set" ? [s.value] : []).forEach((e) => varsOf(e, roots));
  const preLets = slice(nest.pre.filter((s) => !(s.k === "let" && s.name === nest.acc)), roots, new Set([p]));
  if (!preLets) return undefined;
  const epilogue = copy([...preLets, ...nest.post], new Map([[nest.acc, product_]]), (x) => x);
  const each = batched ? ` for each of ${batches} batches` : "";
  const stmts: Stmt[] = [
    { k: "comment", text: `op(A) into panels of ${TILE_ROWS} rows, op(B) into panels of ${TILE_COLS} columns, in the scratch memory ${scratch}${each}` },
    ...inBatches(loops, pack(scratch, aLets, nest.a, i, p, TILE_ROWS, m, k, at(a, aSize), u, fresh)),
    ...inBatches(loops, pack(scratch, bLets, nest.b, j, p, TILE_COLS, n, k, at(b, bSize), u, fresh)),
    { k: "comment", text: `C[${m}×${n}] over ${k}${each} in WebAssembly SIMD (${TILE_ROWS}×${TILE_COLS} tiles), then the epilogue per element` },
    { k: "extern", call: "product", reference: inBatches(loops, referenceProduct(product, scratch, batched ? t : undefined)) },
    ...inBatches(loops, [parallel(i, m, [parallel(j, n, epilogue.stmts)])]),
  ];
  return { stmts, work: { data: product, scratch: { name: scratch, size: scratchFloats(product) } } };
}

/** The packing pass of the wasm backend: large f32 products of matmuls, batched or not, run in WebAssembly SIMD. */
export const packProducts: KernelPass = {
  name: "packProducts",
  run: (k, cx) => {
    if (cx.precision !== "f32" || k.extern) return k;
    // a product nest at the kernel's top level, or inside its batch loops
    const at = k.body.findIndex((s) => batchedNest(s) !== undefined);
    if (at < 0) return k;
    const taken = declaredNames(k.body);
    for (const name of Object.keys(k.buffers)) taken.add(name);
    const { loops, nest } = batchedNest(k.body[at]!)!;
    const p = packed(nest, loops, taken);
    if (!p) return k;
    return { ...k, body: [...k.body.slice(0, at), ...p.stmts, ...k.body.slice(at + 1)], extern: p.work };
  },
};

/**
 * What the WebAssembly product computes, as kernel IR over the packed panels
 * (never run: it documents the call and lets cost counters see the product):
 * C[i, j] = Σ_p A[i, p]·B[p, j] for i < m, j < n (in batch `t`, an
 * expression of the batch loops around it, when batched).
 */
export function referenceProduct(x: Omit<WasmProduct, "name">, scratch: string, t?: Expr): Stmt[] {
  const [i, j, p] = [ref("i"), ref("j"), ref("p")];
  const base = (at: number, stride: number | undefined): Expr => (t && stride ? addE(mulE(t, stride / 4), at / 4) : num(at / 4));
  const aAt = addE(base(x.a, x.aBatch), addE(mulE(addE(mulE(bin("idiv", i, TILE_ROWS), x.k), p), TILE_ROWS), bin("mod", i, TILE_ROWS)));
  const bAt = addE(base(x.b, x.bBatch), addE(mulE(addE(mulE(bin("idiv", j, TILE_COLS), x.k), p), TILE_COLS), bin("mod", j, TILE_COLS)));
  return [
    parallel("i", x.m, [
      parallel("j", x.n, [
        let_("acc", 0),
        reduce("p", x.k, [set("acc", bin("+", ref("acc"), bin("*", load(scratch, aAt), load(scratch, bAt))))]),
        store(scratch, addE(base(x.c, x.cBatch), addE(mulE(i, x.colPanels * TILE_COLS), j)), ref("acc")),
      ]),
    ]),
  ];
}

/** The panels of an m×n product over k, the width of its C and the floats of its packed A, packed B and C (one batch's). */
export function productPanels(m: number, n: number, k: number): { rowPanels: number; colPanels: number; width: number; aSize: number; bSize: number; cSize: number } {
  const rowPanels = Math.ceil(m / TILE_ROWS);
  const colPanels = Math.ceil(n / TILE_COLS);
  const width = colPanels * TILE_COLS;
  return { rowPanels, colPanels, width, aSize: rowPanels * TILE_ROWS * k, bSize: width * k, cSize: rowPanels * TILE_ROWS * width };
}

/** Floats of scratch a product needs (for the module's memory): every batch's. */
export function scratchFloats(p: { rowPanels: number; colPanels: number; k: number; batches?: number }): number {
  return (p.batches ?? 1) * (p.rowPanels * TILE_ROWS * p.k + p.colPanels * TILE_COLS * p.k + p.rowPanels * TILE_ROWS * p.colPanels * TILE_COLS);
}
