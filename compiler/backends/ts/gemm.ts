// The fused matmul kernel: C = op(A)·op(B) in register tiles of 4×4 outputs,
// each summed over p in order in its own local (as the interpreter sums),
// with the epilogue (bias, activation, backward mask, ...) applied to each
// element before it is stored. A transposed operand is only other strides:
// every operand is read through pointers that step by a constant per p, so
// the inner loop does no index arithmetic beyond one add per operand stream.
import type { Expr, Stmt } from "../../kernel/kir.js";
import { addE, baseOf, bin, let_, mulE, num, parallel, reduce, ref, set } from "../../kernel/kir.js";
import type { Affine } from "../../fusion/coords.js";
import { axisOf, canonical, flatIndex } from "../../fusion/coords.js";
import type { FusedKernel } from "../../lower/fusedKernel.js";
import type { KernelContext } from "../../lower/fusedKernel.js";
import { Inliner, Scope } from "../../lower/inline.js";
import { frameAxes, matmulDims, matmulOperandCoords } from "../../fusion/matmulFrame.js";
import type { Value } from "../../fusion/program.js";
import { nest } from "../../kernel/loops.js";

/** Rows and columns of C that a matmul kernel's register tile covers. */
export const TILE = 4;

/** Coordinates with frame axis `axis` moved by `by`. */
function shift(coords: readonly Affine[], axis: number, by: number): Affine[] {
  return coords.map((x) => (x.c[axis] ? { c: x.c, k: x.k + x.c[axis]! * by } : x));
}

/** A form placeholder's index, or -1. */
const formOf = (e: Expr): number => (e.k === "form" ? e.form : -1);

/** Rewrites expressions and statements bottom-up. */
function rewrite(stmts: readonly Stmt[], onExpr: (e: Expr) => Expr, onStore: (s: Stmt & { k: "store" }) => Stmt): Stmt[] {
  const ex = (e: Expr): Expr => {
    switch (e.k) {
      case "load": return onExpr({ ...e, index: formOf(e.index) >= 0 ? e.index : ex(e.index) });
      case "un": return onExpr({ ...e, a: ex(e.a) });
      case "bin": return onExpr({ ...e, a: ex(e.a), b: ex(e.b) });
      case "sel": return onExpr({ ...e, c: ex(e.c), a: ex(e.a), b: ex(e.b) });
      default: return onExpr(e);
    }
  };
  const st = (x: Stmt): Stmt => {
    switch (x.k) {
      case "for": return { ...x, body: x.body.map(st) };
      case "let": return { ...x, init: ex(x.init) };
      case "set": return { ...x, value: ex(x.value) };
      case "store": return onStore({ ...x, index: formOf(x.index) >= 0 ? x.index : ex(x.index), value: ex(x.value) });
      case "if": return { ...x, c: ex(x.c), then: x.then.map(st), ...(x.else ? { else: x.else.map(st) } : {}) };
      default: return x;
    }
  };
  return stmts.map(st);
}

/**
 * Rewrites the forms of `stmts` as pointers: the accesses of one buffer with
 * equal coefficients share one pointer into the arena (its base included), set
 * before the statements and, with `step`, advanced along that frame axis
 * after them; each access is the pointer plus a constant, with no offset added.
 */
function pointers(
  stmts: readonly Stmt[],
  forms: readonly Affine[],
  base: (c: readonly number[]) => Expr,
  fresh: (hint: string) => string,
  step?: number,
): { init: Stmt[]; body: Stmt[]; advance: Stmt[] } {
  const families = new Map<string, { name: string; buf: string; k: number; c: readonly number[] }>();
  const keyOf = (buf: string, i: number) => `${buf}|${forms[i]!.c.join(",")}`;
  const note = (buf: string, i: number) => {
    const key = keyOf(buf, i);
    const fam = families.get(key);
    const k = forms[i]!.k;
    if (!fam) families.set(key, { name: fresh(step === undefined ? "o" : "q"), buf, k, c: forms[i]!.c });
    else if (k < fam.k) families.set(key, { ...fam, k });
  };
  // first pass: which buffers read or write which forms (other uses of a form are plain numbers)
  rewrite(
    stmts,
    (e) => {
      if (e.k === "load" && formOf(e.index) >= 0) note(e.buf, formOf(e.index));
      else if (formOf(e) >= 0) note("", formOf(e));
      return e;
    },
    (x) => {
      if (x.k === "store" && formOf(x.index) >= 0) note(x.buf, formOf(x.index));
      return x;
    },
  );
  const at = (buf: string, i: number): Expr => {
    const fam = families.get(keyOf(buf, i))!;
    return addE(ref(fam.name), forms[i]!.k - fam.k);
  };
  const body = rewrite(
    stmts,
    (e) => {
      if (e.k === "load" && formOf(e.index) >= 0) return { ...e, index: at(e.buf, formOf(e.index)), abs: true };
      if (formOf(e) >= 0) return at("", formOf(e));
      return e;
    },
    (x) => (x.k === "store" && formOf(x.index) >= 0 ? { ...x, index: at(x.buf, formOf(x.index)), abs: true } : x),
  );
  const init: Stmt[] = [];
  const advance: Stmt[] = [];
  for (const fam of families.values()) {
    const origin = fam.buf ? addE(baseOf(fam.buf), base(fam.c)) : base(fam.c);
    init.push(let_(fam.name, addE(origin, fam.k)));
    if (step !== undefined && fam.c[step]) advance.push(set(fam.name, bin("+", ref(fam.name), num(fam.c[step]!))));
  }
  return { init, body, advance };
}

