// The kernel IR: loop nests over flat buffers with index expressions. It knows
// nothing of the target language; each backend lowers it (compiler/backends/).
//
// A kernel reads and writes buffers it names (`in0`, `out`, or names derived
// from graph nodes); indexes count elements of the buffer. Every value is a
// JavaScript number (an IEEE-754 double) while a kernel runs; a buffer's
// element type rounds it when it is stored (f32 arenas round to nearest even,
// i32 arenas wrap modulo 2^32, the bfloat16 arena H rounds as `bf16` does). A backend must give the same results as these
// semantics, written down per operator in `UN_OPS` and `BIN_OPS` below.
//
// Loops carry a mark that says how their iterations may be ordered (`LoopMark`),
// so that a backend may run `parallel` loops on threads or GPU lanes without
// analysing the body; the verifier (verify.ts) checks the marks it can.

/** Unary operators (semantics in `UN_OPS`). */
export type UnOp =
  | "neg" | "exp" | "log" | "log1p" | "sqrt" | "rsqrt" | "abs" | "sign" | "sin" | "cos" | "tanh"
  | "sigmoid" | "floor" | "not" | "toInt" | "fround" | "bf16";
/** Binary operators (semantics in `BIN_OPS`). */
export type BinOp =
  | "+" | "-" | "*" | "/" | "max" | "min" | "pow" | "<" | "<=" | ">" | ">=" | "==" | "!=" | "&&" | "||"
  | "idiv" | "mod";

/** A table with one entry per unary operator: a backend's table that misses one fails to type-check. */
export type UnOpTable<T> = { readonly [K in UnOp]: T };
/** A table with one entry per binary operator. */
export type BinOpTable<T> = { readonly [K in BinOp]: T };

/**
 * What each unary operator computes, in doubles. Booleans are the numbers 0
 * and 1; a condition is true when it is not 0 (NaN counts as true).
 */
export const UN_OPS: UnOpTable<string> = {
  neg: "-a",
  exp: "e^a (correctly rounded or within 1 ulp, as Math.exp)",
  log: "natural logarithm; NaN below 0, -Infinity at 0",
  log1p: "log(1 + a), accurate near 0",
  sqrt: "square root; NaN below 0",
  rsqrt: "1 / sqrt(a)",
  abs: "|a|",
  sign: "-1, 0 or 1 (-0 and NaN pass through)",
  sin: "sine of a in radians",
  cos: "cosine of a in radians",
  tanh: "hyperbolic tangent",
  sigmoid: "1 / (1 + e^-a)",
  floor: "the largest integer ≤ a",
  not: "1 when a is 0, else 0",
  toInt: "a truncated toward zero and wrapped to a signed 32-bit integer (JavaScript's a | 0; NaN and ±Infinity give 0)",
  fround: "a rounded to the nearest float32, ties to even (Math.fround): how an f32 value is kept in a local",
  bf16: "a rounded to float32, then to the nearest bfloat16 (8 significant bits), ties to even: how arena H stores a value",
};

/** What each binary operator computes, in doubles. Comparisons and logic give 0 or 1. */
export const BIN_OPS: BinOpTable<string> = {
  "+": "a + b",
  "-": "a - b",
  "*": "a · b",
  "/": "a / b (IEEE: ±Infinity or NaN on division by 0)",
  max: "the larger of a and b; NaN when either is NaN",
  min: "the smaller of a and b; NaN when either is NaN",
  pow: "a^b as Math.pow",
  "<": "1 when a < b, else 0",
  "<=": "1 when a ≤ b, else 0",
  ">": "1 when a > b, else 0",
  ">=": "1 when a ≥ b, else 0",
  "==": "1 when a = b, else 0 (NaN ≠ NaN)",
  "!=": "1 when a ≠ b, else 0",
  "&&": "1 when a and b are both true, else 0",
  "||": "1 when a or b is true, else 0",
  idiv: "floor(a / b): division rounded toward -Infinity (so -7 idiv 2 = -4)",
  mod: "a - b · trunc(a / b): the remainder takes the sign of a (JavaScript's %, so -7 mod 2 = -1); index arithmetic uses it on a ≥ 0 only",
};

