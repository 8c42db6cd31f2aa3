// The fused matmul kernel with its product in WebAssembly SIMD (f32, no
// batch axes, large enough to pay): JavaScript loops pack op(A) into panels of
// 4 rows and op(B) into panels of 8 columns in the kernel's scratch memory
// (computing any elementwise prologue on the way, and reading a transposed
// operand by its strides: the packing is the only copy), the module's 4×8
// SIMD tiles compute C, and a JavaScript loop applies the epilogue to each
// element of C and stores the kernel's results.
import type { Stmt } from "../../kernel/kir.js";
import { addE, bin, let_, load, mulE, num, parallel, reduce, ref, set, store } from "../../kernel/kir.js";
import type { Affine } from "../../fusion/coords.js";
import { axisOf, constant, identity } from "../../fusion/coords.js";
import type { FusedKernel } from "../../lower/fusedKernel.js";
import type { KernelContext } from "../../lower/fusedKernel.js";
import { formIndex, layOut } from "../../lower/fusedKernel.js";
import type { ExternWork } from "../../kernel/kir.js";
import { Forms, Inliner, Scope, substitute } from "../../lower/inline.js";
import { frameAxes, matmulDims, matmulOperandCoords } from "../../fusion/matmulFrame.js";
import type { Value } from "../../fusion/program.js";
import type { Precision } from "../../lower/lower.js";
import { canonical, flatIndex } from "../../fusion/coords.js";
import { TILE_COLS, TILE_ROWS } from "./wasm.js";
import type { WasmProduct } from "./wasm.js";
import { commentText } from "../../lower/names.js";

/** Products with fewer multiply-adds than this stay in JavaScript (the packing would not pay). */
export const WASM_MIN_WORK = 16384;

/** Whether a matmul's product runs in WebAssembly (its operands then packed, each element computed once). */
export function packsOperands(mm: Value, precision: Precision): boolean {
  const d = matmulDims(mm);
  return precision === "f32" && d.batch.length === 0 && d.m * d.n * d.k >= WASM_MIN_WORK;
}

/** The numeric fields of a product, as `ExternWork.data` holds them. */
const PRODUCT_FIELDS = ["m", "n", "rowPanels", "colPanels", "k", "a", "b", "c"] as const;

/** The product a kernel's extern work describes, exported under the kernel's name. */
export function productOf(name: string, work: ExternWork): WasmProduct {
  const missing = PRODUCT_FIELDS.filter((f) => work.data[f] === undefined);
  if (missing.length) throw new Error(`wasm: kernel ${name}'s extern work has no ${missing.join(", ")}`);
  const d = work.data as Readonly<Record<(typeof PRODUCT_FIELDS)[number], number>>;
  return { name, m: d.m, n: d.n, rowPanels: d.rowPanels, colPanels: d.colPanels, k: d.k, a: d.a, b: d.b, c: d.c };
}

/** Coordinates over one frame rewritten over another: frame axis a becomes `map[a]`. */
function remap(coords: readonly Affine[], map: readonly Affine[], n: number): Affine[] {
  return coords.map((x) => {
    const c = new Array<number>(n).fill(0);
    let k = x.k;
    x.c.forEach((v, a) => {
      if (!v) return;
      const m = map[a]!;
      m.c.forEach((w, b) => (c[b]! += v * w));
      k += v * m.k;
    });
    return { c, k };
  });
}

/**
 * Packs one operand: for each panel (loop `u`) and each p (loop `p`), the
 * `width` values at panel offsets 0.. go to consecutive scratch floats from
 * `at` (zeros past the operand's edge, `limit` rows or columns).
 */
function pack(
  cx: KernelContext,
  scratch: string,
  operand: Value,
  coords: readonly Affine[],
  axes: { readonly along: number; readonly p: number },
  width: number,
  limit: number,
  k: number,
  at: number,
): { stmts: Stmt[]; computed: Value[] } {
  const n = cx.group.n;
  const full = Math.floor(limit / width);
  const rest = limit - full * width;
  const computed: Value[] = [];
  const part = (from: number, to: number, live: number): Stmt => {
    const forms = new Forms();
    const inl = new Inliner(cx.env(2, forms));
    const scope = new Scope([true, true]);
    const stores: Stmt[] = [];
    for (let q = 0; q < width; q++) {
      // panel u, offset q: the operand's row (or column) width·u + q, at p
      const map = Array.from({ length: n }, (_, a) => (a === axes.along ? { c: [width, 0], k: q } : a === axes.p ? axisOf(2, 1) : constant(2)));
      const value = q < live ? inl.value(operand, remap(coords, map, 2), scope) : num(0);
      stores.push(store(scratch, addE(mulE(ref("u"), k * width), addE(mulE(ref("p"), width), at + q)), value));
    }
    computed.push(...inl.computed);
    const index = (i: number) => addE(addE(mulE(ref("u"), forms.list[i]!.c[0]!), mulE(ref("p"), forms.list[i]!.c[1]!)), forms.list[i]!.k);
    return parallel("u", to, [parallel("p", k, substitute([...scope.stmts, ...stores], index))], from);
  };
  const stmts: Stmt[] = [];
  if (full > 0) stmts.push(part(0, full, width));
  if (rest > 0) stmts.push(part(full, full + 1, rest));
  return { stmts, computed };
}

