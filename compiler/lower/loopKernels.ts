// Fused pointwise and reduction kernels. A pointwise kernel is one loop nest
// computing each element of its members once. A reduction kernel loops over
// the kept positions; inside, one inner loop per reduction accumulates in a
// local, values at the kept position follow as epilogues, stored elementwise
// members get a pass of their own, and a total over all kept positions is
// accumulated across the outer loop. When the last axis is kept, columns are
// reduced several at a time (as many as the target asks) with one accumulator each (contiguous reads).
import type { Expr, LoopMark, Stmt } from "../kernel/kir.js";
import { bin, let_, mulE, num, parallel, ref, set, store } from "../kernel/kir.js";
import type { Coord } from "../kernel/coords.js";
import { canonical, flatIndex, identity } from "../kernel/coords.js";
import type { FusedKernel, KernelContext, LaidOut } from "./fusedKernel.js";
import { formIndex, layOut } from "./fusedKernel.js";
import { nativeCoords } from "../fusion/groups.js";
import { Inliner, Scope, substitute } from "./inline.js";
import type { Value } from "../fusion/program.js";


/**
 * Loops over the reduced axes whose variables and sizes are laid out only once
 * every form is known: each placeholder (known by identity) stands for the
 * inner loops around its body, marked as it says.
 */
class Pending {
  private readonly marks = new Map<Stmt, LoopMark>();

  /** A placeholder for inner loops marked `mark` around `body`. */
  loops(body: readonly Stmt[], mark: LoopMark): Stmt {
    const s: Stmt = { k: "for", v: "", from: 0, to: 0, mark, body };
    this.marks.set(s, mark);
    return s;
  }

  /** `stmts` with every placeholder replaced by `wrap(body, mark)`. */
  expand(stmts: readonly Stmt[], wrap: (body: readonly Stmt[], mark: LoopMark) => Stmt[]): Stmt[] {
    return stmts.flatMap((s): Stmt[] => {
      if (s.k === "for") {
        const body = this.expand(s.body, wrap);
        const mark = this.marks.get(s);
        return mark ? wrap(body, mark) : [{ ...s, body }];
      }
      if (s.k === "if") return [{ ...s, then: this.expand(s.then, wrap), ...(s.else ? { else: this.expand(s.else, wrap) } : {}) }];
      return [s];
    });
  }
}

/** The stored index of a member at its native coordinates. */
function storeAt(cx: KernelContext, v: Value, coords: readonly Coord[], value: Expr): Stmt {
  return store(cx.bufferName(v), cx.forms.ref(flatIndex(canonical(coords, v.node.shape, cx.group.n), v.node.shape, cx.group.n)), value);
}

/** One loop nest over the group's shape: every member computed, then every stored member written. */
export function pointwiseKernel(cx: KernelContext): FusedKernel {
  const g = cx.group;
  const inl = new Inliner(cx.env());
  const scope = new Scope(g.shape.map(() => true));
  const coords = identity(g.n);
  const stores: Stmt[] = [];
  const outputs: string[] = [];
  for (const v of g.members) {
    const e = inl.compute(v, coords, scope);
    if (cx.plan.stored.has(v)) {
      stores.push(storeAt(cx, v, coords, e));
      outputs.push(cx.bufferName(v));
    }
  }
  // every value of an element is computed before any is stored: in-place safe
  const body = [...scope.stmts, ...stores];
  const lo = layOut(g.shape, g.shape.map((_, a) => a), cx.forms.list, "i");
  return {
    body: substitute(lo.wrap(body, "parallel"), (i) => formIndex(cx.forms.list, i, [lo])),
    buffers: cx.buffers,
    inplace: cx.inplacePairs(body, outputs),
    computed: inl.computed,
  };
}

type Combine = (acc: Expr, x: Expr) => Expr;

function reduction(v: Value): { init: number; combine: Combine } {
  switch (v.node.op) {
    case "sum": return { init: 0, combine: (a, x) => bin("+", a, x) };
    case "max": return { init: -Infinity, combine: (a, x) => bin("max", a, x) };
    case "min": return { init: Infinity, combine: (a, x) => bin("min", a, x) };
    default: throw new Error(`reduce kernel: ${v.node.op} is not a reduction`);
  }
}

