// The kernel IR verifier: checks one kernel against the static sizes of its
// buffers. It proves with interval arithmetic over the loop ranges that every
// load and store stays inside its buffer (data-dependent indexes must be
// guarded by an `if` comparing them with constants), that every variable is
// bound where it is used, that no placeholder is left, and that the loop
// marks hold: an iteration of a `parallel` loop writes only elements indexed
// by that loop's variable and sets no local declared outside the loop (that is
// a reduction: mark it `reduce`), and a data-dependent accumulation is a
// `scatterAdd`. Tests run it after every kernel pass.
import type { Expr, LoopMark, Stmt } from "./kir.js";
import { printExpr } from "./printer.js";

/** A range of values [lo, hi]; with `base`, the value is the arena offset of that buffer plus [lo, hi]. */
interface Range {
  readonly lo: number;
  readonly hi: number;
  readonly base?: string;
}

const ANY: Range = { lo: -Infinity, hi: Infinity };
const BOOL: Range = { lo: 0, hi: 1 };
const I32: Range = { lo: -(2 ** 31), hi: 2 ** 31 - 1 };

const exact = (v: number): Range => ({ lo: v, hi: v });
const hull = (a: Range, b: Range): Range => (a.base !== b.base ? ANY : { lo: Math.min(a.lo, b.lo), hi: Math.max(a.hi, b.hi), ...(a.base ? { base: a.base } : {}) });
const plain = (r: Range): boolean => r.base === undefined;
const finite = (r: Range): boolean => Number.isFinite(r.lo) && Number.isFinite(r.hi);

/** What the verifier knows of a variable in scope. */
interface Var {
  range: Range;
  /** The loop variables its value depends on. */
  deps: Set<string>;
  /** How many loops enclose its declaration. */
  readonly depth: number;
  readonly loop: boolean;
  /** The variable this one narrows (inside an `if` on it), which a `set` updates too. */
  readonly parent?: Var;
}

/** An enclosing loop. */
interface Frame {
  readonly v: string;
  readonly mark: LoopMark;
  /** Its trip count: a loop of one iteration has nothing to race with. */
  readonly trips: number;
}

/** The buffers a kernel may touch: name → size in elements. */
export type BufferSizes = ReadonlyMap<string, number>;

/** A kernel that failed verification; `problems` lists each failure once. */
export class KirError extends Error {
  constructor(
    readonly kernel: string,
    readonly problems: readonly string[],
  ) {
    super(`kernel ${kernel}: ${problems.length} problem${problems.length === 1 ? "" : "s"}:\n  ${problems.join("\n  ")}`);
  }
}

/** The problems of a kernel body over buffers of the given sizes; empty when it verifies. */
export function kirProblems(body: readonly Stmt[], sizes: BufferSizes): string[] {
  return new Verifier(sizes).run(body);
}

/** Throws a KirError naming the kernel and every problem found, unless the body verifies. */
export function verifyKernel(name: string, body: readonly Stmt[], sizes: BufferSizes): void {
  const problems = kirProblems(body, sizes);
  if (problems.length) throw new KirError(name, problems);
}

class Verifier {
  private readonly problems = new Set<string>();
  /** Off while a loop body is walked the first time, to learn the ranges of the locals it sets. */
  private report = true;
  /** Ranges of values assigned to outer locals during a first walk. */
  private assigned = new Map<Var, Range>();
  private readonly frames: Frame[] = [];

  constructor(private readonly sizes: BufferSizes) {}

  run(body: readonly Stmt[]): string[] {
    this.block(body, new Map());
    return [...this.problems];
  }

  private fail(text: string): void {
    if (this.report) this.problems.add(text);
  }

  private block(stmts: readonly Stmt[], outer: ReadonlyMap<string, Var>): void {
    const scope = new Map(outer);
    for (const s of stmts) this.stmt(s, scope);
  }

