// Row loops in WebAssembly SIMD: a parallel loop whose body works on one row
// (reductions over the last axis and their epilogues: softmax, log-sum-exp,
// layer norm, sum, mean and max; column reductions, a block of columns a
// "row") runs two rows at once, one per f64x2 lane; a loop of one iteration
// (the statements of a total: a sum over a whole buffer) runs in lane 0.
// Each lane runs the row's statements as written, inner loops and reductions
// in their order, so a sum adds its terms in the same order as the
// JavaScript kernel and gives its bits (exp, log, tanh, sigmoid as in
// simdLoops.ts: simdMath's f32 approximations within their bounds). A
// row's element lies at a fixed distance from the next row's, so lane 1
// loads and stores at lane 0's address plus that distance.
import type { Expr, Loop, Stmt } from "../../kernel/kir.js";
import { mapExpr, visitKir } from "../../kernel/kir.js";
import type { Kernel } from "../../lower/schedule.js";
import { BR_IF, END, I32, LOOP, NE, V128, get, i32, set, simd, uleb, vec } from "./wasm.js";
import type { SimdMathFn } from "./simdMath.js";
import { Locals, simdMath } from "./simdMath.js";

/** What the module needs of a row loop: the loop, and the names its code takes as parameters (as SimdNest). */
export interface SimdRows {
  readonly loop: Loop;
  readonly buffers: readonly string[];
  readonly indexVars: readonly string[];
  readonly valueVars: readonly string[];
}

/** Unary and binary operators the module computes (a loop with any other stays in JavaScript). */
export const UNARY: ReadonlySet<string> = new Set(["neg", "abs", "sqrt", "rsqrt", "floor", "fround", "not", "exp", "log", "tanh", "sigmoid"]);
export const BINARY: ReadonlySet<string> = new Set(["+", "-", "*", "/", "max", "min", "<", "<=", ">", ">=", "==", "!=", "&&", "||"]);

/**
 * The coefficient of `v` in an index, when the index is c·v plus terms that do
 * not read v (integer + - · of variables and literals; idiv and mod of
 * v-free terms by positive literals); undefined otherwise.
 */
export function coefficient(e: Expr, v: string): number | undefined {
  switch (e.k) {
    case "num": return Number.isInteger(e.v) ? 0 : undefined;
    case "var": return e.name === v ? 1 : 0;
    case "bin": {
      const [a, b] = [coefficient(e.a, v), coefficient(e.b, v)];
      if (a === undefined || b === undefined) return undefined;
      if (e.op === "+") return a + b;
      if (e.op === "-") return a - b;
      if (e.op === "*") {
        if (a === 0 && b === 0) return 0;
        if (a === 0 && e.a.k === "num") return e.a.v * b;
        if (b === 0 && e.b.k === "num") return e.b.v * a;
        return undefined;
      }
      if ((e.op === "idiv" || e.op === "mod") && a === 0 && b === 0 && e.b.k === "num" && e.b.v > 0) return 0;
      return undefined;
    }
    default: return undefined;
  }
}

/**
 * The names a loop's code takes as parameters (its buffers, and the names from
 * outside it in indexes and in values), collected while checking that the
 * module can compute its accesses and values: f32 buffers of arena F or the
 * kernel's scratch, addressed as `addressed` allows, and the operators above.
 */
export class ParamNames {
  readonly buffers: string[] = [];
  readonly indexVars: string[] = [];
  readonly valueVars: string[] = [];
  constructor(
    private readonly k: Pick<Kernel, "buffers" | "extern">,
    private readonly loopVars: ReadonlySet<string>,
    private readonly lets: ReadonlySet<string>,
    private readonly addressed: (index: Expr, store: boolean) => boolean,
    /** Whether a loop variable may be a value (else only indexes read them). */
    private readonly loopVarValues: boolean,
  ) {}

  private add(list: string[], x: string): void {
    if (!list.includes(x)) list.push(x);
  }