/** Whether the column strategy applies: one kept axis, the last, one reduction, no elementwise pass, no total. */
function columnWise(cx: KernelContext, columns: number): boolean {
  if (columns < 2) return false;
  const g = cx.group;
  const kept = g.shape.map((_, a) => a).filter((a) => !g.axes.includes(a));
  if (kept.length !== 1 || kept[0] !== g.n - 1 || g.total || g.shape[g.n - 1]! < 2) return false;
  const stages = g.members.filter((v) => v.kind === "reduce");
  return stages.length === 1 && g.members.every((v) => v.kind === "reduce" || cx.plan.levels.get(v) === "k");
}

/** A reduction kernel (see the file header); `columns`: the target's width of the column strategy (below 2: none). */
export function reduceKernel(cx: KernelContext, columns: number): FusedKernel {
  return columnWise(cx, columns) ? columnKernel(cx, columns) : rowKernel(cx);
}

function rowKernel(cx: KernelContext): FusedKernel {
  const g = cx.group;
  const kept = g.shape.map((_, a) => a).filter((a) => !g.axes.includes(a));
  const locals = new Map<Value, Expr>();
  const pending = new Pending();
  const inl = new Inliner(cx.env(), (v) => locals.get(v));
  const root = new Scope(g.shape.map(() => false));
  const outer = new Scope(g.shape.map((_, a) => kept.includes(a)), root);
  const all = g.shape.map(() => true);
  const xCoords = identity(g.n);
  for (const v of g.members) {
    if (v === g.total) continue;
    const level = cx.plan.levels.get(v);
    if (v.kind === "reduce") {
      const { init, combine } = reduction(v);
      const acc = inl.fresh(`acc_${cx.nameOf(v.node)}`);
      cx.locals.set(acc, v);
      outer.stmts.push(let_(acc, init));
      const inner = new Scope(all, outer);
      const x = inl.value(v.inputs[0]!, xCoords, inner);
      inner.stmts.push(set(acc, combine(ref(acc), x)));
      outer.stmts.push(pending.loops(inner.stmts, "reduce"));
      locals.set(v, ref(acc));
      inl.computed.add(v);
      if (cx.plan.stored.has(v)) outer.stmts.push(storeAt(cx, v, nativeCoords(g, v)!, ref(acc)));
    } else if (level === "k") {
      const at = nativeCoords(g, v, "k")!;
      const e = inl.compute(v, at, outer);
      locals.set(v, e);
      if (cx.plan.stored.has(v)) outer.stmts.push(storeAt(cx, v, at, e));
    } else if (level === "x" && cx.plan.stored.has(v)) {
      // a pass over the reduced axes writes the member; later members read it back
      const pass = new Scope(all, outer);
      const e = inl.compute(v, xCoords, pass);
      pass.stmts.push(storeAt(cx, v, xCoords, e));
      outer.stmts.push(pending.loops(pass.stmts, "parallel"));
      cx.written.add(v);
    }
  }
  let acc: string | undefined;
  if (g.total) {
    const t = g.total;
    const { init, combine } = reduction(t);
    acc = inl.fresh(`acc_${cx.nameOf(t.node)}`);
    cx.locals.set(acc, t);
    root.stmts.push(let_(acc, init));
    const x = inl.value(t.inputs[0]!, nativeCoords(g, t.inputs[0]!, "k")!, outer);
    outer.stmts.push(set(acc, combine(ref(acc), x)));
  }
  const before = root.stmts.length;
  if (g.total && acc) {
    const t = g.total;
    locals.set(t, ref(acc));
    inl.computed.add(t);
    if (cx.plan.stored.has(t)) root.stmts.push(storeAt(cx, t, nativeCoords(g, t, "t")!, ref(acc)));
    for (const v of g.members) {
      if (cx.plan.levels.get(v) !== "t" || v === t) continue;
      const at = nativeCoords(g, v, "t")!;
      const e = inl.compute(v, at, root);
      locals.set(v, e);
      if (cx.plan.stored.has(v)) root.stmts.push(storeAt(cx, v, at, e));
    }
  }
  const forms = cx.forms.list;
  const outerLo = layOut(g.shape, kept, forms, "i");
  const innerLo = layOut(g.shape, g.axes, forms, "r");
  // a total accumulates across the kept positions: their loops are a reduction then
  const loops = outerLo.wrap(pending.expand(outer.stmts, (b, mark) => innerLo.wrap(b, mark)), g.total ? "reduce" : "parallel");
  const body = [...root.stmts.slice(0, before), ...loops, ...root.stmts.slice(before)];
  return {
    body: substitute(body, (i) => formIndex(forms, i, [outerLo, innerLo])),
    buffers: cx.buffers,
    inplace: [],
    computed: inl.computed,
  };
}

