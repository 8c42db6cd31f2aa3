// Elementwise loops in WebAssembly SIMD: the simdLoops pass rewrites a nest of
// loops whose innermost loop is parallel and whose body only computes locals
// and stores f32 elements (a fused elementwise chain, a matmul's epilogue, the
// optimizer update) into an `extern` statement; the module of the kernel file
// runs it four elements per iteration (a scalar tail after), the nest kept as
// the extern's reference. The module reads and writes the arena F where the
// host placed it in the module's memory (`WASM.arena`); elsewhere the kernel
// runs the reference loops as JavaScript.
//
// Values are computed as the kernel IR defines them, in doubles: each f32
// element is widened to f64x2 lanes (two vectors per four elements) and
// rounded to f32 when stored, so +, -, ·, /, min, max, sqrt, comparisons and
// selects give the bits the JavaScript kernels give. exp, log, tanh and
// sigmoid take their argument rounded to f32 and run simdMath.ts's f32x4
// approximations (four lanes at once), within SIMD_MATH_ERROR's ulp bounds.
import type { Expr, Loop, Stmt } from "../../kernel/kir.js";
import { visitKir } from "../../kernel/kir.js";
import type { Kernel } from "../../lower/schedule.js";
import type { KernelPass } from "../target.js";
import { BR_IF, END, I32, LOOP, NE, V128, get, i32, memarg, set, simd, uleb, vec } from "./wasm.js";
import type { SimdMathFn } from "./simdMath.js";
import { Locals, simdMath } from "./simdMath.js";
import { accessOf, addressCode, copyFunction, copyRows, copyWords } from "./copyRows.js";
import type { Access } from "./copyRows.js";
import { BLOCK, BR, I32_GT_S, OP, ParamNames, coefficient, indexWasm, rowWork, rowsFunction, simdRows } from "./simdRows.js";

/** Nests with fewer elements than this stay in JavaScript (a call into the module costs more than it saves). */
export const SIMD_MIN_ELEMENTS = 64;

/** The `call` of an elementwise extern: `simd#N`, N counting the kernel's. */
export const SIMD_CALL = "simd#";


/** What the module needs of a nest: its loops, its body, and the names its code takes as parameters. */
export interface SimdNest {
  /** The loops, outermost first; the last is the one run four at a time. */
  readonly loops: readonly { readonly v: string; readonly from: number; readonly to: number }[];
  readonly body: readonly Stmt[];
  /** Buffers it reads or writes, in first-seen order: one i32 parameter each (the byte address of element 0). */
  readonly buffers: readonly string[];
  /** Names from outside the nest used in indexes (i32 parameters, after the buffers). */
  readonly indexVars: readonly string[];
  /** Names from outside the nest used as values (f64 parameters, last). */
  readonly valueVars: readonly string[];
}

/** The nest a statement starts, when the module can run it (see the file header); `k` binds its buffers. */
export function simdNest(s: Stmt, k: Pick<Kernel, "buffers" | "extern">): SimdNest | undefined {
  const loops: Loop[] = [];
  let at: Stmt = s;
  while (at.k === "for") {
    loops.push(at);
    if (at.body.length === 1 && at.body[0]!.k === "for") at = at.body[0]!;
    else break;
  }
  const inner = loops.at(-1);
  if (!inner || inner.mark !== "parallel" || loops.some((l) => l.to <= l.from)) return undefined;
  const loopVars = new Set(loops.map((l) => l.v));
  const lets = new Set<string>();
  // stores step by 1 with the innermost loop; loads by 1 or 0 (broadcast)
  const names = new ParamNames(k, loopVars, lets, (index, store) => {
    const c = coefficient(index, inner.v);
    return c === 1 || (!store && c === 0);
  }, false);
  const [buffer, value] = [names.access.bind(names), names.value.bind(names)];
  for (const st of inner.body) {
    if (st.k === "let") {
      if (!value(st.init) || lets.has(st.name)) return undefined;
      lets.add(st.name);
    } else if (st.k === "store") {
      if (st.abs || !value(st.value) || !buffer(st.buf, st.index, true)) return undefined;
    } else if (st.k !== "comment") {
      return undefined;
    }
  }
  if (!inner.body.some((st) => st.k === "store")) return undefined;
  return { loops: loops.map((l) => ({ v: l.v, from: l.from, to: l.to })), body: inner.body, buffers: names.buffers, indexVars: names.indexVars, valueVars: names.valueVars };
}

