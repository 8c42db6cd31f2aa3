// The gpu emitter: each kernel of the kernel IR becomes gpu.js kernel
// functions, one per device buffer it writes, each computing one element of
// that buffer per thread (`this.thread.x`).
//
// A device buffer (a "root") is a buffer of the schedule that is not a view,
// or a piece of a block: params, gradients and optimizer-state slots are views
// inside blocks, and a block no kernel addresses whole is split into one root
// per param (`gpuLayout`); a view's loads are offset by its place in its root. A kernel function reads
// the roots it needs as arguments (flat arrays) and returns the new value of
// its root at element t; the runtime binds the result to the root once every
// function of the kernel has run, so each reads the values from before it.
//
// A thread runs the kernel's statements with every store to its root turned
// into `if (index == t) res = value` (a store that adds: `res += value`), and
// the stores to other roots dropped. Loops around those stores whose index is
// affine in the loop variables are narrowed to the iterations that can reach
// t (for a one-to-one loop nest, exactly one), so a thread does the work of
// its element only; the guard keeps the result exact whatever the narrowing.
// A scatter-add becomes a gather the same way: the thread walks the
// iterations whose index can be t and adds those that are, never racing
// another thread. Local and loop names are renamed (`v0`, `v1`, ...) and
// roots are `r<index>`, so no name from the user's graph reaches the code.
import type { BinOp, Expr, Stmt, UnOp } from "../../kernel/kir.js";
import { visitKir } from "../../kernel/kir.js";
import type { Buffer } from "../../lower/lower.js";
import type { Kernel, Schedule } from "../../lower/schedule.js";
import type { ArenaPlan } from "../../plan/arena.js";
import { offsetOf } from "../../plan/arena.js";
import type { GpuRootEntry } from "../../../runtime/gpuDevice.js";

/** A device buffer: a buffer of the schedule that is no view, with its place in the host arenas (as the runtime reads it). */
export type GpuRoot = GpuRootEntry;

/** One gpu.js kernel function: the new value of root `out`, from roots `args`. */
export interface GpuPart {
  readonly out: number;
  readonly args: readonly number[];
  /** Whether its last argument is the number Infinity (WGSL has no literal for it). */
  readonly inf: boolean;
  /** The function's JavaScript source, `function name(r0, ...) { ... }`. */
  readonly source: string;
  readonly fnName: string;
}

/** A kernel of the schedule as gpu.js functions, one per root it writes. */
export interface GpuKernel {
  readonly name: string;
  readonly parts: readonly GpuPart[];
}

/** The roots of a schedule, and the root of each buffer with its place in it. */
export interface GpuLayout {
  readonly roots: readonly GpuRoot[];
  readonly rootOf: ReadonlyMap<Buffer, { readonly root: number; readonly at: number }>;
}

/** The outermost buffer holding `b`, and `b`'s element offset in it. */
function outermost(b: Buffer): { block: Buffer; at: number } {
  let at = 0;
  let x = b;
  for (; x.within; x = x.within.block) at += x.within.at;
  return { block: x, at };
}

/**
 * The device buffers of a schedule. A block (params, gradients, an
 * optimizer-state slot) that no kernel addresses as a whole is split at its
 * views: each run of overlapping views (a param, its gradient, its state
 * slot) is a root of its own, so a kernel that writes one param's gradient
 * rewrites that gradient, not the whole block. A block some kernel reads or
 * writes whole stays one root, with its views inside it.
 */
