// Kernel IR as scalar WebAssembly, for kernels that only move and compare
// elements (the packing of convolution patches, the copy of a product's C into
// its output's layout, pooling and its gradient): loops, lets, sets, ifs,
// stores and scatter-adds over buffers the module's memory holds. Integer
// locals are i32; every float value is an f64, loaded from f32 and rounded to
// f32 when stored, as the JavaScript kernels compute, so the results are
// those of the ts backend bit for bit (but for the sign of an integer zero:
// integers are i32, where JavaScript's % or a product can give -0; kernels
// use integer expressions as indexes and counts). What falls outside (other
// operators, an index that is no integer expression) is refused with
// undefined, and the caller keeps the statements in JavaScript.
import type { Expr, Stmt } from "../../kernel/kir.js";
import { visitKir } from "../../kernel/kir.js";
import { END, I32, get, i32, set, uleb, vec } from "./wasm.js";

const F64 = 0x7c;
const [I32_EQZ, I32_EQ, I32_NE, I32_LT_S, I32_GT_S, I32_LE_S, I32_GE_S] = [0x45, 0x46, 0x47, 0x48, 0x4a, 0x4c, 0x4e];
const [I32_ADD, I32_SUB, I32_MUL, I32_DIV_S, I32_REM_S, I32_AND, I32_OR] = [0x6a, 0x6b, 0x6c, 0x6d, 0x6f, 0x71, 0x72];
const [F32_LOAD, F32_STORE, F64_CONST, F64_PROMOTE, F32_DEMOTE, F64_FROM_I32] = [0x2a, 0x38, 0x44, 0xbb, 0xb6, 0xb7];
const [IF, ELSE, LOOP, BR_IF, VOID, SELECT] = [0x04, 0x05, 0x03, 0x0d, 0x40, 0x1b];

const INT_COMPARE: Readonly<Record<string, number>> = { "<": I32_LT_S, ">": I32_GT_S, "<=": I32_LE_S, ">=": I32_GE_S, "==": I32_EQ, "!=": I32_NE };
const F64_COMPARE: Readonly<Record<string, number>> = { "==": 0x61, "!=": 0x62, "<": 0x63, ">": 0x64, "<=": 0x65, ">=": 0x66 };
const F64_ARITH: Readonly<Record<string, number>> = { "+": 0xa0, "-": 0xa1, "*": 0xa2, "/": 0xa3, min: 0xa4, max: 0xa5 };
const F64_UNARY: Readonly<Record<string, number>> = { neg: 0x9a, abs: 0x99, sqrt: 0x9f, floor: 0x9c };

/** Loops of at most this many iterations are unrolled, when their unrolled code takes at most UNROLL_BYTES. */
const UNROLL = 4;
const UNROLL_BYTES = 4096;

const isI32 = (v: number): boolean => Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31 && !Object.is(v, -0);

/** Thrown inside the compiler for a statement or expression it does not take. */
class Refused extends Error {}

type Kind = "int" | "float";

/** Which locals hold floats: those assigned a value that is one (a load, a fraction, a division, a float local), to a fixed point. */
function floatLocals(stmts: readonly Stmt[]): Set<string> {
  const assigned: [string, Expr][] = [];
  visitKir(stmts, { stmt: (s) => void ((s.k === "let" || s.k === "set") && assigned.push([s.name, s.k === "let" ? s.init : s.value])) });
  const floats = new Set<string>();
  for (let changed = true; changed; ) {
    changed = false;
    for (const [name, e] of assigned) {
      if (!floats.has(name) && kindOf(e, floats) === "float") {
        floats.add(name);
        changed = true;
      }
    }
  }
  return floats;
}

/** The kind of an expression's value. */
function kindOf(e: Expr, floats: ReadonlySet<string>): Kind {
  switch (e.k) {
    case "num": return isI32(e.v) ? "int" : "float";
    case "var": return floats.has(e.name) ? "float" : "int";
    case "load": return "float";
    case "un": return e.op === "not" || e.op === "toInt" ? "int" : e.op === "neg" || e.op === "abs" ? kindOf(e.a, floats) : "float";
    case "bin":
      if (e.op in INT_COMPARE || e.op === "&&" || e.op === "||" || e.op === "idiv" || e.op === "mod") return "int";
      if (e.op === "/") return "float";
      return kindOf(e.a, floats) === "float" || kindOf(e.b, floats) === "float" ? "float" : "int";
    case "sel": return kindOf(e.a, floats) === "float" || kindOf(e.b, floats) === "float" ? "float" : "int";
    default: return "float";
  }
}