/** Elements a nest computes. */
const elements = (n: SimdNest): number => n.loops.reduce((a, l) => a * (l.to - l.from), 1);

/** The `call` of a row loop's extern (simdRows.ts): `rows#N`. */
export const ROWS_CALL = "rows#";

/** The variable of the one-iteration loop that holds a run of statements run as one row. */
export const ONE_ROW = "row1";

/** Statements a run of them (one row) may hold: no parallel loop (those run as rows, nests or tiled products of their own). */
const inRun = (s: Stmt): boolean => s.k === "let" || s.k === "set" || s.k === "store" || s.k === "comment" || (s.k === "for" && s.mark !== "parallel");

/** The names the statements read. */
function namesRead(stmts: readonly Stmt[]): Set<string> {
  const names = new Set<string>();
  visitKir(stmts, { expr: (e) => void (e.k === "var" && names.add(e.name)) });
  return names;
}

/**
 * The pass: each qualifying nest (at any depth) becomes an extern the module
 * runs; else each qualifying row loop (simdRows.ts); then each run of
 * statements left in JavaScript that the module can run as one row (a total's
 * reduction and what follows it), whose locals nothing after it reads.
 */
export const simdLoops: KernelPass = {
  name: "simdLoops",
  run: (k, cx) => {
    if (cx.precision !== "f32") return k;
    let count = 0;
    let rowCount = 0;
    const rowsExtern = (s: Loop, what: string): Stmt[] => [{ k: "comment", text: what }, { k: "extern", call: `${ROWS_CALL}${rowCount++}`, reference: [s] }];
    const runs = (stmts: readonly Stmt[]): Stmt[] => {
      const out: Stmt[] = [];
      for (let i = 0; i < stmts.length; ) {
        let j = i;
        while (j < stmts.length && inRun(stmts[j]!)) j++;
        const run = stmts.slice(i, j);
        const declared = run.flatMap((s) => (s.k === "let" ? [s.name] : []));
        const after = namesRead(stmts.slice(j));
        const one: Loop = { k: "for", v: ONE_ROW, from: 0, to: 1, mark: "parallel", body: run };
        if (run.some((s) => s.k !== "comment") && !declared.some((n) => after.has(n)) && !namesRead(run).has(ONE_ROW) && simdRows(one, k)) {
          out.push(...rowsExtern(one, "in WebAssembly (one row, f64x2 lane 0)"));
        } else {
          out.push(...run);
        }
        if (j < stmts.length) out.push(stmts[j]!);
        i = j + 1;
      }
      return out;
    };
    /** The statements with their loops rewritten, then their runs (but in a loop of one iteration, which tries its whole body as one row). */
    const walk = (stmts: readonly Stmt[], whole = false): Stmt[] => {
      const out = stmts.flatMap((s): Stmt[] => {
        if (s.k !== "for") return [s];
        const nest = simdNest(s, k);
        if (nest && elements(nest) >= SIMD_MIN_ELEMENTS) {
          const what = `${elements(nest)} elements in WebAssembly SIMD (f64x2 lanes, 4 elements an iteration)`;
          return [{ k: "comment", text: what }, { k: "extern", call: `${SIMD_CALL}${count++}`, reference: [s] }];
        }
        const rows = s.to - s.from;
        const asRows = rows > 1 ? simdRows(s, k) : undefined;
        if (asRows) {
          const copy = copyRows(asRows);
          return rowsExtern(s, copy ? `${rows} rows copied in WebAssembly (${copyWords(copy)} words a row, four at a time where they lie together)` : `${rows} rows in WebAssembly SIMD (two rows at once, one per f64x2 lane)`);
        }
        // a loop of one iteration runs as one row where nothing inside it runs in the module (its inner loops two rows at once, first)
        const body = walk(s.body, rows === 1);
        const inside = body.some((x) => x.k === "extern");
        if (rows === 1 && !inside && simdRows(s, k)) return rowsExtern(s, "1 row in WebAssembly (f64x2 lane 0)");
        return [{ ...s, body: rows === 1 && !inside ? runs(body) : body }];
      });
      return whole ? out : runs(out);
    };
    const body = walk(k.body);
    return count + rowCount ? { ...k, body } : k;
  },
};