/**
 * How a loop's iterations may run:
 * - `parallel`: in any order or at once; no iteration reads what another writes,
 *   and each writes its own elements;
 * - `reduce`: in any order, but iterations combine into a value or element they
 *   share (a local set across iterations, an accumulating store);
 * - `serial`: in order, as written.
 */
export type LoopMark = "parallel" | "reduce" | "serial";

export type Expr =
  | { readonly k: "num"; readonly v: number }
  /** A loop variable or a local (`let`). */
  | { readonly k: "var"; readonly name: string }
  /** The arena offset of buffer `buf` (a backend that addresses the arena directly replaces it by a literal). */
  | { readonly k: "base"; readonly buf: string }
  /** Placeholder of an index form while a fused kernel is built (lower/inline.ts); none is left in a finished kernel. */
  | { readonly k: "form"; readonly form: number }
  /** buf[index]; `abs`: index is an offset into the buffer's arena, not into the buffer. */
  | { readonly k: "load"; readonly buf: string; readonly index: Expr; readonly abs?: boolean }
  | { readonly k: "un"; readonly op: UnOp; readonly a: Expr }
  | { readonly k: "bin"; readonly op: BinOp; readonly a: Expr; readonly b: Expr }
  /** c ? a : b, evaluating only the branch taken. */
  | { readonly k: "sel"; readonly c: Expr; readonly a: Expr; readonly b: Expr };

export type Stmt =
  /** for (v = from; v < to; v++) body; `vectorizable`: a parallel innermost loop whose accesses step by 0 or 1. */
  | {
      readonly k: "for";
      readonly v: string;
      readonly from: number;
      readonly to: number;
      readonly mark: LoopMark;
      readonly vectorizable?: boolean;
      readonly body: readonly Stmt[];
    }
  /** A mutable local, visible to the statements after it in the same block. */
  | { readonly k: "let"; readonly name: string; readonly init: Expr }
  | { readonly k: "set"; readonly name: string; readonly value: Expr }
  /**
   * buf[index] = value; with `add`, buf[index] += value where the element is
   * this loop nest's own (an accumulation over a `reduce` loop). `abs` as in a load.
   */
  | { readonly k: "store"; readonly buf: string; readonly index: Expr; readonly value: Expr; readonly add?: boolean; readonly abs?: boolean }
  /**
   * buf[index] += value at a data-dependent index (scatter-add, gradients of
   * gathers, max-pool): two iterations may hit one element, so a parallel
   * backend must make it atomic or rewrite it as a gather.
   */
  | { readonly k: "scatterAdd"; readonly buf: string; readonly index: Expr; readonly value: Expr }
  | { readonly k: "if"; readonly c: Expr; readonly then: readonly Stmt[]; readonly else?: readonly Stmt[] }
  /**
   * Work a backend pass handed to code of its own (`call` names it for that
   * backend's emitter). `reference` says what it computes, as kernel IR that
   * printers, the verifier and cost counters read; it is never run.
   */
  | { readonly k: "extern"; readonly call: string; readonly reference: readonly Stmt[] }
  | { readonly k: "comment"; readonly text: string };

/**
 * Work a backend pass hands to code of its own (an `extern` statement in the
 * kernel body): numbers that backend's emitter reads back, and the kernel's
 * private scratch buffer, if it needs one.
 */
export interface ExternWork {
  readonly data: Readonly<Record<string, number>>;
  readonly scratch?: { readonly name: string; readonly size: number };
}

/** A store statement. */
export type Store = Stmt & { readonly k: "store" };
/** A loop statement. */
export type Loop = Stmt & { readonly k: "for" };

// ---- builders: short names, because lowerings read like the maths ----