/**
 * The body (locals and code) of a function running `stmts`, where buffer `b`
 * lives at float offset `at(b)` of the memory (undefined: the statements may
 * not touch it), or undefined when the statements fall outside what this
 * compiler takes. The function takes one i32 parameter per name in `params`:
 * the byte address of that buffer's element 0 (`at` is not asked for them).
 */
export function kirFunctionBody(stmts: readonly Stmt[], at: (buf: string) => number | undefined, params: readonly string[] = []): number[] | undefined {
  const floats = floatLocals(stmts);
  // the parameters, then i32 locals, then f64 ones
  const names: string[] = [];
  visitKir(stmts, { stmt: (s) => void ((s.k === "let" || s.k === "for") && !names.includes(s.k === "let" ? s.name : s.v) && names.push(s.k === "let" ? s.name : s.v)) });
  const ints = names.filter((n) => !floats.has(n));
  const fl = names.filter((n) => floats.has(n));
  const index = new Map([...ints, ...fl].map((n, i) => [n, params.length + i]));
  const local = (name: string): number => {
    const l = index.get(name);
    if (l === undefined) throw new Refused(`${name} is not declared`);
    return l;
  };
  const kind = (e: Expr): Kind => kindOf(e, floats);
  // an element's address: the index in bytes (plus a parameter's address), then (memarg: alignment 2^2, offset) the buffer's byte offset
  const address = (e: Expr, buf: string): number[] => [...int(e), ...i32(4), I32_MUL, ...(params.includes(buf) ? [...get(params.indexOf(buf)), I32_ADD] : [])];
  const memarg = (buf: string): number[] => {
    const base = params.includes(buf) ? 0 : at(buf);
    if (base === undefined) throw new Refused(`buffer ${buf}`);
    return [0x02, ...uleb(4 * base)];
  };
  const int = (e: Expr): number[] => {
    if (kind(e) !== "int") throw new Refused("a float where an integer is needed");
    switch (e.k) {
      case "num": return i32(e.v);
      case "var": return get(local(e.name));
      case "un":
        if (e.op === "not") return [...bool(e.a), I32_EQZ];
        if (e.op === "neg") return [...i32(0), ...int(e.a), I32_SUB];
        throw new Refused(e.op);
      case "bin": {
        if (e.op in INT_COMPARE) {
          if (kind(e.a) === "int" && kind(e.b) === "int") return [...int(e.a), ...int(e.b), INT_COMPARE[e.op]!];
          return [...float(e.a), ...float(e.b), F64_COMPARE[e.op]!];
        }
        if (e.op === "&&" || e.op === "||") return [...bool(e.a), ...bool(e.b), e.op === "&&" ? I32_AND : I32_OR];
        if (e.op === "+" || e.op === "-" || e.op === "*") return [...int(e.a), ...int(e.b), e.op === "+" ? I32_ADD : e.op === "-" ? I32_SUB : I32_MUL];
        // min, max: select(a, b, a < b) or (a > b)
        if (e.op === "min" || e.op === "max") return [...int(e.a), ...int(e.b), ...int(e.a), ...int(e.b), e.op === "min" ? I32_LT_S : I32_GT_S, SELECT];
        if ((e.op === "idiv" || e.op === "mod") && e.b.k === "num" && e.b.v > 0) {
          const [a, b] = [int(e.a), int(e.b)];
          // mod: the remainder with the sign of a, as rem_s; idiv: floor, the truncated quotient less one where the remainder is negative
          if (e.op === "mod") return [...a, ...b, I32_REM_S];
          return [...a, ...b, I32_DIV_S, ...a, ...b, I32_REM_S, ...i32(0), I32_LT_S, I32_SUB];
        }
        throw new Refused(e.op);
      }
      case "sel": return [...bool(e.c), IF, I32, ...int(e.a), ELSE, ...int(e.b), END];
      default: throw new Refused(e.k);
    }
  };
  const bool = (e: Expr): number[] => {
    if (kind(e) === "float") return [...float(e), ...f64(0), F64_COMPARE["!="]!];
    const logical = (e.k === "bin" && (e.op in INT_COMPARE || e.op === "&&" || e.op === "||")) || (e.k === "un" && e.op === "not");
    return logical ? int(e) : [...int(e), ...i32(0), I32_NE];
  };
  const float = (e: Expr): number[] => {
    if (kind(e) === "int") return [...int(e), F64_FROM_I32];
    switch (e.k) {
      case "num": return f64(e.v);
      case "var": return get(local(e.name));
      case "load":
        if (e.abs) throw new Refused("an absolute load");
        return [...address(e.index, e.buf), F32_LOAD, ...memarg(e.buf), F64_PROMOTE];
      case "un": {
        const op = F64_UNARY[e.op];
        if (op === undefined) throw new Refused(e.op);
        return [...float(e.a), op];
      }
      case "bin": {
        const op = F64_ARITH[e.op];
        if (op === undefined) throw new Refused(e.op);
        return [...float(e.a), ...float(e.b), op];
      }
      case "sel": return [...bool(e.c), IF, F64, ...float(e.a), ELSE, ...float(e.b), END];
      default: throw new Refused(e.k);
    }
  };
  const assign = (name: string, e: Expr): number[] => [...(floats.has(name) ? float(e) : int(e)), ...set(local(name))];
  const block = (ss: readonly Stmt[]): number[] => ss.flatMap(stmt);
  const stmt = (s: Stmt): number[] => {
    switch (s.k) {
      case "for": {
        if (s.to <= s.from) return [];
        const v = local(s.v);
        // a loop of a few iterations (a pooling window's, a 3×3 filter's) unrolled, where its code stays small: no branch per iteration
        const body = block(s.body);
        const trips = s.to - s.from;
        if (trips <= UNROLL && trips * body.length <= UNROLL_BYTES) return Array.from({ length: trips }, (_, x) => [...i32(s.from + x), ...set(v), ...body]).flat();
        return [...i32(s.from), ...set(v), LOOP, VOID, ...body, ...get(v), ...i32(1), I32_ADD, 0x22, ...uleb(v), ...i32(s.to), I32_NE, BR_IF, 0, END];
      }
      case "let": return assign(s.name, s.init);
      case "set": return assign(s.name, s.value);
      case "if": return [...bool(s.c), IF, VOID, ...block(s.then), ...(s.else ? [ELSE, ...block(s.else)] : []), END];
      case "store": {
        if (s.abs) throw new Refused("an absolute store");
        const sum = s.add ? [...address(s.index, s.buf), F32_LOAD, ...memarg(s.buf), F64_PROMOTE] : [];
        return [...address(s.index, s.buf), ...sum, ...float(s.value), ...(s.add ? [F64_ARITH["+"]!] : []), F32_DEMOTE, F32_STORE, ...memarg(s.buf)];
      }
      case "scatterAdd":
        return [...address(s.index, s.buf), ...address(s.index, s.buf), F32_LOAD, ...memarg(s.buf), F64_PROMOTE, ...float(s.value), F64_ARITH["+"]!, F32_DEMOTE, F32_STORE, ...memarg(s.buf)];
      case "comment": return [];
      default: throw new Refused(s.k);
    }
  };
  try {
    const code = block(stmts);
    const decls = [...(ints.length ? [[...uleb(ints.length), I32]] : []), ...(fl.length ? [[...uleb(fl.length), F64]] : [])];
    const body = [...vec(decls), ...code, END];
    return [...uleb(body.length), ...body];
  } catch (e) {
    if (e instanceof Refused) return undefined;
    throw e;
  }
}