export function gpuLayout(s: Schedule, plan: ArenaPlan): GpuLayout {
  const buffers = new Set<Buffer>(s.buffers);
  for (const k of s.kernels) for (const b of Object.values(k.buffers)) buffers.add(b);
  const whole = new Set<Buffer>();
  for (const k of s.kernels) for (const b of Object.values(k.buffers)) if (!b.within) whole.add(b);
  // the views of each block that is split, as element ranges of the block
  const ranges = new Map<Buffer, [number, number][]>();
  for (const b of buffers) {
    if (!b.within) continue;
    const { block, at } = outermost(b);
    if (whole.has(block)) continue;
    let list = ranges.get(block);
    if (!list) ranges.set(block, (list = []));
    list.push([at, at + b.size]);
  }
  const roots: GpuRoot[] = [];
  const index = new Map<Buffer, number>();
  /** The roots of a split block: [start, end, root] in order, covering it (gaps are roots too). */
  const pieces = new Map<Buffer, [number, number, number][]>();
  const newRoot = (r: Buffer, label: string, start: number, size: number): number => {
    // compile refuses precision "mixed" for this backend, so no buffer lives in arena H
    if (r.arena === "H") throw new Error(`emit: buffer "${r.label}" is in the bfloat16 arena H, which the gpu backend does not have`);
    const fill = r.role === "const" && r.fill ? (r.fill.length === 1 ? Array.from({ length: size }, () => r.fill![0]!) : r.fill.slice(start, start + size)) : undefined;
    roots.push({ label, arena: r.arena, offset: offsetOf(plan, r) + start, size, ...(fill ? { fill } : {}) });
    return roots.length - 1;
  };
  const split = (block: Buffer): [number, number, number][] => {
    let list = pieces.get(block);
    if (list) return list;
    list = [];
    const sorted = [...ranges.get(block)!].sort((a, b) => a[0] - b[0] || b[1] - a[1]);
    const labelAt = (start: number, end: number): string => {
      // the view that covers the piece exactly names it; else the block and the range
      for (const b of buffers) {
        if (!b.within) continue;
        const o = outermost(b);
        if (o.block === block && o.at === start && o.at + b.size === end) return b.label;
      }
      return `${block.label}[${start}:${end}]`;
    };
    let cursor = 0;
    for (let i = 0; i < sorted.length; ) {
      const start = sorted[i]![0];
      let end = sorted[i]![1];
      for (i++; i < sorted.length && sorted[i]![0] < end; i++) end = Math.max(end, sorted[i]![1]);
      if (start > cursor) list.push([cursor, start, newRoot(block, labelAt(cursor, start), cursor, start - cursor)]);
      list.push([start, end, newRoot(block, labelAt(start, end), start, end - start)]);
      cursor = end;
    }
    if (cursor < block.size) list.push([cursor, block.size, newRoot(block, labelAt(cursor, block.size), cursor, block.size - cursor)]);
    pieces.set(block, list);
    return list;
  };
  const rootOf = new Map<Buffer, { root: number; at: number }>();
  for (const b of buffers) {
    const { block, at } = outermost(b);
    if (ranges.has(block)) {
      // a split block itself has no root: only its views reach the device
      if (b === block) continue;
      const piece = split(block).find(([start, end]) => at >= start && at < end)!;
      rootOf.set(b, { root: piece[2], at: at - piece[0] });
      continue;
    }
    let i = index.get(block);
    if (i === undefined) index.set(block, (i = newRoot(block, block.label, 0, block.size)));
    rootOf.set(b, { root: i, at });
  }
  return { roots, rootOf };
}

/** A KIR name as an identifier of the emitted code (never the name itself). */
class Names {
  private readonly map = new Map<string, string>();
  of(name: string): string {
    let n = this.map.get(name);
    if (!n) this.map.set(name, (n = `v${this.map.size}`));
    return n;
  }
  fresh(): string {
    return this.of(`\u0000${this.map.size}`);
  }
}

/** An affine form Σ c[v]·v + k over loop variables. */
interface Affine {
  readonly c: ReadonlyMap<string, number>;
  readonly k: number;
}

const affConst = (k: number): Affine => ({ c: new Map(), k });
function affAdd(a: Affine, b: Affine, sign = 1): Affine {
  const c = new Map(a.c);
  for (const [v, x] of b.c) c.set(v, (c.get(v) ?? 0) + sign * x);
  for (const [v, x] of c) if (x === 0) c.delete(v);
  return { c, k: a.k + sign * b.k };
}
function affScale(a: Affine, f: number): Affine {
  return f === 0 ? affConst(0) : { c: new Map([...a.c].map(([v, x]) => [v, x * f])), k: a.k * f };
}