/** The names an elementwise or row extern's function takes as parameters, in order. */
export interface SimdParams {
  readonly buffers: readonly string[];
  readonly indexVars: readonly string[];
  readonly valueVars: readonly string[];
}

/** A kernel's elementwise or row extern: its export's name, its parameters, its function, the range of its outermost loop and its work. */
export interface SimdExtern {
  readonly name: string;
  readonly params: SimdParams;
  encode(options: SimdLoopOptions): { params: number[]; body: number[] };
  /** The outermost loop's [from, to): the range the export takes last, which threads may split. */
  readonly range: readonly [number, number];
  /** Elements (a row loop: its rows' innermost iterations) × LOOP_WORK: what the runtime weighs to split it, in a product's multiply-adds. */
  readonly work: number;
}

/**
 * A loop's element counted as this many of a product's multiply-adds when
 * the runtime decides whether to split it across threads (an element of
 * f64 lanes, rounded and stored, costs several multiply-adds of the SIMD
 * product): with two threads, loops of 16K elements and up are split.
 */
export const LOOP_WORK = 32;

/** A word a copy loop moves (copyRows.ts), counted as this many multiply-adds: a load and a store, bound by memory. */
export const COPY_WORK = 8;

/** Whether an extern statement is an elementwise nest's or a row loop's. */
export const isSimdCall = (call: string): boolean => call.startsWith(SIMD_CALL) || call.startsWith(ROWS_CALL);

/** An elementwise or row extern statement of kernel `k`, read back. */
export function simdExtern(k: Pick<Kernel, "name" | "buffers" | "extern">, s: Stmt & { k: "extern" }): SimdExtern {
  const bad = () => new Error(`wasm: kernel ${k.name}'s extern ${s.call} is not an elementwise loop nest or a row loop`);
  if (s.reference.length !== 1) throw bad();
  const name = simdExport(k.name, s.call);
  if (s.call.startsWith(ROWS_CALL)) {
    const rows = simdRows(s.reference[0]!, k);
    if (!rows) throw bad();
    const l = rows.loop;
    const copy = copyRows(rows);
    // a single row has nothing to split across threads
    const work = l.to - l.from <= 1 ? 0 : copy ? (l.to - l.from) * copyWords(copy) * COPY_WORK : (l.to - l.from) * rowWork(l.body) * LOOP_WORK;
    return { name, params: rows, encode: (o) => (copy ? copyFunction(copy) : rowsFunction(rows, o)), range: [l.from, l.to], work };
  }
  const nest = simdNest(s.reference[0]!, k);
  if (!nest) throw bad();
  const outer = nest.loops[0]!;
  return { name, params: nest, encode: (o) => simdFunction(nest, o), range: [outer.from, outer.to], work: elements(nest) * LOOP_WORK };
}

/** The elementwise and row externs of a kernel, in order. */
export function simdExterns(k: Pick<Kernel, "name" | "body" | "buffers" | "extern">): SimdExtern[] {
  const out: SimdExtern[] = [];
  visitKir(k.body, { stmt: (s) => void (s.k === "extern" && isSimdCall(s.call) && out.push(simdExtern(k, s))) });
  return out;
}

/** The module's export of a kernel's elementwise extern (`#` keeps it apart from every kernel name): `k#N`, a row loop's `k#rN`. */
export const simdExport = (kernel: string, call: string): string =>
  call.startsWith(ROWS_CALL) ? `${kernel}#r${call.slice(ROWS_CALL.length)}` : `${kernel}#${call.slice(SIMD_CALL.length)}`;

// ---- the encoder ----

