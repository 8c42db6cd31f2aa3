// The loop nest of a matrix product as lowering writes it (lower/matmulKernel.ts),
// recognized by its shape alone, for the passes that tile, re-address or pack it:
//   for i parallel { for j parallel {
//     let acc = 0; ...; for p reduce { ...; acc = acc + a * b }; ... } }
// where every other statement of the j and p bodies is a let, set, store or comment.
import type { Expr, Loop, Stmt } from "../../kernel/kir.js";
import { visitKir } from "../../kernel/kir.js";

/** A product nest's parts. */
export interface ProductNest {
  /** The loop over rows of C (from 0). */
  readonly rows: Loop;
  /** The loop over columns of C (from 0), the rows loop's only statement. */
  readonly cols: Loop;
  /** The columns loop's body before the p loop (the accumulator's `let` among them). */
  readonly pre: readonly Stmt[];
  /** The summation loop. */
  readonly sum: Loop;
  /** The columns loop's body after the p loop (the epilogue). */
  readonly post: readonly Stmt[];
  /** The accumulator local. */
  readonly acc: string;
  /** The factors of the accumulated product: acc = acc + a * b. */
  readonly a: Expr;
  readonly b: Expr;
}

const simple = (s: Stmt): boolean => s.k === "let" || s.k === "set" || s.k === "store" || s.k === "comment";

/** `s` as a product nest, or undefined. */
export function productNest(s: Stmt): ProductNest | undefined {
  if (s.k !== "for" || s.mark !== "parallel" || s.from !== 0 || s.body.length !== 1) return undefined;
  const rows = s;
  const cols = rows.body[0]!;
  if (cols.k !== "for" || cols.mark !== "parallel" || cols.from !== 0) return undefined;
  const loops = cols.body.filter((x) => !simple(x));
  const sum = loops[0];
  if (loops.length !== 1 || sum?.k !== "for" || sum.mark !== "reduce" || !sum.body.every(simple)) return undefined;
  const last = sum.body.at(-1);
  if (last?.k !== "set") return undefined;
  const acc = last.name;
  const v = last.value;
  if (v.k !== "bin" || v.op !== "+" || v.a.k !== "var" || v.a.name !== acc || v.b.k !== "bin" || v.b.op !== "*") return undefined;
  const at = cols.body.indexOf(sum);
  const pre = cols.body.slice(0, at);
  if (!pre.some((x) => x.k === "let" && x.name === acc && x.init.k === "num" && x.init.v === 0)) return undefined;
  // the accumulator is set only there
  let sets = 0;
  visitKir(cols.body, { stmt: (x) => void (x.k === "set" && x.name === acc && sets++) });
  if (sets !== 1) return undefined;
  return { rows, cols, pre, sum, post: cols.body.slice(at + 1), acc, a: v.b.a, b: v.b.b };
}

/** Every loop variable and local a statement list declares. */
export function declaredNames(stmts: readonly Stmt[]): Set<string> {
  const names = new Set<string>();
  visitKir(stmts, {
    stmt: (x) => {
      if (x.k === "for") names.add(x.v);
      else if (x.k === "let") names.add(x.name);
    },
  });
  return names;
}

/** Hands out names not declared in a kernel: `base`, else `base_2`, `base_3`, ... */
export function freshNames(taken: Set<string>): (base: string) => string {
  return (base) => {
    let name = base;
    for (let n = 2; taken.has(name); n++) name = `${base}_${n}`;
    taken.add(name);
    return name;
  };
}

/**
 * Replaces, bottom-up, every statement `s` of `stmts` (at any depth, loops'
 * bodies included) for which `f` gives a replacement list.
 */
export function replaceStmts(stmts: readonly Stmt[], f: (s: Stmt) => readonly Stmt[] | undefined): Stmt[] {
  return stmts.flatMap((s): readonly Stmt[] => {
    const own = f(s);
    if (own) return own;
    if (s.k === "for") return [{ ...s, body: replaceStmts(s.body, f) }];
    if (s.k === "if") return [{ ...s, then: replaceStmts(s.then, f), ...(s.else ? { else: replaceStmts(s.else, f) } : {}) }];
    return [s];
  });
}