/** `e` as an affine form over loop variables, lets substituted (`env`), or undefined. */
function affineOf(e: Expr, env: ReadonlyMap<string, Affine | undefined>, loops: ReadonlySet<string>): Affine | undefined {
  switch (e.k) {
    case "num": return Number.isInteger(e.v) ? affConst(e.v) : undefined;
    case "var":
      if (env.has(e.name)) return env.get(e.name);
      return loops.has(e.name) ? { c: new Map([[e.name, 1]]), k: 0 } : undefined;
    case "bin": {
      if (e.op !== "+" && e.op !== "-" && e.op !== "*") return undefined;
      const a = affineOf(e.a, env, loops);
      const b = affineOf(e.b, env, loops);
      if (!a || !b) return undefined;
      if (e.op === "+") return affAdd(a, b);
      if (e.op === "-") return affAdd(a, b, -1);
      if (a.c.size === 0) return affScale(b, a.k);
      if (b.c.size === 0) return affScale(a, b.k);
      return undefined;
    }
    default: return undefined;
  }
}

/** A number as a float literal of the emitted code (gpu.js types a literal with a point as a float). */
function lit(v: number): string {
  if (Number.isNaN(v)) return "(INF - INF)";
  if (v === Infinity) return "INF";
  if (v === -Infinity) return "(-INF)";
  const s = String(Math.abs(v));
  const text = /[.e]/.test(s) ? s : `${s}.0`;
  return v < 0 || Object.is(v, -0) ? `(-${text})` : text;
}

const UN: Readonly<Record<UnOp, (a: string) => string>> = {
  neg: (a) => `(-${a})`,
  exp: (a) => `Math.exp(${a})`,
  log: (a) => `Math.log(${a})`,
  // log(1 + a)·a / ((1 + a) − 1): accurate near 0, where log(1 + a) alone rounds to 0
  log1p: (a) => `((1.0 + ${a}) == 1.0 ? ${a} : Math.log(1.0 + ${a}) * ${a} / ((1.0 + ${a}) - 1.0))`,
  sqrt: (a) => `Math.sqrt(${a})`,
  rsqrt: (a) => `(1.0 / Math.sqrt(${a}))`,
  abs: (a) => `Math.abs(${a})`,
  sign: (a) => `(${a} > 0.0 ? 1.0 : (${a} < 0.0 ? -1.0 : ${a}))`,
  sin: (a) => `Math.sin(${a})`,
  cos: (a) => `Math.cos(${a})`,
  tanh: (a) => `Math.tanh(${a})`,
  sigmoid: (a) => `(1.0 / (1.0 + Math.exp(-${a})))`,
  floor: (a) => `Math.floor(${a})`,
  not: (a) => `(${a} == 0.0 ? 1.0 : 0.0)`,
  toInt: (a) => `(${a} < 0.0 ? Math.ceil(${a}) : Math.floor(${a}))`,
  // every value on the device is a float32 already
  fround: (a) => a,
  bf16: () => {
    throw new Error("emit: the gpu backend has no bfloat16 rounding (compile refuses precision \"mixed\" for it)");
  },
};

const cmp = (op: string) => (a: string, b: string) => `(${a} ${op} ${b} ? 1.0 : 0.0)`;
const BIN: Readonly<Record<BinOp, (a: string, b: string) => string>> = {
  "+": (a, b) => `(${a} + ${b})`,
  "-": (a, b) => `(${a} - ${b})`,
  "*": (a, b) => `(${a} * ${b})`,
  "/": (a, b) => `(${a} / ${b})`,
  max: (a, b) => `Math.max(${a}, ${b})`,
  min: (a, b) => `Math.min(${a}, ${b})`,
  // WGSL's pow is undefined below 0: an integer power of a negative base takes the sign of its parity
  pow: (a, b) => `(${a} < 0.0 && Math.floor(${b}) == ${b} ? (Math.abs(${b} % 2.0) == 1.0 ? -1.0 : 1.0) * Math.pow(-${a}, ${b}) : Math.pow(${a}, ${b}))`,
  "<": cmp("<"),
  "<=": cmp("<="),
  ">": cmp(">"),
  ">=": cmp(">="),
  "==": cmp("=="),
  "!=": cmp("!="),
  "&&": (a, b) => `(${a} != 0.0 && ${b} != 0.0 ? 1.0 : 0.0)`,
  "||": (a, b) => `(${a} != 0.0 || ${b} != 0.0 ? 1.0 : 0.0)`,
  idiv: (a, b) => `Math.floor(${a} / ${b})`,
  mod: (a, b) => `(${a} % ${b})`,
};