  private stmt(s: Stmt, scope: Map<string, Var>): void {
    switch (s.k) {
      case "for": return this.loop(s, scope);
      case "let": {
        const init = this.expr(s.init, scope);
        scope.set(s.name, { range: init, deps: this.deps(s.init, scope), depth: this.frames.length, loop: false });
        return;
      }
      case "set": {
        const x = scope.get(s.name);
        const value = this.expr(s.value, scope);
        if (!x) return this.fail(`set of ${s.name}, which is not declared`);
        if (x.loop) return this.fail(`set of loop variable ${s.name}`);
        for (const f of this.frames.slice(x.depth)) {
          if (f.mark === "parallel" && f.trips > 1) this.fail(`${s.name} is declared outside parallel loop ${f.v} and set inside it: a reduction (mark ${f.v} reduce)`);
        }
        const deps = this.deps(s.value, scope);
        for (let v: Var | undefined = x; v; v = v.parent) {
          v.range = hull(v.range, value);
          deps.forEach((d) => v.deps.add(d));
          if (!this.report) this.assigned.set(v, hull(this.assigned.get(v) ?? value, value));
        }
        return;
      }
      case "store": return this.access(s.buf, s.index, s.abs === true, scope, s.add ? "accumulating store" : "store", true), void this.expr(s.value, scope);
      case "scatterAdd": return this.access(s.buf, s.index, false, scope, "scatter-add", false), void this.expr(s.value, scope);
      case "if": {
        this.expr(s.c, scope);
        this.block(s.then, this.narrowed(s.c, scope));
        if (s.else) this.block(s.else, scope);
        return;
      }
      case "extern": return this.block(s.reference, scope);
      case "comment": return;
      default: return s satisfies never;
    }
  }

  private loop(s: Stmt & { k: "for" }, scope: Map<string, Var>): void {
    if (!Number.isInteger(s.from) || !Number.isInteger(s.to)) this.fail(`loop ${s.v} has bounds ${s.from}..${s.to}, not integers`);
    if (s.to <= s.from) return;
    if (scope.has(s.v)) this.fail(`loop variable ${s.v} shadows a variable in scope`);
    const trips = s.to - s.from;
    // locals declared outside and set inside: widen their ranges to what any iteration may see
    const steps = increments(s.body);
    const mutated = [...setNames(s.body)].flatMap((n) => {
      const x = scope.get(n);
      return x && !x.loop ? [x] : [];
    });
    const before = new Map(mutated.map((x) => [x, x.range]));
    const stepOf = (x: Var): number | undefined => {
      const name = [...scope].find(([, v]) => v === x)?.[0];
      return name === undefined ? undefined : steps.get(name);
    };
    for (const x of mutated) {
      const step = stepOf(x);
      x.range = step === undefined ? ANY : shift(x.range, step * (trips - 1));
      x.deps.add(s.v);
    }
    const inner = new Map(scope);
    const self: Var = { range: { lo: s.from, hi: s.to - 1 }, deps: new Set([s.v]), depth: this.frames.length, loop: true };
    inner.set(s.v, self);
    this.frames.push({ v: s.v, mark: s.mark, trips });
    if (mutated.some((x) => stepOf(x) === undefined)) {
      // first walk: learn the ranges assigned to outer locals, without reporting
      const [report, assigned] = [this.report, this.assigned];
      this.report = false;
      this.assigned = new Map();
      this.block(s.body, inner);
      for (const x of mutated) {
        const step = stepOf(x);
        // a stepped local starts each iteration where the widening put it; the walk's own advance does not count
        x.range = step === undefined ? hull(before.get(x)!, this.assigned.get(x) ?? before.get(x)!) : shift(before.get(x)!, step * (trips - 1));
      }
      for (const [x, r] of this.assigned) if (assigned !== this.assigned) assigned.set(x, hull(assigned.get(x) ?? r, r));
      [this.report, this.assigned] = [report, assigned];
    }
    this.block(s.body, inner);
    this.frames.pop();
    for (const x of mutated) {
      const step = stepOf(x);
      if (step !== undefined) x.range = shift(before.get(x)!, step * trips);
    }
  }

