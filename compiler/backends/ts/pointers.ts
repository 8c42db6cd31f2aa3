// Pointer walks: in the tiles of a product (tile.ts), every access whose index
// is affine in loop variables (and locals computed from them) reads or writes
// through a pointer into the arena instead: the accesses of one buffer with
// equal coefficients share one pointer, set once before the statements that
// use it (its buffer's base included) and, in the p loop, advanced by a
// constant after each iteration. The inner loop then does no index
// arithmetic beyond one add per operand stream. Values do not change.
import type { Expr, Loop, Stmt } from "../../kernel/kir.js";
import { addE, baseOf, bin, let_, mapExpr, mulE, num, ref, set, visitKir } from "../../kernel/kir.js";
import type { KernelPass } from "../target.js";
import type { Affine } from "../../kernel/affine.js";
import { affineOf } from "../../kernel/affine.js";
import { declaredNames } from "./productNest.js";

/** Whether a statement is a product's accumulation: x = x + a * b. */
const accumulates = (s: Stmt | undefined): boolean =>
  s?.k === "set" && s.value.k === "bin" && s.value.op === "+" && s.value.a.k === "var" && s.value.a.name === s.name && s.value.b.k === "bin" && s.value.b.op === "*";

/** A reduce loop that sums a product (the p loop of a tile). */
const isSum = (s: Stmt): s is Loop => s.k === "for" && s.mark === "reduce" && accumulates(s.body.at(-1)) && s.body.every((x) => x.k === "let" || x.k === "set" || x.k === "store" || x.k === "comment");

interface Family {
  readonly name: string;
  readonly buf: string;
  readonly terms: ReadonlyMap<string, number>;
  k: number;
  /** The first statement (index in its list) that uses it. */
  readonly first: number;
}

/** Names pointers `q0`, `o1`, ... that no kernel variable has. */
class PointerNames {
  private n = 0;
  constructor(private readonly taken: Set<string>) {}
  next(hint: string): string {
    let name = `${hint}${this.n++}`;
    while (this.taken.has(name)) name = `${hint}${this.n++}`;
    this.taken.add(name);
    return name;
  }
}

/**
 * The accesses of `stmts` through pointers: `allowed(i)` is the set of
 * variables an index of statement i may use; with `step`, the pointers of a
 * loop body over `step.v` are set before it and advanced at its end.
 */
function walk(stmts: readonly Stmt[], allowed: (i: number) => ReadonlySet<string>, names: PointerNames, hint: string, step?: Loop): { init: Stmt[]; body: Stmt[] } {
  const families = new Map<string, Family>();
  const key = (buf: string, a: Affine) => `${buf}|${[...a.terms].filter(([, c]) => c !== 0).sort(([x], [y]) => (x < y ? -1 : 1)).map(([v, c]) => `${v}:${c}`).join(",")}`;
  const accessOf = (buf: string, index: Expr, i: number): { fam: string; a: Affine } | undefined => {
    const ok = allowed(i);
    const a = affineOf(index, (v) => ok.has(v));
    return a ? { fam: key(buf, a), a } : undefined;
  };
  // first: the families and their smallest constants
  stmts.forEach((s, i) => {
    const note = (buf: string, index: Expr) => {
      const acc = accessOf(buf, index, i);
      if (!acc) return;
      const f = families.get(acc.fam);
      if (!f) families.set(acc.fam, { name: names.next(hint), buf, terms: acc.a.terms, k: acc.a.k, first: i });
      else f.k = Math.min(f.k, acc.a.k);
    };
    visitKir([s], {
      stmt: (x) => void (x.k === "store" && !x.abs && note(x.buf, x.index)),
      expr: (e) => void (e.k === "load" && !e.abs && note(e.buf, e.index)),
    });
  });
  if (!families.size) return { init: [], body: [...stmts] };
  const at = (buf: string, index: Expr, i: number): Expr | undefined => {
    const acc = accessOf(buf, index, i);
    if (!acc) return undefined;
    const f = families.get(acc.fam)!;
    return addE(ref(f.name), acc.a.k - f.k);
  };
  const origin = (f: Family): Expr => {
    let e: Expr = baseOf(f.buf);
    for (const [v, c] of f.terms) if (c !== 0 && v !== step?.v) e = addE(e, mulE(ref(v), c));
    const from = step ? (f.terms.get(step.v) ?? 0) * step.from : 0;
    return addE(e, f.k + from);
  };
  const body: Stmt[] = [];
  const init: Stmt[] = [];
  const byFirst = new Map<number, Family[]>();
  for (const f of families.values()) byFirst.set(f.first, [...(byFirst.get(f.first) ?? []), f]);
  stmts.forEach((s, i) => {
    const inits = (byFirst.get(i) ?? []).map((f) => let_(f.name, origin(f)));
    if (step) init.push(...inits);
    else body.push(...inits);
    const ex = (e: Expr): Expr => mapExpr(e, (x) => (x.k === "load" && !x.abs ? ((y) => (y ? { ...x, index: y, abs: true } : x))(at(x.buf, x.index, i)) : x));
    const rewriteStmt = (x: Stmt): Stmt => {
      switch (x.k) {
        case "let": return { ...x, init: ex(x.init) };
        case "set": return { ...x, value: ex(x.value) };
        case "store": {
          const index = x.abs ? undefined : at(x.buf, x.index, i);
          return { ...x, value: ex(x.value), ...(index ? { index, abs: true } : {}) };
        }
        default: return x;
      }
    };
    body.push(rewriteStmt(s));
  });
  if (step) {
    for (const f of families.values()) {
      const c = f.terms.get(step.v) ?? 0;
      if (c !== 0) body.push(set(f.name, bin("+", ref(f.name), num(c))));
    }
  }
  return { init, body };
}