/** Operators whose operands appear more than once in their code: operands that are not names are hoisted into locals. */
const REPEATS = new Set<string>(["log1p", "sign", "toInt", "pow"]);

/** The emitter of one root's function. */
class PartEmitter {
  readonly names = new Names();
  readonly args = new Set<number>();
  usesInf = false;
  private readonly loopVars = new Set<string>();
  private readonly env = new Map<string, Affine | undefined>();
  private readonly ranges = new Map<string, readonly [number, number]>();

  constructor(
    private readonly k: Kernel,
    private readonly layout: GpuLayout,
    private readonly root: number,
  ) {}

  private rootOf(buf: string): { root: number; at: number } {
    const b = this.k.buffers[buf];
    if (!b) throw new Error(`gpu: kernel ${this.k.name} uses buffer ${buf}, which it does not declare`);
    return this.layout.rootOf.get(b)!;
  }

  private writesRoot(s: Stmt): boolean {
    return (s.k === "store" || s.k === "scatterAdd") && this.rootOf(s.buf).root === this.root;
  }

  /** The index of `buf[index]` in its root's array. */
  private rootIndex(buf: string, index: Expr, pre: string[]): { root: number; index: string } {
    const { root, at } = this.rootOf(buf);
    const i = this.expr(index, pre);
    return { root, index: at === 0 ? i : `(${i} + ${lit(at)})` };
  }

  expr(e: Expr, pre: string[]): string {
    switch (e.k) {
      case "num":
        if (!Number.isFinite(e.v)) this.usesInf = true;
        return lit(e.v);
      case "var": return this.names.of(e.name);
      case "load": {
        if (e.abs) throw new Error(`gpu: kernel ${this.k.name} addresses the arena directly (${e.buf}@), which the gpu target does not emit`);
        const { root, index } = this.rootIndex(e.buf, e.index, pre);
        this.args.add(root);
        return `r${root}[${index}]`;
      }
      case "un": {
        const a = this.operand(e.a, pre, REPEATS.has(e.op));
        return UN[e.op](a);
      }
      case "bin": {
        const many = REPEATS.has(e.op);
        return BIN[e.op](this.operand(e.a, pre, many), this.operand(e.b, pre, many));
      }
      case "sel": return `(${this.expr(e.c, pre)} != 0.0 ? ${this.expr(e.a, pre)} : ${this.expr(e.b, pre)})`;
      case "base": case "form":
        throw new Error(`gpu: kernel ${this.k.name} has a ${e.k} expression, which no finished kernel of the gpu target holds`);
      default: return e satisfies never;
    }
  }

  /** An operand's code; when it is used more than once, a local holding it (evaluated once). */
  private operand(e: Expr, pre: string[], hoist: boolean): string {
    const code = this.expr(e, pre);
    if (!hoist || e.k === "var" || e.k === "num") return code;
    const n = this.names.fresh();
    pre.push(`let ${n} = ${code};`);
    return n;
  }