  /** Checks one load or store index against its buffer and, for writes, the parallel loops around it. */
  private access(buf: string, index: Expr, abs: boolean, scope: ReadonlyMap<string, Var>, what: string, owned: boolean): void {
    const r = this.expr(index, scope);
    const size = this.sizes.get(buf);
    const at = `${what} ${buf}${abs ? "@" : ""}[${printExpr(index)}]`;
    if (size === undefined) return this.fail(`${at}: no buffer ${buf} in this kernel`);
    if (abs ? r.base !== buf : !plain(r)) {
      return this.fail(`${at}: the index is ${abs ? `not an offset from &${buf}` : "an arena offset, but the access is not marked abs"}`);
    }
    if (!finite(r)) return this.fail(`${at}: the index is data-dependent and not guarded by an if on its range`);
    if (r.lo < 0 || r.hi >= size) this.fail(`${at}: index in [${r.lo}, ${r.hi}], outside ${buf}[0..${size - 1}]`);
    if (!owned) return;
    const deps = this.deps(index, scope);
    for (const f of this.frames) {
      if (f.mark === "parallel" && f.trips > 1 && !deps.has(f.v)) this.fail(`${at}: every iteration of parallel loop ${f.v} writes the same element`);
    }
  }

  /** The loop variables an expression depends on (through locals). */
  private deps(e: Expr, scope: ReadonlyMap<string, Var>): Set<string> {
    const out = new Set<string>();
    const walk = (x: Expr): void => {
      switch (x.k) {
        case "var": scope.get(x.name)?.deps.forEach((d) => out.add(d)); return;
        case "num": case "base": case "form": return;
        case "load": return walk(x.index);
        case "un": return walk(x.a);
        case "bin": walk(x.a); return walk(x.b);
        case "sel": walk(x.c); walk(x.a); return walk(x.b);
        default: return x satisfies never;
      }
    };
    walk(e);
    return out;
  }

  /** The range of an expression; reports unbound variables, placeholders and loads out of bounds. */
  private expr(e: Expr, scope: ReadonlyMap<string, Var>): Range {
    switch (e.k) {
      case "num": return exact(e.v);
      case "var": {
        const x = scope.get(e.name);
        if (!x) this.fail(`${e.name} is used but not bound`);
        return x?.range ?? ANY;
      }
      case "base": return { lo: 0, hi: 0, base: e.buf };
      case "form": return this.fail(`form placeholder form${e.form} left in a finished kernel`), ANY;
      case "load": return this.access(e.buf, e.index, e.abs === true, scope, "load", false), ANY;
      case "un": return unRange(e.op, this.expr(e.a, scope));
      case "bin": return binRange(e.op, this.expr(e.a, scope), this.expr(e.b, scope));
      case "sel": {
        this.expr(e.c, scope);
        return hull(this.expr(e.a, scope), this.expr(e.b, scope));
      }
      default: return e satisfies never;
    }
  }

  /** The scope inside `if (c)`: variables compared with constants in a conjunction narrowed (index variables are integers). */
  private narrowed(c: Expr, scope: Map<string, Var>): Map<string, Var> {
    const out = new Map(scope);
    const facts = (e: Expr): void => {
      if (e.k !== "bin") return;
      if (e.op === "&&") return facts(e.a), facts(e.b);
      const flip: Partial<Record<string, string>> = { "<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==" };
      let [x, v, op] = [e.a, e.b, e.op as string];
      if (x.k === "num" && v.k === "var") [x, v, op] = [v, x, flip[op] ?? ""];
      if (x.k !== "var" || v.k !== "num") return;
      const was = out.get(x.name);
      if (!was || !plain(was.range)) return;
      let { lo, hi } = was.range;
      const n = v.v;
      if (op === "<") hi = Math.min(hi, Math.ceil(n) - 1);
      else if (op === "<=") hi = Math.min(hi, Math.floor(n));
      else if (op === ">") lo = Math.max(lo, Math.floor(n) + 1);
      else if (op === ">=") lo = Math.max(lo, Math.ceil(n));
      else if (op === "==") [lo, hi] = [Math.max(lo, n), Math.min(hi, n)];
      else return;
      out.set(x.name, { ...was, range: { lo, hi }, deps: was.deps, parent: was });
    };
    facts(c);
    return out;
  }
}

/** `r` widened by a step of `by` (either sign). */
function shift(r: Range, by: number): Range {
  return { ...r, lo: r.lo + Math.min(0, by), hi: r.hi + Math.max(0, by) };
}