/** Coordinates with the kept (last) axis shifted by `c`. */
function shifted(coords: readonly Coord[], axis: number, c: number): Coord[] {
  return coords.map((x) => (x.c[axis] ? { c: x.c, k: x.k + x.c[axis]! * c } : x));
}

function columnKernel(cx: KernelContext, columns: number): FusedKernel {
  const g = cx.group;
  const last = g.n - 1;
  const stage = g.members.find((v) => v.kind === "reduce")!;
  const { init, combine } = reduction(stage);
  const width = g.shape[last]!;
  const full = Math.floor(width / columns);
  const rest = width - full * columns;
  // inside a block, the reduction at column c (a constant offset on the last axis) is accumulator `acc${c}`
  let cols = 0;
  const locals = (v: Value, coords: readonly Coord[]) => {
    if (v !== stage) return undefined;
    const c = coords.find((x) => x.c[last] !== 0)?.k ?? 0;
    return c < cols ? ref(`acc${c}`) : undefined;
  };
  const inl = new Inliner(cx.env(), locals);
  const bound = (kept: boolean) => g.shape.map((_, a) => (a === last ? kept : false));
  const parts: Stmt[] = [];
  const pending = new Pending();
  const block = (width: number, from: number, count: number): Stmt => {
    cols = width;
    const root = new Scope(bound(true));
    const inner = new Scope(g.shape.map(() => true), root);
    const kCoords = nativeCoords(g, stage)!;
    for (let c = 0; c < cols; c++) {
      cx.locals.set(`acc${c}`, stage);
      root.stmts.push(let_(`acc${c}`, init));
    }
    for (let c = 0; c < cols; c++) {
      const x = inl.value(stage.inputs[0]!, shifted(identity(g.n), last, c), inner);
      inner.stmts.push(set(`acc${c}`, combine(ref(`acc${c}`), x)));
    }
    root.stmts.push(pending.loops(inner.stmts, "reduce"));
    for (let c = 0; c < cols; c++) {
      const at = shifted(kCoords, last, c);
      if (cx.plan.stored.has(stage)) root.stmts.push(storeAt(cx, stage, at, ref(`acc${c}`)));
      for (const v of g.members) {
        if (v === stage) continue;
        const vc = shifted(nativeCoords(g, v, "k")!, last, c);
        const e = inl.compute(v, vc, root);
        if (cx.plan.stored.has(v)) root.stmts.push(storeAt(cx, v, vc, e));
      }
    }
    cols = 0;
    inl.computed.add(stage);
    return parallel("jb", count, [let_("j0", bin("+", num(from), mulE(ref("jb"), width))), ...root.stmts]);
  };
  if (full > 0) parts.push(block(columns, 0, full));
  if (rest > 0) parts.push(block(rest, full * columns, 1));
  const forms = cx.forms.list;
  const innerLo = layOut(g.shape, g.axes, forms, "r");
  const column: LaidOut = { wrap: (b) => [...b], part: (i) => mulE(ref("j0"), forms[i]!.c[last]!) };
  const body = pending.expand(parts, (b, mark) => innerLo.wrap(b, mark));
  return {
    body: substitute(body, (i) => formIndex(forms, i, [column, innerLo])),
    buffers: cx.buffers,
    inplace: [],
    computed: inl.computed,
  };
}
