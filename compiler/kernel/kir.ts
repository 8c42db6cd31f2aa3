// The kernel IR: loop nests over flat buffers with index expressions. It knows
// nothing of the target language; emitters (TypeScript, gpu.js) lower it.
//
// A kernel reads input buffers named `in0`, `in1`, ... and writes `out` (and,
// for multi-output kernels, `out1`, ...). Indexes are element offsets into
// the buffer; a load or store marked `abs` indexes its arena directly, and the
// variable `@base:<buf>` is the arena offset of buffer <buf> (so a pointer can
// carry it, and an inner loop adds no offset per access).

export type UnOp =
  | "neg" | "exp" | "log" | "log1p" | "sqrt" | "rsqrt" | "abs" | "sign" | "sin" | "cos" | "tanh"
  | "sigmoid" | "floor" | "not" | "toInt" | "fround";
export type BinOp =
  | "+" | "-" | "*" | "/" | "max" | "min" | "pow" | "<" | "<=" | ">" | ">=" | "==" | "!=" | "&&" | "||"
  | "idiv" | "mod";

export type Expr =
  | { readonly k: "num"; readonly v: number }
  | { readonly k: "var"; readonly name: string }
  | { readonly k: "load"; readonly buf: string; readonly index: Expr; readonly abs?: boolean }
  | { readonly k: "un"; readonly op: UnOp; readonly a: Expr }
  | { readonly k: "bin"; readonly op: BinOp; readonly a: Expr; readonly b: Expr }
  | { readonly k: "sel"; readonly c: Expr; readonly a: Expr; readonly b: Expr };

export type Stmt =
  /** for (v = from; v < to; v++) body */
  | { readonly k: "for"; readonly v: string; readonly from: number; readonly to: number; readonly body: readonly Stmt[] }
  /** A mutable local. */
  | { readonly k: "let"; readonly name: string; readonly init: Expr }
  | { readonly k: "set"; readonly name: string; readonly value: Expr }
  /** buf[index] = value, or buf[index] += value with `add`; `abs`: index is an arena offset. */
  | { readonly k: "store"; readonly buf: string; readonly index: Expr; readonly value: Expr; readonly add?: boolean; readonly abs?: boolean }
  | { readonly k: "if"; readonly c: Expr; readonly then: readonly Stmt[]; readonly else?: readonly Stmt[] }
  | { readonly k: "comment"; readonly text: string };

// ---- builders: short names, because lowerings read like the maths ----

export const num = (v: number): Expr => ({ k: "num", v });
export const ref = (name: string): Expr => ({ k: "var", name });
export const load = (buf: string, index: Expr | number): Expr => ({ k: "load", buf, index: typeof index === "number" ? num(index) : index });
/** The arena offset of buffer `buf`, as a variable the emitter replaces by a literal. */
export const baseOf = (buf: string): Expr => ({ k: "var", name: `@base:${buf}` });
/** The prefix of `baseOf` variables. */
export const BASE_PREFIX = "@base:";
export const un = (op: UnOp, a: Expr): Expr => ({ k: "un", op, a });
export const bin = (op: BinOp, a: Expr | number, b: Expr | number): Expr => ({
  k: "bin",
  op,
  a: typeof a === "number" ? num(a) : a,
  b: typeof b === "number" ? num(b) : b,
});
export const sel = (c: Expr, a: Expr | number, b: Expr | number): Expr => ({
  k: "sel",
  c,
  a: typeof a === "number" ? num(a) : a,
  b: typeof b === "number" ? num(b) : b,
});
export const addE = (a: Expr | number, b: Expr | number): Expr => simplifyAdd(a, b);
export const mulE = (a: Expr | number, b: Expr | number): Expr => simplifyMul(a, b);

export const loop = (v: string, to: number, body: readonly Stmt[], from = 0): Stmt => ({ k: "for", v, from, to, body });
export const let_ = (name: string, init: Expr | number): Stmt => ({ k: "let", name, init: typeof init === "number" ? num(init) : init });
export const set = (name: string, value: Expr): Stmt => ({ k: "set", name, value });
export const store = (buf: string, index: Expr | number, value: Expr, add = false): Stmt => ({
  k: "store",
  buf,
  index: typeof index === "number" ? num(index) : index,
  value,
  ...(add ? { add } : {}),
});
export const if_ = (c: Expr, then: readonly Stmt[], els?: readonly Stmt[]): Stmt => ({ k: "if", c, then, ...(els ? { else: els } : {}) });