  /** The indexes (as affine forms) at which the stores to this root inside `stmts` may write, or undefined when one is not affine. */
  private storeForms(stmts: readonly Stmt[]): Affine[] | undefined {
    const env = new Map(this.env);
    const loops = new Set(this.loopVars);
    const forms: Affine[] = [];
    let ok = true;
    // candidate values of locals used as scatter indexes: every value assigned to them
    const assigned = new Map<string, Expr[]>();
    visitKir(stmts, {
      stmt: (s) => {
        if (s.k === "let") assigned.set(s.name, [...(assigned.get(s.name) ?? []), s.init]);
        if (s.k === "set") assigned.set(s.name, [...(assigned.get(s.name) ?? []), s.value]);
      },
    });
    const walk = (ss: readonly Stmt[]): void => {
      for (const s of ss) {
        if (!ok) return;
        switch (s.k) {
          case "for":
            loops.add(s.v);
            walk(s.body);
            break;
          case "let": env.set(s.name, affineOf(s.init, env, loops)); break;
          case "set": env.set(s.name, undefined); break;
          case "if": walk(s.then); if (s.else) walk(s.else); break;
          case "store": case "scatterAdd": {
            if (!this.writesRoot(s)) break;
            const { at } = this.rootOf(s.buf);
            const direct = affineOf(s.index, env, loops);
            if (direct) {
              forms.push(affAdd(direct, affConst(at)));
              break;
            }
            // a data-dependent index: one of the values assigned to it (a negative constant is never stored, its store is guarded)
            const cands = s.index.k === "var" ? assigned.get(s.index.name) : undefined;
            if (!cands) { ok = false; break; }
            for (const c of cands) {
              const f = affineOf(c, env, loops);
              if (!f) { ok = false; break; }
              if (f.c.size === 0 && f.k < 0) continue;
              forms.push(affAdd(f, affConst(at)));
            }
            break;
          }
          default: break;
        }
      }
    };
    walk(stmts);
    return ok ? forms : undefined;
  }

  /** The bounds of loop `v` (a loop around stores to this root) that can write element t: [lo, hi) as code, or undefined. */
  private narrow(s: Stmt & { k: "for" }, pre: string[]): { lo: string; hi: string } | undefined {
    this.loopVars.add(s.v);
    const forms = this.storeForms(s.body);
    this.loopVars.delete(s.v);
    if (!forms || forms.length === 0) return undefined;
    // ranges of the loops inside (a name used by two loops: the hull of both)
    const inner = new Map<string, [number, number]>();
    visitKir(s.body, {
      stmt: (x) => {
        if (x.k !== "for") return;
        const r = inner.get(x.v);
        inner.set(x.v, r ? [Math.min(r[0], x.from), Math.max(r[1], x.to - 1)] : [x.from, x.to - 1]);
      },
    });
    const los: string[] = [];
    const his: string[] = [];
    for (const f of forms) {
      const c = f.c.get(s.v);
      if (!c) return undefined;
      let rmin = f.k;
      let rmax = f.k;
      const known: string[] = [];
      for (const [v, x] of f.c) {
        if (v === s.v) continue;
        const r = inner.get(v);
        if (r) {
          rmin += Math.min(x * r[0], x * r[1]);
          rmax += Math.max(x * r[0], x * r[1]);
        } else if (this.loopVars.has(v)) {
          known.push(`${lit(x)} * ${this.names.of(v)}`);
        } else {
          return undefined;
        }
      }
      const t = known.length ? `(t - ${known.join(" - ")})` : "t";
      // t = known + c·v + rest, rest in [rmin, rmax]
      const [a, b] = c > 0 ? [rmax, rmin] : [rmin, rmax];
      los.push(`Math.ceil((${t} - ${lit(a)}) / ${lit(c)})`);
      his.push(`(Math.floor((${t} - ${lit(b)}) / ${lit(c)}) + 1.0)`);
    }
    const lo = this.names.fresh();
    const hi = this.names.fresh();
    const fold = (f: string, xs: string[]): string => xs.reduce((acc, x) => `${f}(${acc}, ${x})`);
    pre.push(`const ${lo} = Math.max(${lit(s.from)}, ${fold("Math.min", los)});`);
    pre.push(`const ${hi} = Math.min(${lit(s.to)}, ${fold("Math.max", his)});`);
    return { lo, hi };
  }

  /** Whether `stmts` set a local declared outside them. */
  private setsOuter(stmts: readonly Stmt[]): boolean {
    const declared = new Set<string>();
    let found = false;
    visitKir(stmts, {
      stmt: (s) => {
        if (s.k === "let") declared.add(s.name);
        if (s.k === "set" && !declared.has(s.name)) found = true;
      },
    });
    return found;
  }