/** An f64.const. */
function f64(v: number): number[] {
  return [F64_CONST, ...new Uint8Array(new Float64Array([v]).buffer)];
}

/**
 * Extern work's data places a copy of buffer `name` (`size` elements) in
 * scratch at float `at`, as `at.<name>` and `size.<name>`; returns the float
 * after it. An extern statement that runs in WebAssembly (`pack`, `unpack`,
 * `run`) reads and writes these copies where the arena does not lie in the
 * module's memory (`externCopies` says which are copied in before it and back
 * after it).
 */
export function placeCopy(data: Record<string, number>, name: string, size: number, at: number): number {
  data[`at.${name}`] = at;
  data[`size.${name}`] = size;
  return at + size;
}

/** Float offset of buffer `buf`'s copy for an extern in WebAssembly: 0 for the kernel's scratch itself. */
export const copyAt = (data: Readonly<Record<string, number>>, scratch: string | undefined, buf: string): number | undefined => (buf === scratch ? 0 : data[`at.${buf}`]);

/**
 * The copies around an extern that runs in WebAssembly: `pack` copies in what
 * it reads, `unpack` copies out what it writes (which it writes whole), `run`
 * copies in what it reads or writes and copies out what it writes.
 */
export function externCopies(s: Stmt & { k: "extern" }, scratch: string | undefined): { into: string[]; back: string[] } {
  const read = new Set<string>();
  const written = new Set<string>();
  visitKir(s.reference, {
    stmt: (x) => void ((x.k === "store" || x.k === "scatterAdd") && x.buf !== scratch && written.add(x.buf)),
    expr: (e) => void (e.k === "load" && e.buf !== scratch && read.add(e.buf)),
  });
  if (s.call === "pack") return { into: [...read], back: [] };
  if (s.call === "unpack") return { into: [], back: [...written] };
  return { into: [...new Set([...read, ...written])], back: [...written] };
}