/** Names set anywhere in `stmts`. */
function setNames(stmts: readonly Stmt[]): Set<string> {
  const out = new Set<string>();
  const walk = (ss: readonly Stmt[]): void => {
    for (const s of ss) {
      if (s.k === "set") out.add(s.name);
      else if (s.k === "for") walk(s.body);
      else if (s.k === "if") [s.then, s.else ?? []].forEach(walk);
      else if (s.k === "extern") walk(s.reference);
    }
  };
  walk(stmts);
  return out;
}

/** Locals advanced by a constant once per iteration (`x = x + c` at the top of a loop body, and set nowhere else in it). */
function increments(body: readonly Stmt[]): Map<string, number> {
  const out = new Map<string, number>();
  const all = new Map<string, number>();
  const count = (ss: readonly Stmt[]): void => {
    for (const s of ss) {
      if (s.k === "set") all.set(s.name, (all.get(s.name) ?? 0) + 1);
      else if (s.k === "for") count(s.body);
      else if (s.k === "if") [s.then, s.else ?? []].forEach(count);
      else if (s.k === "extern") count(s.reference);
    }
  };
  count(body);
  for (const s of body) {
    if (s.k !== "set" || all.get(s.name) !== 1) continue;
    const v = s.value;
    if (v.k === "bin" && v.op === "+" && v.a.k === "var" && v.a.name === s.name && v.b.k === "num") out.set(s.name, v.b.v);
  }
  return out;
}

function unRange(op: Expr & { k: "un" } extends { op: infer O } ? O : never, a: Range): Range {
  if (!plain(a)) return ANY;
  switch (op) {
    case "neg": return { lo: -a.hi, hi: -a.lo };
    case "floor": return { lo: Math.floor(a.lo), hi: Math.floor(a.hi) };
    case "toInt": return a.lo >= I32.lo && a.hi <= I32.hi ? { lo: Math.trunc(a.lo), hi: Math.trunc(a.hi) } : I32;
    case "abs": return a.lo >= 0 ? a : { lo: 0, hi: Math.max(-a.lo, a.hi) };
    case "sign": return { lo: -1, hi: 1 };
    case "not": return BOOL;
    case "exp": case "log": case "log1p": case "sqrt": case "rsqrt": case "sin": case "cos": case "tanh": case "sigmoid": case "fround": case "bf16":
      return ANY;
    default: return op satisfies never;
  }
}

function binRange(op: Expr & { k: "bin" } extends { op: infer O } ? O : never, a: Range, b: Range): Range {
  switch (op) {
    case "+":
      if (!plain(a) && !plain(b)) return ANY;
      return { lo: a.lo + b.lo, hi: a.hi + b.hi, ...(a.base ? { base: a.base } : b.base ? { base: b.base } : {}) };
    case "-":
      if (!plain(b)) return a.base === b.base ? { lo: a.lo - b.hi, hi: a.hi - b.lo } : ANY;
      return { lo: a.lo - b.hi, hi: a.hi - b.lo, ...(a.base ? { base: a.base } : {}) };
    case "*": {
      if (!plain(a) || !plain(b)) return ANY;
      const ps = [a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi];
      return ps.some(Number.isNaN) ? ANY : { lo: Math.min(...ps), hi: Math.max(...ps) };
    }
    case "idiv":
      if (!plain(a) || !plain(b) || b.lo !== b.hi || b.lo <= 0) return ANY;
      return { lo: Math.floor(a.lo / b.lo), hi: Math.floor(a.hi / b.lo) };
    case "mod": {
      if (!plain(a) || !plain(b) || b.lo !== b.hi || b.lo <= 0) return ANY;
      const m = b.lo;
      if (a.lo >= 0) return a.hi < m ? a : { lo: 0, hi: m - 1 };
      return { lo: -(m - 1), hi: m - 1 };
    }
    case "max": return plain(a) && plain(b) ? { lo: Math.max(a.lo, b.lo), hi: Math.max(a.hi, b.hi) } : ANY;
    case "min": return plain(a) && plain(b) ? { lo: Math.min(a.lo, b.lo), hi: Math.min(a.hi, b.hi) } : ANY;
    case "<": case "<=": case ">": case ">=": case "==": case "!=": case "&&": case "||": return BOOL;
    case "/": case "pow": return ANY;
    default: return op satisfies never;
  }
}