  /** Whether `stmts` write this root, or set a local declared outside them. */
  private matters(stmts: readonly Stmt[]): boolean {
    let writes = false;
    visitKir(stmts, { stmt: (s) => (writes ||= this.writesRoot(s)) });
    return writes || this.setsOuter(stmts);
  }

  stmts(ss: readonly Stmt[], indent: string): string[] {
    const out: string[] = [];
    for (const s of ss) out.push(...this.stmt(s, indent));
    return out;
  }

  private stmt(s: Stmt, ind: string): string[] {
    const pre: string[] = [];
    const line = (text: string): string[] => [...pre.map((p) => ind + p), ind + text];
    switch (s.k) {
      case "comment": return [];
      case "let": {
        this.env.set(s.name, affineOf(s.init, this.env, this.loopVars));
        return line(`let ${this.names.of(s.name)} = ${this.expr(s.init, pre)};`);
      }
      case "set": {
        this.env.set(s.name, undefined);
        return line(`${this.names.of(s.name)} = ${this.expr(s.value, pre)};`);
      }
      case "store": case "scatterAdd": {
        if (!this.writesRoot(s)) return [];
        const { index } = this.rootIndex(s.buf, s.index, pre);
        const value = this.expr(s.value, pre);
        const add = s.k === "scatterAdd" || s.add === true;
        return line(`if (${index} == t) { res = ${add ? `res + ${value}` : value}; }`);
      }
      case "if": {
        if (!this.matters(s.then) && !(s.else && this.matters(s.else))) return [];
        const c = this.expr(s.c, pre);
        const els = s.else ? [`${ind}} else {`, ...this.scoped(() => this.stmts(s.else!, ind + "  "))] : [];
        return [...line(`if (${c} != 0.0) {`), ...this.scoped(() => this.stmts(s.then, ind + "  ")), ...els, `${ind}}`];
      }
      case "for": {
        if (!this.matters(s.body) || s.to <= s.from) return [];
        const v = this.names.of(s.v);
        // iterations that carry a local to the next one must all run; others may be skipped
        const bounds = this.setsOuter(s.body) ? undefined : this.narrow(s, pre);
        this.ranges.set(s.v, [s.from, s.to]);
        const body = this.scoped(() => {
          this.loopVars.add(s.v);
          return this.stmts(s.body, ind + "  ");
        });
        if (!bounds) {
          return [...line(`for (let ${v} = ${s.from}; ${v} < ${s.to}; ${v}++) {`), ...body, `${ind}}`];
        }
        const k = this.names.fresh();
        return [
          ...line(`for (let ${k} = 0; ${k} < ${s.to - s.from}; ${k}++) {`),
          `${ind}  const ${v} = ${bounds.lo} + ${k};`,
          `${ind}  if (${v} >= ${bounds.hi}) { break; }`,
          ...body,
          `${ind}}`,
        ];
      }
      case "extern":
        throw new Error(`gpu: kernel ${this.k.name} has an extern ${s.call}, which the gpu target does not run`);
      default: return s satisfies never;
    }
  }

  /** Runs `f` with the locals and loops it declares forgotten afterwards. */
  private scoped<T>(f: () => T): T {
    const env = new Map(this.env);
    const loops = new Set(this.loopVars);
    try {
      return f();
    } finally {
      this.env.clear();
      for (const [k, v] of env) this.env.set(k, v);
      this.loopVars.clear();
      for (const v of loops) this.loopVars.add(v);
    }
  }
}

/** A kernel or buffer name as part of an identifier. */
export function identifierPart(name: string): string {
  const id = name.replace(/[^A-Za-z0-9_]/g, "_");
  return /^[0-9]/.test(id) ? `_${id}` : id;
}