/** The matmul kernel with a WebAssembly product (see the file header). */
export function wasmMatmulKernel(cx: KernelContext): FusedKernel {
  const g = cx.group;
  const mm = g.members[0]!;
  const d = matmulDims(mm);
  const f = frameAxes(mm);
  const [ca, cb] = matmulOperandCoords(mm, g.n);
  const rowPanels = Math.ceil(d.m / TILE_ROWS);
  const colPanels = Math.ceil(d.n / TILE_COLS);
  const width = colPanels * TILE_COLS;
  // scratch floats: packed A, packed B, then C (row-major, whole tiles)
  const a = 0;
  const b = a + rowPanels * TILE_ROWS * d.k;
  const c = b + colPanels * TILE_COLS * d.k;
  const scratch = cx.scratchName("W");
  const packA = pack(cx, scratch, mm.inputs[0]!, ca, { along: f.i, p: f.p }, TILE_ROWS, d.m, d.k, a);
  const packB = pack(cx, scratch, mm.inputs[1]!, cb, { along: f.j, p: f.p }, TILE_COLS, d.n, d.k, b);
  const shape = (v: Value, t: boolean) => `${cx.nameOf(v.node)}${t ? "ᵀ" : ""}`;
  const what = `${d.m}×${d.n} = ${shape(mm.inputs[0]!, d.transposeA)}·${shape(mm.inputs[1]!, d.transposeB)} over ${d.k}`;
  const prologue: Stmt[] = [
    { k: "comment", text: `op(A) into panels of ${TILE_ROWS} rows, op(B) into panels of ${TILE_COLS} columns, in the scratch memory W` },
    ...packA.stmts,
    ...packB.stmts,
    { k: "comment", text: commentText(`C[${what}] in WebAssembly SIMD (${TILE_ROWS}×${TILE_COLS} tiles), then the epilogue per element`) },
  ];
  // the epilogue reads the product from scratch
  const at: Affine = { c: Array.from({ length: g.n }, (_, x) => (x === f.i ? width : x === f.j ? 1 : 0)), k: c };
  const inl = new Inliner(cx.env(), (v) => (v === mm ? load(scratch, cx.forms.ref(at)) : undefined));
  inl.computed.add(mm);
  const scope = new Scope(Array.from({ length: g.n }, (_, x) => x !== f.p));
  const coords = identity(g.n).slice(0, mm.node.rank);
  const stores: Stmt[] = [];
  for (const v of g.members) {
    const e = v === mm ? inl.value(mm, coords, scope) : inl.compute(v, coords, scope);
    if (cx.plan.stored.has(v)) {
      const where = canonical(coords, v.node.shape, g.n);
      stores.push(store(cx.bufferName(v), cx.forms.ref(flatIndex(where, v.node.shape, g.n)), e));
    }
  }
  const lo = layOut([...mm.node.shape, d.k], [f.i, f.j], cx.forms.list, "e");
  const epilogue = substitute(lo.wrap([...scope.stmts, ...stores], "parallel"), (i) => formIndex(cx.forms.list, i, [lo]));
  for (const v of [...packA.computed, ...packB.computed]) inl.computed.add(v);
  const product = { m: d.m, n: d.n, rowPanels, colPanels, k: d.k, a: 4 * a, b: 4 * b, c: 4 * c };
  return {
    body: [...prologue, { k: "extern", call: "product", reference: referenceProduct(product, scratch) }, ...epilogue],
    buffers: cx.buffers,
    inplace: [],
    computed: inl.computed,
    extern: { data: product, scratch: { name: scratch, size: scratchFloats(product) } },
  };
}

/**
 * What the WebAssembly product computes, as kernel IR over the packed panels
 * (never run: it documents the call and lets cost counters see the product):
 * C[i, j] = Σ_p A[i, p]·B[p, j] for i < m, j < n.
 */
function referenceProduct(x: Omit<WasmProduct, "name">, scratch: string): Stmt[] {
  const [i, j, p] = [ref("i"), ref("j"), ref("p")];
  const aAt = addE(x.a / 4, addE(mulE(addE(mulE(bin("idiv", i, TILE_ROWS), x.k), p), TILE_ROWS), bin("mod", i, TILE_ROWS)));
  const bAt = addE(x.b / 4, addE(mulE(addE(mulE(bin("idiv", j, TILE_COLS), x.k), p), TILE_COLS), bin("mod", j, TILE_COLS)));
  return [
    parallel("i", x.m, [
      parallel("j", x.n, [
        let_("acc", 0),
        reduce("p", x.k, [set("acc", bin("+", ref("acc"), bin("*", load(scratch, aAt), load(scratch, bAt))))]),
        store(scratch, addE(x.c / 4, addE(mulE(i, x.colPanels * TILE_COLS), j)), ref("acc")),
      ]),
    ]),
  ];
}

/** Floats of scratch a product needs (for the module's memory). */
export function scratchFloats(p: { rowPanels: number; colPanels: number; k: number }): number {
  return p.rowPanels * TILE_ROWS * p.k + p.colPanels * TILE_COLS * p.k + p.rowPanels * TILE_ROWS * p.colPanels * TILE_COLS;
}