  /** Whether the module can load (or store) buffer `name` at `index`. */
  access(name: string, index: Expr, store: boolean): boolean {
    if (name !== this.k.extern?.scratch?.name && this.k.buffers[name]?.arena !== "F") return false;
    if (!this.addressed(index, store)) return false;
    let ok = true;
    visitKir([{ k: "let", name: "_", init: index }], {
      expr: (x) => {
        if (x.k === "var" && !this.loopVars.has(x.name)) {
          if (this.lets.has(x.name)) ok = false;
          else this.add(this.indexVars, x.name);
        }
        if (x.k !== "num" && x.k !== "var" && x.k !== "bin") ok = false;
      },
    });
    this.add(this.buffers, name);
    return ok;
  }

  /** Whether the module can compute `e`. */
  value(e: Expr): boolean {
    switch (e.k) {
      case "num": return true;
      case "var":
        if (this.loopVars.has(e.name)) return this.loopVarValues;
        if (!this.lets.has(e.name)) this.add(this.valueVars, e.name);
        return true;
      case "load": return !e.abs && this.access(e.buf, e.index, false);
      case "un": return UNARY.has(e.op) && this.value(e.a);
      case "bin": return BINARY.has(e.op) && this.value(e.a) && this.value(e.b);
      case "sel": return this.value(e.c) && this.value(e.a) && this.value(e.b);
      default: return false;
    }
  }
}

/** Iterations of the innermost statements of a row (its loops' trip counts summed over its statements). */
export function rowWork(stmts: readonly Stmt[]): number {
  return Math.max(1, stmts.reduce((n, s) => n + (s.k === "for" ? (s.to - s.from) * rowWork(s.body) : 0), 0));
}

/** Row loops with less work than this stay in JavaScript. */
export const ROWS_MIN_WORK = 256;

/** Whether an expression is integer index arithmetic (literals, names, + - · idiv mod). */
const isIndex = (e: Expr): boolean =>
  e.k === "num" ? Number.isInteger(e.v) : e.k === "var" ? true : e.k === "bin" && ["+", "-", "*", "idiv", "mod"].includes(e.op) && isIndex(e.a) && isIndex(e.b);

/**
 * The loop with the locals that only name an index (`let j0 = 8·jb`, declared
 * once, never set) written out in the indexes of its loads and stores, so that
 * each access is an affine function of the loops (the locals stay, for any
 * value that reads them).
 */
function indexLetsInlined(s: Loop): Loop {
  const declared = new Map<string, number>();
  const setNames = new Set<string>();
  visitKir(s.body, { stmt: (x) => void (x.k === "let" ? declared.set(x.name, (declared.get(x.name) ?? 0) + 1) : x.k === "set" && setNames.add(x.name)) });
  const inline = new Map<string, Expr>();
  const indexOf = (e: Expr): Expr => mapExpr(e, (x) => (x.k === "var" && inline.has(x.name) ? inline.get(x.name)! : x));
  const loads = (e: Expr): Expr => mapExpr(e, (x) => (x.k === "load" ? { ...x, index: indexOf(x.index) } : x));
  const block = (stmts: readonly Stmt[]): Stmt[] =>
    stmts.map((x): Stmt => {
      switch (x.k) {
        case "let":
          if (declared.get(x.name) === 1 && !setNames.has(x.name) && isIndex(x.init)) inline.set(x.name, indexOf(x.init));
          return { ...x, init: loads(x.init) };
        case "set": return { ...x, value: loads(x.value) };
        case "store": return { ...x, index: indexOf(x.index), value: loads(x.value) };
        case "for": return { ...x, body: block(x.body) };
        default: return x;
      }
    });
  const body = block(s.body);
  return inline.size ? { ...s, body } : s;
}

/**
 * The row loop a statement is, when the module can run it two rows at once:
 * a parallel loop over at least two rows (or a loop of one iteration) whose
 * body holds locals, sets of its own locals, stores of f32 elements and loops
 * of the same (nested in each other only in a single row), every load and store at a fixed
 * distance (≥ 0; > 0 for a store, unless there is one row) from the same
 * element of the next row.
 */