function asExpr(e: Expr | number): Expr {
  return typeof e === "number" ? num(e) : e;
}

/** a + b, folding constants and zeros so index expressions stay short. */
function simplifyAdd(a: Expr | number, b: Expr | number): Expr {
  const x = asExpr(a);
  const y = asExpr(b);
  if (x.k === "num" && y.k === "num") return num(x.v + y.v);
  if (x.k === "num" && x.v === 0) return y;
  if (y.k === "num" && y.v === 0) return x;
  return bin("+", x, y);
}

/** a * b, folding constants, ones and zeros (index arithmetic only: integers, no NaN). */
function simplifyMul(a: Expr | number, b: Expr | number): Expr {
  const x = asExpr(a);
  const y = asExpr(b);
  if (x.k === "num" && y.k === "num") return num(x.v * y.v);
  if ((x.k === "num" && x.v === 0) || (y.k === "num" && y.v === 0)) return num(0);
  if (x.k === "num" && x.v === 1) return y;
  if (y.k === "num" && y.v === 1) return x;
  return bin("*", x, y);
}

/** Σ vars[i] * strides[i] (+ base): a row-major index expression. */
export function affine(vars: readonly string[], strides: readonly number[], base = 0): Expr {
  let e: Expr = num(base);
  vars.forEach((v, i) => {
    e = addE(e, mulE(ref(v), strides[i]!));
  });
  return e;
}

// ---- walkers: the one place that knows which fields hold expressions ----

/**
 * `e` rebuilt bottom-up: each child is mapped first, then `f` is called on the
 * node with its mapped children. What `f` returns is not walked again.
 */
export function mapExpr(e: Expr, f: (e: Expr) => Expr): Expr {
  switch (e.k) {
    case "num": case "var": return f(e);
    case "load": return f({ ...e, index: mapExpr(e.index, f) });
    case "un": return f({ ...e, a: mapExpr(e.a, f) });
    case "bin": return f({ ...e, a: mapExpr(e.a, f), b: mapExpr(e.b, f) });
    case "sel": return f({ ...e, c: mapExpr(e.c, f), a: mapExpr(e.a, f), b: mapExpr(e.b, f) });
    default: return e satisfies never;
  }
}

/** `stmts` rebuilt with every expression in them (loop bodies and branches included) mapped by `mapExpr(_, f)`. */
export function mapExprs(stmts: readonly Stmt[], f: (e: Expr) => Expr): Stmt[] {
  const ex = (e: Expr): Expr => mapExpr(e, f);
  const st = (s: Stmt): Stmt => {
    switch (s.k) {
      case "for": return { ...s, body: s.body.map(st) };
      case "let": return { ...s, init: ex(s.init) };
      case "set": return { ...s, value: ex(s.value) };
      case "store": return { ...s, index: ex(s.index), value: ex(s.value) };
      case "if": return { ...s, c: ex(s.c), then: s.then.map(st), ...(s.else ? { else: s.else.map(st) } : {}) };
      case "comment": return s;
      default: return s satisfies never;
    }
  };
  return stmts.map(st);
}

/** Callbacks of `visitKir`; either may be left out. */
export interface KirVisitor {
  readonly stmt?: (s: Stmt) => void;
  readonly expr?: (e: Expr) => void;
}

/**
 * Visits `stmts` in order without changing them. Each statement is passed to
 * `stmt` before anything inside it; then every node of its expressions is
 * passed to `expr`, parents before children (a store's index before its
 * value, an `if`'s condition before its branches); then its nested statements.
 */
export function visitKir(stmts: readonly Stmt[], v: KirVisitor): void {
  const ex = (e: Expr): void => {
    v.expr?.(e);
    switch (e.k) {
      case "num": case "var": return;
      case "load": return ex(e.index);
      case "un": return ex(e.a);
      case "bin": ex(e.a); return ex(e.b);
      case "sel": ex(e.c); ex(e.a); return ex(e.b);
      default: return e satisfies never;
    }
  };
  const st = (s: Stmt): void => {
    v.stmt?.(s);
    switch (s.k) {
      case "for": return s.body.forEach(st);
      case "let": return ex(s.init);
      case "set": return ex(s.value);
      case "store": ex(s.index); return ex(s.value);
      case "if": ex(s.c); s.then.forEach(st); return s.else?.forEach(st);
      case "comment": return;
      default: return s satisfies never;
    }
  };
  stmts.forEach(st);
}