type Code = number[];
/** A value's two f64x2 locals (lanes 0-1 and 2-3 of four elements; the same local twice where both halves are equal). */
type Pair = readonly [number, number];
const F64 = 0x7c;
const op = (name: keyof typeof OP): Code => simd(OP[name]);
/** Bytes 0-7 of a, then bytes 0-7 of b (two f32 pairs made one f32x4). */
const LOW_HALVES = [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23];
/** Bytes 8-15 of a, twice (the upper f32 pair moved down). */
const HIGH_HALF = [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];
const f64x2 = (v: number): Code => [...op("v128Const"), ...[0, 1].flatMap(() => [...new Uint8Array(Float64Array.of(v).buffer)])];
const [ADD, SHL] = [0x6a, 0x74];
const BIN_F64: Readonly<Record<string, keyof typeof OP>> = {
  "+": "f64Add", "-": "f64Sub", "*": "f64Mul", "/": "f64Div", max: "f64Max", min: "f64Min",
  "<": "f64Lt", "<=": "f64Le", ">": "f64Gt", ">=": "f64Ge", "==": "f64Eq", "!=": "f64Ne",
};
const COMPARE = new Set(["<", "<=", ">", ">=", "==", "!="]);

/** Options of the module's code. */
export interface SimdLoopOptions {
  /** f32x4.relaxed_madd in the math functions' polynomials. */
  readonly fma: boolean;
}

/**
 * One function per nest: its parameters (buffer byte addresses and index
 * names: i32; value names: f64; then the range [from, to) of its outermost
 * loop, i32, so that threads can split it) and its body in the code
 * section's form.
 */
