// The fused matmul kernel in its reference form: C = op(A)·op(B), each
// C[i, j] summed over p in order in its own local (as the interpreter sums),
// with the epilogue (bias, activation, backward mask, ...) applied to it
// before it is stored. Operands are computed inline where fusion put them
// (values that do not change with p are computed once per element, before
// the p loop). A backend's passes tile, pack or re-address it.
//
// Its shape, which those passes recognize:
//   for t0.. parallel { for i parallel { for j parallel {
//     let acc = 0; (operand values constant in p); for p reduce {
//       (operand values); let a = A(i, p); let b = B(p, j); acc = acc + a * b }
//     (epilogue); stores } } }
//
// Batch axes that every index walks as one run with the rows (each buffer's
// stride on batch axis t is its stride on i times the rows below t: A[B, S, D]
// times an unbatched B[D, N], its epilogue and C) are folded into i here, so
// x[B, S, D]·W[D, N] is one product of B·S rows and not B products of S rows
// that each read W again. It is done at this level and not as a reshape in
// the graph because a reshape between the product and its epilogue (bias,
// activation, residual) would store C and run the epilogue as a kernel of its
// own; each C[i, j] still sums over p in the same order, so nothing rounds
// differently. Genuinely batched products (attention's q·kᵀ: B is batched)
// and a transposed A keep their batch loops.
import type { Expr, Stmt } from "../kernel/kir.js";
import { addE, bin, let_, mulE, num, parallel, reduce, ref, set } from "../kernel/kir.js";
import { axisOf, canonical, flatIndex } from "../kernel/coords.js";
import type { Coord } from "../kernel/coords.js";
import type { FusedKernel, KernelContext } from "./fusedKernel.js";
import { Inliner, Scope, substitute } from "./inline.js";
import { frameAxes, matmulDims, matmulOperandCoords } from "../fusion/matmulFrame.js";
import { foldRows, nest } from "../kernel/loops.js";

/** The loop variables and locals of the reference form, which backend passes look for. */
export const MATMUL_NAMES = { i: "i", j: "j", p: "p", acc: "acc", a: "a", b: "b" } as const;

/** A fused matmul kernel in its reference form (see the file header). */
export function matmulKernel(cx: KernelContext): FusedKernel {
  const g = cx.group;
  const mm = g.members[0]!;
  const d = matmulDims(mm);
  const f = frameAxes(mm);
  const [ca, cb] = matmulOperandCoords(mm, g.n);
  const N = MATMUL_NAMES;
  const inl = new Inliner(cx.env(), (v) => (v === mm ? ref(N.acc) : undefined));
  inl.computed.add(mm);
  // --check-numerics: the accumulator holds the product's element
  cx.locals.set(N.acc, mm);
  const bound = (p: boolean) => Array.from({ length: g.n }, (_, a) => a !== f.p || p);
  const outer = new Scope(bound(false));
  const inner = new Scope(bound(true), outer);
  // each operand element in a local of its own
  const named = (e: Expr, name: string): Expr => {
    inner.stmts.push(let_(name, e));
    return ref(name);
  };
  const a = named(inl.value(mm.inputs[0]!, ca, inner), N.a);
  const b = named(inl.value(mm.inputs[1]!, cb, inner), N.b);
  inner.stmts.push(set(N.acc, bin("+", ref(N.acc), bin("*", a, b))));
  const hoisted = outer.stmts.length;
  // the epilogue: every member at (i, j), stored ones written
  const at = mm.node.shape.map((_, x) => axisOf(g.n, x));
  const stores: Stmt[] = [];
  for (const v of g.members) {
    const e = v === mm ? ref(N.acc) : inl.compute(v, at, outer);
    if (cx.plan.stored.has(v)) {
      const coords = canonical(at, v.node.shape, g.n);
      stores.push({ k: "store", buf: cx.bufferName(v), index: cx.forms.ref(flatIndex(coords, v.node.shape, g.n)), value: e });
    }
  }
  const element: Stmt[] = [
    let_(N.acc, 0),
    ...outer.stmts.slice(0, hoisted),
    reduce(N.p, d.k, inner.stmts),
    ...outer.stmts.slice(hoisted),
    ...stores,
  ];
  // frame axes: batch t0.., then i, j, p; the batch axes from `kept` on are folded into i's rows
  const forms = cx.forms.list;
  const { kept, rows } = foldRows(d.batch, d.m, forms.map((x) => x.c.slice(0, d.batch.length)), forms.map((x) => x.c[f.i]!));
  const vars = [...d.batch.map((_, x) => `t${x}`), N.i, N.j, N.p];
  const index = (form: Coord): Expr => form.c.reduce<Expr>((e, c, x) => (isFolded(x, kept, f.i) ? e : addE(e, mulE(ref(vars[x]!), c))), num(form.k));
  const body =
    d.m > 0 && d.n > 0
      ? nest(d.batch.slice(0, kept), "t", () => [parallel(N.i, rows, [parallel(N.j, d.n, substitute(element, (i) => index(forms[i]!)))])])
      : [];
  return { body, buffers: cx.buffers, inplace: [], computed: inl.computed };
}

/** Whether frame axis `x` is a batch axis folded into the rows (batch axes `kept`.. up to the row axis `i`). */
const isFolded = (x: number, kept: number, i: number): boolean => x >= kept && x < i;