/** A fused matmul kernel (see the file header). */
export function matmulKernel(cx: KernelContext): FusedKernel {
  const g = cx.group;
  const mm = g.members[0]!;
  const d = matmulDims(mm);
  const f = frameAxes(mm);
  const [ca, cb] = matmulOperandCoords(mm, g.n);
  const rank = mm.node.rank;
  const out = mm.node.shape.map((_, a) => axisOf(g.n, a));
  // in the epilogue, the product at (i + r, j + c) is the accumulator c{r}{c}
  const acc = (r: number, c: number) => `c${r}${c}`;
  const locals = (v: Value, coords: readonly Affine[]) => {
    if (v !== mm) return undefined;
    return ref(acc(coords[rank - 2]!.k, coords[rank - 1]!.k));
  };
  const inl = new Inliner(cx.env(), locals);
  inl.computed.add(mm);
  for (let r = 0; r < TILE; r++) for (let c = 0; c < TILE; c++) cx.locals.set(acc(r, c), mm);
  let counter = 0;
  const fresh = (hint: string) => `${hint}${counter++}`;
  const batchVars = d.batch.map((_, b) => `t${b}`);
  // the base of a form at the tile's first row and column, p = 0
  const base = (c: readonly number[]): Expr => {
    let e: Expr = num(0);
    batchVars.forEach((t, b) => (e = addE(e, mulE(ref(t), c[b]!))));
    e = addE(e, mulE(ref("i"), c[f.i]!));
    return addE(e, mulE(ref("j"), c[f.j]!));
  };
  const bound = (p: boolean) => Array.from({ length: g.n }, (_, a) => a !== f.p || p);

  /** One tile of mr × nr outputs at rows i.., columns j.. */
  const tile = (mr: number, nr: number): Stmt[] => {
    const rows = Array.from({ length: mr }, (_, r) => r);
    const cols = Array.from({ length: nr }, (_, c) => c);
    const tileScope = new Scope(bound(false));
    const pScope = new Scope(bound(true), tileScope);
    const as = rows.map((r) => inl.value(mm.inputs[0]!, shift(ca, f.i, r), pScope));
    const bs = cols.map((c) => inl.value(mm.inputs[1]!, shift(cb, f.j, c), pScope));
    // each operand element is loaded once per p into a local
    const named = (e: Expr, hint: string): Expr => {
      if (e.k === "var") return e;
      const name = `${hint}`;
      pScope.stmts.push(let_(name, e));
      return ref(name);
    };
    const av = as.map((e, r) => named(e, `a${r}`));
    const bv = bs.map((e, c) => named(e, `b${c}`));
    for (const r of rows) for (const c of cols) pScope.stmts.push(set(acc(r, c), bin("+", ref(acc(r, c)), bin("*", av[r]!, bv[c]!))));
    // values of the operands that do not change with p were hoisted out of the p loop
    const hoisted = tileScope.stmts.length;
    const pre = pointers(tileScope.stmts.slice(0, hoisted), cx.forms.list, base, fresh);
    const inner = pointers(pScope.stmts, cx.forms.list, base, fresh, f.p);
    // the epilogue: every member at each element, stored ones written
    const epi: Stmt[] = [];
    for (const r of rows) {
      for (const c of cols) {
        const at = shift(shift(out, f.i, r), f.j, c);
        for (const v of g.members) {
          const e = v === mm ? ref(acc(r, c)) : inl.compute(v, at, tileScope);
          if (cx.plan.stored.has(v)) {
            const coords = canonical(at, v.node.shape, g.n);
            epi.push({ k: "store", buf: cx.bufferName(v), index: cx.forms.ref(flatIndex(coords, v.node.shape, g.n)), value: e });
          }
        }
      }
    }
    const after = pointers([...tileScope.stmts.slice(hoisted), ...epi], cx.forms.list, base, fresh);
    return [
      ...rows.flatMap((r) => cols.map((c) => let_(acc(r, c), 0))),
      ...pre.init,
      ...pre.body,
      ...inner.init,
      reduce("p", d.k, [...inner.body, ...inner.advance]),
      ...after.init,
      ...after.body,
    ];
  };

  const mt = Math.floor(d.m / TILE);
  const nt = Math.floor(d.n / TILE);
  const rm = d.m - mt * TILE;
  const rn = d.n - nt * TILE;
  /** Tiles of one band of rows (from tile row `from` to `to`), full columns then the rest. */
  const band = (mr: number, from: number, to: number): Stmt => {
    const cols: Stmt[] = [];
    if (nt > 0) cols.push(parallel("tj", nt, [let_("j", mulE(ref("tj"), TILE)), ...tile(mr, TILE)]));
    if (rn > 0) cols.push(parallel("tj", nt + 1, [let_("j", mulE(ref("tj"), TILE)), ...tile(mr, rn)], nt));
    return parallel("ti", to, [let_("i", mulE(ref("ti"), TILE)), ...cols], from);
  };
  const bands: Stmt[] = [];
  if (d.m > 0 && d.n > 0) {
    if (mt > 0) bands.push(band(TILE, 0, mt));
    if (rm > 0) bands.push(band(rm, mt, mt + 1));
  }
  const body = nest(d.batch, "t", () => bands);
  return { body, buffers: cx.buffers, inplace: [], computed: inl.computed };
}