/** Checks what the gpu target cannot run: a kernel reading a buffer it wrote before, at another element. */
function checkKernel(k: Kernel): void {
  const stored = new Map<string, string>();
  visitKir(k.body, {
    stmt: (s) => {
      if (s.k === "store" || s.k === "scatterAdd") stored.set(s.buf, JSON.stringify(s.index));
    },
    expr: (e) => {
      if (e.k !== "load" || !stored.has(e.buf)) return;
      if (stored.get(e.buf) !== JSON.stringify(e.index)) {
        throw new Error(`gpu: kernel ${k.name} reads ${e.buf} after writing it at another element; the gpu target computes a kernel's writes from the values before it (compile with fusion off)`);
      }
    },
  });
}

/** The gpu.js functions of kernel `k`: one per root it writes, named `<kernel>__<root label>`. */
export function gpuKernel(k: Kernel, layout: GpuLayout): GpuKernel {
  checkKernel(k);
  const written: number[] = [];
  visitKir(k.body, {
    stmt: (s) => {
      if (s.k !== "store" && s.k !== "scatterAdd") return;
      const b = k.buffers[s.buf];
      const r = b ? layout.rootOf.get(b)?.root : undefined;
      if (r !== undefined && !written.includes(r)) written.push(r);
    },
  });
  const parts = written.map((root): GpuPart => {
    const em = new PartEmitter(k, layout, root);
    const body = em.stmts(k.body, "  ");
    // the thread's element starts at its value before the kernel (a kernel may write part of its root)
    em.args.add(root);
    const args = [...em.args].sort((a, b) => a - b);
    const fnName = `${identifierPart(k.name)}__${identifierPart(layout.roots[root]!.label)}`;
    const params = [...args.map((a) => `r${a}`), ...(em.usesInf ? ["INF"] : [])];
    const source = [`function ${fnName}(${params.join(", ")}) {`, "  const t = this.thread.x;", `  let res = r${root}[t];`, ...body, "  return res;", "}"].join("\n");
    return { out: root, args, inf: em.usesInf, source, fnName };
  });
  return { name: k.name, parts };
}

/** Text of a `//` comment line: no line breaks, so nothing from a graph ends the comment. */
function commentText(s: string): string {
  return s.replace(/[\r\n\u2028\u2029]/g, " ");
}

/** The file name of a gpu bundle's kernel module. */
export const GPU_MODULE = "kernels.gpu.js";

/**
 * The gpu bundle's kernel module: each kernel's gpu.js functions, with the
 * graph node and model line they compute in comments, and the `ROOTS` and
 * `KERNELS` tables the runtime's gpu device reads.
 */
export function emitGpuModule(s: Schedule, plan: ArenaPlan): { source: string; kernels: readonly GpuKernel[]; functions: ReadonlyMap<string, { file: string; text: string }> } {
  const layout = gpuLayout(s, plan);
  const kernels = s.kernels.map((k) => gpuKernel(k, layout));
  const lines = [
    `// gpu.js kernels of ${commentText(JSON.stringify(s.graph.name))}: one function per device buffer a kernel writes, one element per thread.`,
    "// The runtime's gpu device (runtime/gpuDevice.ts) runs them in KERNELS order on WebGPU, every buffer kept on the device.",
    "",
  ];
  const functions = new Map<string, { file: string; text: string }>();
  s.kernels.forEach((k, i) => {
    const text = kernels[i]!.parts.map((p) =>
      [`// ${commentText(k.name)}: ${commentText(k.what)}  # ${commentText(k.where)}`, `// writes ${commentText(layout.roots[p.out]!.label)}`, p.source].join("\n"),
    );
    functions.set(k.name, { file: GPU_MODULE, text: text.join("\n\n") });
    lines.push(...text.flatMap((t) => [t, ""]));
  });
  lines.push(`export const ROOTS = ${JSON.stringify(layout.roots)};`, "");
  lines.push("export const KERNELS = [");
  for (const g of kernels) {
    const parts = g.parts.map((p) => `{ out: ${p.out}, args: ${JSON.stringify(p.args)}, inf: ${p.inf}, fn: ${p.fnName} }`);
    lines.push(`  { name: ${JSON.stringify(g.name)}, parts: [${parts.join(", ")}] },`);
  }
  lines.push("];", "");
  return { source: lines.join("\n"), kernels, functions };
}