export function simdRows(at: Stmt, k: Pick<Kernel, "buffers" | "extern">): SimdRows | undefined {
  if (at.k !== "for" || at.to <= at.from) return undefined;
  const one = at.to - at.from === 1;
  if (!one && (at.mark !== "parallel" || at.to - at.from < 2)) return undefined;
  if ((at.to - at.from) * rowWork(at.body) < ROWS_MIN_WORK) return undefined;
  const s = indexLetsInlined(at);
  const row = s.v;
  const loopVars = new Set([row]);
  const lets = new Set<string>();
  const names = new ParamNames(k, loopVars, lets, (index, store) => {
    const c = coefficient(index, row);
    return c !== undefined && c >= 0 && !(store && c === 0 && !one);
  }, true);
  const [access, value] = [names.access.bind(names), names.value.bind(names)];
  const enclosing: string[] = [];
  const block = (stmts: readonly Stmt[]): boolean =>
    stmts.every((st) => {
      switch (st.k) {
        case "let":
          if (!value(st.init)) return false;
          lets.add(st.name);
          return true;
        case "set": return lets.has(st.name) && value(st.value);
        case "store": return !st.abs && value(st.value) && access(st.buf, st.index, true);
        case "for": {
          // sibling loops may share a variable; the row's is its own; loops nest in a single row only, and a nested loop's variable differs from those around it
          if (st.to <= st.from || st.v === row || lets.has(st.v) || enclosing.includes(st.v) || (enclosing.length > 0 && !one)) return false;
          loopVars.add(st.v);
          enclosing.push(st.v);
          const ok = block(st.body);
          enclosing.pop();
          return ok;
        }
        case "comment": return true;
        default: return false;
      }
    });
  if (!block(s.body)) return undefined;
  // a value read from outside may not be one of the row's own locals declared later
  if (names.valueVars.some((v) => lets.has(v) || loopVars.has(v))) return undefined;
  return { loop: s, buffers: names.buffers, indexVars: names.indexVars, valueVars: names.valueVars };
}

// ---- the encoder ----

/** An index as i32 code (+ - · of integers; idiv and mod of non-negative ones), each variable read from its local. */
export function indexWasm(e: Expr, local: (name: string) => number): number[] {
  switch (e.k) {
    case "num": return i32(e.v);
    case "var": return get(local(e.name));
    case "bin": {
      const o = { "+": 0x6a, "-": 0x6b, "*": 0x6c, idiv: 0x6d, mod: 0x6f }[e.op as "+" | "-" | "*" | "idiv" | "mod"];
      return [...indexWasm(e.a, local), ...indexWasm(e.b, local), o];
    }
    default: throw new Error(`wasm: an index of kind ${e.k} in a loop of the module`);
  }
}

type Code = number[];
const F64 = 0x7c;
/** The SIMD opcodes (after 0xfd) of the elementwise and row loops. */
export const OP = {
  load32Splat: 0x09, shuffle: 0x0d, f64Splat: 0x14, v128Const: 0x0c,
  f64Eq: 0x47, f64Ne: 0x48, f64Lt: 0x49, f64Gt: 0x4a, f64Le: 0x4b, f64Ge: 0x4c,
  and: 0x4e, or: 0x50, bitselect: 0x52, load32Lane: 0x56, store32Lane: 0x5a, load32Zero: 0x5c, load64Zero: 0x5d,
  demote: 0x5e, promote: 0x5f, f64Floor: 0x75,
  f64Abs: 0xec, f64Neg: 0xed, f64Sqrt: 0xef, f64Add: 0xf0, f64Sub: 0xf1, f64Mul: 0xf2, f64Div: 0xf3, f64Min: 0xf4, f64Max: 0xf5,
} as const;
const op = (name: keyof typeof OP): Code => simd(OP[name]);
const memarg = (offset: number) => [...uleb(2), ...uleb(offset)];
const f64x2 = (a: number, b = a): Code => [...op("v128Const"), ...new Uint8Array(Float64Array.of(a, b).buffer)];
const [ADD, SHL, F64_CONVERT_I32_S] = [0x6a, 0x74, 0xb7];
/** The control instructions of a loop over a range passed in (block, if, br; i32 comparisons). */
export const [BLOCK, IF, BR, I32_LT_S, I32_GT_S] = [[0x02, 0x40], [0x04, 0x40], 0x0c, 0x48, 0x4a] as const;
const BIN_F64: Readonly<Record<string, keyof typeof OP>> = {
  "+": "f64Add", "-": "f64Sub", "*": "f64Mul", "/": "f64Div", max: "f64Max", min: "f64Min",
  "<": "f64Lt", "<=": "f64Le", ">": "f64Gt", ">=": "f64Ge", "==": "f64Eq", "!=": "f64Ne",
};
const COMPARE = new Set(["<", "<=", ">", ">=", "==", "!="]);