export function simdFunction(n: SimdNest, options: SimdLoopOptions): { params: number[]; body: number[] } {
  const nb = n.buffers.length;
  const ni = n.indexVars.length;
  const nv = n.valueVars.length;
  const params = [...new Array<number>(nb + ni).fill(I32), ...new Array<number>(nv).fill(F64), I32, I32];
  const [FROM, TO] = [params.length - 2, params.length - 1];
  // i32 locals: one per loop, then an address; then the v128 locals that Locals hands out
  const loopAt = new Map(n.loops.map((l, i) => [l.v, params.length + i]));
  const ADDR = params.length + n.loops.length;
  const math = { fma: options.fma };
  const inner = n.loops.at(-1)!;
  const indexCode = (e: Expr): Code => indexWasm(e, (name) => loopAt.get(name) ?? nb + n.indexVars.indexOf(name));
  // An access whose index is affine gets its address from a base, one per buffer and outer terms, set before each run
  // of the innermost loop (its constant the smallest of its accesses'): the base, plus 4·v where the access steps
  // with the innermost loop, read at a constant offset. Others compute their address whole.
  const bases = new Map<string, { local: number; access: Access; min: number }>();
  // by index and buffer (one index expression may address several buffers)
  const based = new Map<Expr, Map<string, Access>>();
  const noteAccess = (buf: string, index: Expr): void => {
    const a = accessOf(buf, index);
    if (!a || based.get(index)?.has(buf)) return;
    const b = bases.get(a.key);
    if (!b) bases.set(a.key, { local: -1, access: a, min: a.c });
    else b.min = Math.min(b.min, a.c);
    if (!based.has(index)) based.set(index, new Map());
    based.get(index)!.set(buf, a);
  };
  visitKir(n.body as Stmt[], {
    stmt: (st) => void (st.k === "store" && noteAccess(st.buf, st.index)),
    expr: (e) => void (e.k === "load" && noteAccess(e.buf, e.index)),
  });
  [...bases.values()].forEach((b, i) => (b.local = ADDR + 1 + i));
  const locals = new Locals(ADDR + 1 + bases.size);
  const code: Code = [];
  /** The bases' values for the loops around the innermost one as they stand. */
  const setBases = (): Code =>
    [...bases.values()].flatMap((b) => [
      ...addressCode(n.buffers.indexOf(b.access.buf), b.access.terms, inner.v, b.min, (v) => loopAt.get(v) ?? nb + n.indexVars.indexOf(v)),
      ...set(b.local),
    ]);
  /** An access's address on the stack and the constant offset to read or write it at. */
  const address = (buf: string, index: Expr): [Code, number] => {
    const x = based.get(index)?.get(buf);
    if (!x) return [[...get(n.buffers.indexOf(buf)), ...indexCode(index), ...i32(2), SHL, ADD], 0];
    const b = bases.get(x.key)!;
    return [x.terms.has(inner.v) ? [...get(b.local), ...get(loopAt.get(inner.v)!), ...i32(2), SHL, ADD] : get(b.local), 4 * (x.c - b.min)];
  };
  // the names from outside as f64x2 splats, once
  const splat = new Map<string, number>();
  n.valueVars.forEach((v, i) => {
    const l = locals.take();
    code.push(...get(nb + ni + i), ...op("f64Splat"), ...set(l));
    splat.set(v, l);
  });
  /** The body for 4 elements (`wide`: each value two f64x2 locals, lo and hi) or for 1 (lane 0 of one local). */
  const body = (wide: boolean): Code => {
    const out: Code = [];
    const lets = new Map<string, Pair>();
    const keep = (lo: Code, hi?: Code): Pair => {
      const a = locals.take();
      out.push(...lo, ...set(a));
      if (!wide || !hi) return [a, a];
      const b = locals.take();
      out.push(...hi, ...set(b));
      return [a, b];
    };
    const both = (f: (l: number) => Code, x: Pair): Pair => keep(f(x[0]), x[1] !== x[0] ? f(x[1]) : undefined);
    const both2 = (f: (a: number, b: number) => Code, x: Pair, y: Pair): Pair => {
      const same = x[0] === x[1] && y[0] === y[1];
      return keep(f(x[0], y[0]), same ? undefined : f(x[1], y[1]));
    };
    const one = (m: Pair): Pair => both((l) => [...get(l), ...f64x2(1), ...op("and")], m);
    const truth = (e: Expr): Pair => {
      if (e.k === "bin" && COMPARE.has(e.op)) return both2((a, b) => [...get(a), ...get(b), ...op(BIN_F64[e.op]!)], val(e.a), val(e.b));
      if (e.k === "bin" && (e.op === "&&" || e.op === "||")) return both2((a, b) => [...get(a), ...get(b), ...op(e.op === "&&" ? "and" : "or")], truth(e.a), truth(e.b));
      if (e.k === "un" && e.op === "not") return both((a) => [...get(a), ...f64x2(0), ...op("f64Eq")], val(e.a));
      // a number is true when it is not 0 (NaN included)
      return both((a) => [...get(a), ...f64x2(0), ...op("f64Ne")], val(e));
    };
    const load = (buf: string, index: Expr): Pair => {
      const [at, off] = address(buf, index);
      if (coefficient(index, inner.v) === 0) return keep([...at, ...op("load32Splat"), ...memarg(2, off), ...op("promote")]);
      if (!wide) return keep([...at, ...op("load32Zero"), ...memarg(2, off), ...op("promote")]);
      out.push(...at, ...set(ADDR));
      return keep([...get(ADDR), ...op("load64Zero"), ...memarg(3, off), ...op("promote")], [...get(ADDR), ...op("load64Zero"), ...memarg(3, off + 8), ...op("promote")]);
    };
    const fn = (name: SimdMathFn, x: Pair): Pair => {
      // four f32 lanes (lo's two, hi's two) through the f32x4 function, then widened back
      const f32 = locals.take();
      const r = locals.take();
      out.push(...get(x[0]), ...op("demote"));
      if (wide) out.push(...get(x[1]), ...op("demote"), ...op("shuffle"), ...LOW_HALVES);
      out.push(...set(f32), ...simdMath(name, get(f32), locals, math), ...set(r));
      return keep([...get(r), ...op("promote")], wide ? [...get(r), ...get(r), ...op("shuffle"), ...HIGH_HALF, ...op("promote")] : undefined);
    };
    const val = (e: Expr): Pair => {
      switch (e.k) {
        case "num": return keep(f64x2(e.v));
        case "var": {
          const s = lets.get(e.name) ?? splat.get(e.name);
          if (s === undefined) throw new Error(`wasm: ${e.name} is not bound in an elementwise nest`);
          return typeof s === "number" ? [s, s] : s;
        }
        case "load": return load(e.buf, e.index);
        case "un": {
          const a = val(e.a);
          switch (e.op) {
            case "neg": return both((l) => [...get(l), ...op("f64Neg")], a);
            case "abs": return both((l) => [...get(l), ...op("f64Abs")], a);
            case "sqrt": return both((l) => [...get(l), ...op("f64Sqrt")], a);
            case "rsqrt": return both((l) => [...f64x2(1), ...get(l), ...op("f64Sqrt"), ...op("f64Div")], a);
            case "floor": return both((l) => [...get(l), ...op("f64Floor")], a);
            case "fround": return both((l) => [...get(l), ...op("demote"), ...op("promote")], a);
            case "not": return one(truth(e));
            case "exp": case "log": case "tanh": case "sigmoid": return fn(e.op, a);
            default: throw new Error(`wasm: ${e.op} in an elementwise nest`);
          }
        }
        case "bin":
          if (COMPARE.has(e.op) || e.op === "&&" || e.op === "||") return one(truth(e));
          return both2((a, b) => [...get(a), ...get(b), ...op(BIN_F64[e.op]!)], val(e.a), val(e.b));
        case "sel": {
          const c = truth(e.c);
          const [a, b] = [val(e.a), val(e.b)];
          return keep([...get(a[0]), ...get(b[0]), ...get(c[0]), ...op("bitselect")], wide ? [...get(a[1]), ...get(b[1]), ...get(c[1]), ...op("bitselect")] : undefined);
        }
        default: throw new Error(`wasm: a ${e.k} value in an elementwise nest`);
      }
    };
    for (const s of n.body) {
      if (s.k === "let") lets.set(s.name, val(s.init));
      if (s.k !== "store") continue;
      const v = val(s.add ? { k: "bin", op: "+", a: { k: "load", buf: s.buf, index: s.index }, b: s.value } : s.value);
      const [at, off] = address(s.buf, s.index);
      out.push(...at, ...get(v[0]), ...op("demote"));
      if (wide) out.push(...get(v[1]), ...op("demote"), ...op("shuffle"), ...LOW_HALVES, ...simd(0x0b), ...memarg(2, off));
      else out.push(...op("store32Lane"), ...memarg(2, off), 0);
    }
    return out;
  };
  const step = (l: number, by: number, to: number): Code => [...get(l), ...i32(by), ADD, 0x22, ...uleb(l), ...i32(to), NE, BR_IF, 0, END];
  /** `v` by `by` while v + by <= to (the outermost loop's range, passed in): `inner` each time. */
  const ranged = (v: number, by: number, inner: Code): Code => [
    ...BLOCK, ...LOOP, ...get(v), ...i32(by), ADD, ...get(TO), I32_GT_S, BR_IF, 1, ...inner, ...get(v), ...i32(by), ADD, ...set(v), BR, 0, END, END,
  ];
  const nest = (depth: number): Code => {
    const l = n.loops[depth]!;
    const v = loopAt.get(l.v)!;
    if (depth === 0 && n.loops.length > 1) return [...get(FROM), ...set(v), ...ranged(v, 1, nest(1))];
    if (depth < n.loops.length - 1) return [...i32(l.from), ...set(v), ...LOOP, ...nest(depth + 1), ...step(v, 1, l.to)];
    // the innermost loop, four elements at a time, then one (its range passed in when it is the only loop), after its bases
    if (depth === 0) return [...setBases(), ...get(FROM), ...set(v), ...ranged(v, 4, body(true)), ...ranged(v, 1, body(false))];
    const main = Math.floor((l.to - l.from) / 4) * 4;
    const out = [...setBases(), ...i32(l.from), ...set(v)];
    if (main > 0) out.push(...LOOP, ...body(true), ...step(v, 4, l.from + main));
    if (l.from + main < l.to) out.push(...LOOP, ...body(false), ...step(v, 1, l.to));
    return out;
  };
  code.push(...nest(0), END);
  const declared = vec([[...uleb(n.loops.length + 1 + bases.size), I32], [...uleb(locals.count), V128]]);
  const fnBody = [...declared, ...code];
  return { params, body: [...uleb(fnBody.length), ...fnBody] };
}