export const num = (v: number): Expr => ({ k: "num", v });
export const ref = (name: string): Expr => ({ k: "var", name });
export const load = (buf: string, index: Expr | number): Expr => ({ k: "load", buf, index: typeof index === "number" ? num(index) : index });
/** The arena offset of buffer `buf`. */
export const baseOf = (buf: string): Expr => ({ k: "base", buf });
/** The placeholder of index form `i`. */
export const formRef = (i: number): Expr => ({ k: "form", form: i });
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

/** A loop over v in [from, to); `serial` unless marked otherwise. */
export const loop = (v: string, to: number, body: readonly Stmt[], from = 0, mark: LoopMark = "serial"): Loop => ({ k: "for", v, from, to, mark, body });
/** A loop whose iterations are independent. */
export const parallel = (v: string, to: number, body: readonly Stmt[], from = 0): Loop => loop(v, to, body, from, "parallel");
/** A loop whose iterations combine into a shared local or element. */
export const reduce = (v: string, to: number, body: readonly Stmt[], from = 0): Loop => loop(v, to, body, from, "reduce");
export const let_ = (name: string, init: Expr | number): Stmt => ({ k: "let", name, init: typeof init === "number" ? num(init) : init });
export const set = (name: string, value: Expr): Stmt => ({ k: "set", name, value });
export const store = (buf: string, index: Expr | number, value: Expr, add = false): Stmt => ({
  k: "store",
  buf,
  index: typeof index === "number" ? num(index) : index,
  value,
  ...(add ? { add } : {}),
});
export const scatterAdd = (buf: string, index: Expr, value: Expr): Stmt => ({ k: "scatterAdd", buf, index, value });
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
    case "num": case "var": case "base": case "form": return f(e);
    case "load": return f({ ...e, index: mapExpr(e.index, f) });
    case "un": return f({ ...e, a: mapExpr(e.a, f) });
    case "bin": return f({ ...e, a: mapExpr(e.a, f), b: mapExpr(e.b, f) });
    case "sel": return f({ ...e, c: mapExpr(e.c, f), a: mapExpr(e.a, f), b: mapExpr(e.b, f) });
    default: return e satisfies never;
  }
}

/**
 * `stmts` rebuilt with every expression in them (loop bodies and branches
 * included, an extern's reference too) mapped by `mapExpr(_, f)`; `onStmt`,
 * if given, then sees each rebuilt statement and may replace it.
 */
export function mapExprs(stmts: readonly Stmt[], f: (e: Expr) => Expr, onStmt: (s: Stmt) => Stmt = (s) => s): Stmt[] {
  const ex = (e: Expr): Expr => mapExpr(e, f);
  const st = (s: Stmt): Stmt => {
    switch (s.k) {
      case "for": return onStmt({ ...s, body: s.body.map(st) });
      case "let": return onStmt({ ...s, init: ex(s.init) });
      case "set": return onStmt({ ...s, value: ex(s.value) });
      case "store": case "scatterAdd": return onStmt({ ...s, index: ex(s.index), value: ex(s.value) });
      case "if": return onStmt({ ...s, c: ex(s.c), then: s.then.map(st), ...(s.else ? { else: s.else.map(st) } : {}) });
      case "extern": return onStmt({ ...s, reference: s.reference.map(st) });
      case "comment": return onStmt(s);
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
 * value, an `if`'s condition before its branches); then its nested statements
 * (an extern's reference included).
 */
export function visitKir(stmts: readonly Stmt[], v: KirVisitor): void {
  const ex = (e: Expr): void => {
    v.expr?.(e);
    switch (e.k) {
      case "num": case "var": case "base": case "form": return;
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
      case "store": case "scatterAdd": ex(s.index); return ex(s.value);
      case "if": ex(s.c); s.then.forEach(st); return s.else?.forEach(st);
      case "extern": return s.reference.forEach(st);
      case "comment": return;
      default: return s satisfies never;
    }
  };
  stmts.forEach(st);
}