/**
 * One function per row loop (parameters as simdFunction's: buffer addresses
 * and index names i32, value names f64, then the range of rows [from, to),
 * i32), so that threads can split the rows.
 */
export function rowsFunction(r: SimdRows, options: { readonly fma: boolean }): { params: number[]; body: number[] } {
  const nb = r.buffers.length;
  const ni = r.indexVars.length;
  const params = [...new Array<number>(nb + ni).fill(I32), ...new Array<number>(r.valueVars.length).fill(F64), I32, I32];
  const [FROM, TO] = [params.length - 2, params.length - 1];
  // i32 locals: the row, each inner loop, an address; then v128 locals
  const loopVars: string[] = [r.loop.v];
  visitKir(r.loop.body, { stmt: (s) => void (s.k === "for" && !loopVars.includes(s.v) && loopVars.push(s.v)) });
  const loopAt = new Map(loopVars.map((v, i) => [v, params.length + i]));
  const ADDR = params.length + loopVars.length;
  const locals = new Locals(ADDR + 1);
  const row = r.loop.v;
  const code: Code = [];
  const splat = new Map<string, number>();
  r.valueVars.forEach((v, i) => {
    const l = locals.take();
    code.push(...get(nb + ni + i), ...simd(OP.f64Splat), ...set(l));
    splat.set(v, l);
  });
  const lets = new Map<string, number>();
  const indexCode = (e: Expr): Code => indexWasm(e, (name) => loopAt.get(name) ?? nb + r.indexVars.indexOf(name));
  /** The row's statements for two rows (lanes 0 and 1) or one (lane 0). */
  const body = (lanes: 1 | 2): Code => {
    const out: Code = [];
    const keep = (c: Code): number => {
      const l = locals.take();
      out.push(...c, ...set(l));
      return l;
    };
    const address = (buf: string, index: Expr): void => void out.push(...get(r.buffers.indexOf(buf)), ...indexCode(index), ...i32(2), SHL, ADD, ...set(ADDR));
    const load = (buf: string, index: Expr): number => {
      const c = coefficient(index, row)!;
      address(buf, index);
      if (c === 0) return keep([...get(ADDR), ...op("load32Splat"), ...memarg(0), ...op("promote")]);
      const first = [...get(ADDR), ...op("load32Zero"), ...memarg(0)];
      if (lanes === 1) return keep([...first, ...op("promote")]);
      const t = keep(first);
      return keep([...get(ADDR), ...get(t), ...op("load32Lane"), ...memarg(4 * c), 1, ...op("promote")]);
    };
    const un = (a: number, c: Code): number => keep([...get(a), ...c]);
    const truth = (e: Expr): number => {
      if (e.k === "bin" && COMPARE.has(e.op)) return keep([...get(val(e.a)), ...get(val(e.b)), ...op(BIN_F64[e.op]!)]);
      if (e.k === "bin" && (e.op === "&&" || e.op === "||")) return keep([...get(truth(e.a)), ...get(truth(e.b)), ...op(e.op === "&&" ? "and" : "or")]);
      if (e.k === "un" && e.op === "not") return keep([...get(val(e.a)), ...f64x2(0), ...op("f64Eq")]);
      return keep([...get(val(e)), ...f64x2(0), ...op("f64Ne")]);
    };
    const one = (m: number): number => keep([...get(m), ...f64x2(1), ...op("and")]);
    const val = (e: Expr): number => {
      switch (e.k) {
        case "num": return keep(f64x2(e.v));
        case "var": {
          const l = lets.get(e.name) ?? splat.get(e.name);
          if (l !== undefined) return l;
          const v = loopAt.get(e.name);
          if (v === undefined) throw new Error(`wasm: ${e.name} is not bound in a row loop`);
          // a loop variable's value; the row's is one more in lane 1
          const lanesOf = [...get(v), F64_CONVERT_I32_S, ...simd(OP.f64Splat)];
          return keep(e.name === row ? [...lanesOf, ...f64x2(0, 1), ...op("f64Add")] : lanesOf);
        }
        case "load": return load(e.buf, e.index);
        case "un": {
          if (e.op === "not") return one(truth(e));
          const a = val(e.a);
          switch (e.op) {
            case "neg": return un(a, op("f64Neg"));
            case "abs": return un(a, op("f64Abs"));
            case "sqrt": return un(a, op("f64Sqrt"));
            case "rsqrt": return keep([...f64x2(1), ...get(a), ...op("f64Sqrt"), ...op("f64Div")]);
            case "floor": return un(a, op("f64Floor"));
            case "fround": return un(a, [...op("demote"), ...op("promote")]);
            case "exp": case "log": case "tanh": case "sigmoid": {
              const x = keep([...get(a), ...op("demote")]);
              return keep([...simdMath(e.op as SimdMathFn, get(x), locals, options), ...op("promote")]);
            }
            default: throw new Error(`wasm: ${e.op} in a row loop`);
          }
        }
        case "bin":
          if (COMPARE.has(e.op) || e.op === "&&" || e.op === "||") return one(truth(e));
          return keep([...get(val(e.a)), ...get(val(e.b)), ...op(BIN_F64[e.op]!)]);
        case "sel": {
          const c = truth(e.c);
          const [a, b] = [val(e.a), val(e.b)];
          return keep([...get(a), ...get(b), ...get(c), ...op("bitselect")]);
        }
        default: throw new Error(`wasm: a ${e.k} value in a row loop`);
      }
    };
    const local = (name: string): number => {
      let l = lets.get(name);
      if (l === undefined) {
        l = locals.take();
        lets.set(name, l);
      }
      return l;
    };
    const stmts = (ss: readonly Stmt[]): void => {
      for (const s of ss) {
        switch (s.k) {
          case "let": case "set": {
            const v = val(s.k === "let" ? s.init : s.value);
            out.push(...get(v), ...set(local(s.name)));
            break;
          }
          case "store": {
            const v = val(s.add ? { k: "bin", op: "+", a: { k: "load", buf: s.buf, index: s.index }, b: s.value } : s.value);
            const f32 = keep([...get(v), ...op("demote")]);
            address(s.buf, s.index);
            out.push(...get(ADDR), ...get(f32), ...op("store32Lane"), ...memarg(0), 0);
            if (lanes === 2) out.push(...get(ADDR), ...get(f32), ...op("store32Lane"), ...memarg(4 * coefficient(s.index, row)!), 1);
            break;
          }
          case "for": {
            const v = loopAt.get(s.v)!;
            out.push(...i32(s.from), ...set(v), ...LOOP);
            stmts(s.body);
            out.push(...get(v), ...i32(1), ADD, 0x22, ...uleb(v), ...i32(s.to), NE, BR_IF, 0, END);
            break;
          }
          default: break;
        }
      }
    };
    stmts(r.loop.body);
    return out;
  };
  const R = loopAt.get(row)!;
  // rows from, from + 1 while both are before to; then the last one, if any
  code.push(...get(FROM), ...set(R));
  code.push(...BLOCK, ...LOOP, ...get(R), ...i32(2), ADD, ...get(TO), I32_GT_S, BR_IF, 1, ...body(2), ...get(R), ...i32(2), ADD, ...set(R), BR, 0, END, END);
  code.push(...get(R), ...get(TO), I32_LT_S, ...IF, ...body(1), END);
  code.push(END);
  const declared = vec([[...uleb(loopVars.length + 1), I32], [...uleb(locals.count), V128]]);
  const fnBody = [...declared, ...code];
  return { params, body: [...uleb(fnBody.length), ...fnBody] };
}