/** Whether a let's value is an index: affine in `allowed`. */
const indexLet = (s: Stmt, allowed: ReadonlySet<string>, mutable: ReadonlySet<string>): boolean => s.k === "let" && !mutable.has(s.name) && affineOf(s.init, (v) => allowed.has(v)) !== undefined;

/** A block that holds a product's p loop: its runs of statements and the p loop through pointers. */
function tileBlock(stmts: readonly Stmt[], outer: ReadonlySet<string>, mutable: ReadonlySet<string>, names: PointerNames): Stmt[] {
  const out: Stmt[] = [];
  const allowed = new Set(outer);
  let run: Stmt[] = [];
  let runAllowed: Set<string>[] = [];
  const flush = () => {
    const w = walk(run, (i) => runAllowed[i]!, names, "o");
    out.push(...w.body);
    run = [];
    runAllowed = [];
  };
  for (const s of stmts) {
    if (isSum(s)) {
      flush();
      const inside = declaredNames(s.body);
      const inner = new Set([...allowed, s.v].filter((v) => !inside.has(v)));
      const w = walk(s.body, () => inner, names, "q", s);
      out.push(...w.init, { ...s, body: w.body });
    } else {
      run.push(s);
      runAllowed.push(new Set(allowed));
      if (indexLet(s, allowed, mutable)) allowed.add((s as Stmt & { k: "let" }).name);
    }
  }
  flush();
  return out;
}

/** The pointer-walk pass of the TypeScript backends (see the file header). */
export const pointerWalks: KernelPass = {
  name: "pointerWalks",
  run: (k) => {
    const mutable = new Set<string>();
    visitKir(k.body, { stmt: (s) => void (s.k === "set" && mutable.add(s.name)) });
    const names = new PointerNames(declaredNames(k.body));
    let found = false;
    const block = (stmts: readonly Stmt[], outer: ReadonlySet<string>): Stmt[] => {
      if (stmts.some(isSum)) {
        found = true;
        return tileBlock(stmts, outer, mutable, names);
      }
      const allowed = new Set(outer);
      return stmts.map((s) => {
        if (s.k === "for") return { ...s, body: block(s.body, new Set([...allowed, s.v])) };
        if (indexLet(s, allowed, mutable)) allowed.add((s as Stmt & { k: "let" }).name);
        return s;
      });
    };
    const body = block(k.body, new Set());
    return found ? { ...k, body } : k;
  },
};
