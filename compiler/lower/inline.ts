// Builds the kernel IR of fused computations: a value at given coordinates
// becomes an expression over loads of stored buffers, locals of the kernel
// and literals. Each value is computed once per scope (a `let`), placed in the
// outermost loop whose variables it depends on. Buffer indexes are left as
// placeholders ("forms") until the kernel's loops are laid out.
import type { Tensor } from "../ir/node.js";
import { OPS } from "../ops/index.js";
import type { NodeOf } from "../ops/def.js";
import type { OpKind } from "../ir/kinds.js";
import type { Expr, Stmt } from "../kernel/kir.js";
import { bin, formRef, load, mapExprs, num, ref, un, visitKir } from "../kernel/kir.js";
import type { Coord } from "../kernel/coords.js";
import { axesUsed, canonical, coordsKey, flatIndex } from "../kernel/coords.js";
import { inputCoords } from "../fusion/coords.js";
import type { Precision } from "./lower.js";
import { comparableMixed, uniformValue } from "./lower.js";
import type { Value } from "../fusion/program.js";
import { storageOf } from "../fusion/program.js";
import { sanitize } from "./names.js";

/** Flat buffer offsets (or, for oneHot, coordinate values) as affine forms, `form` placeholders in expressions. */
export class Forms {
  readonly list: Coord[] = [];
  private readonly keys = new Map<string, number>();

  /** The placeholder of a form (shared by equal forms). */
  ref(a: Coord): Expr {
    const key = `${a.c.join(",")}+${a.k}`;
    let i = this.keys.get(key);
    if (i === undefined) {
      i = this.list.length;
      this.list.push(a);
      this.keys.set(key, i);
    }
    return formRef(i);
  }
}

/** Replaces form placeholders in statements by index expressions. */
export function substitute(stmts: readonly Stmt[], form: (i: number) => Expr): Stmt[] {
  return mapExprs(stmts, (e) => (e.k === "form" ? form(e.form) : e));
}

/** A block of statements inside some loops: which frame axes are bound there, and what it computed. */
export class Scope {
  readonly stmts: Stmt[] = [];
  readonly memo = new Map<string, Expr>();
  readonly depth: number;

  constructor(
    readonly bound: readonly boolean[],
    readonly parent?: Scope,
  ) {
    this.depth = parent ? parent.depth + 1 : 0;
  }

  /** The outermost scope (from here outwards) where every axis in `used` is bound. */
  outermost(used: readonly boolean[]): Scope {
    let s: Scope = this;
    while (s.parent && used.every((u, a) => !u || s.parent!.bound[a])) s = s.parent;
    return s;
  }

  lookup(key: string): Expr | undefined {
    for (let s: Scope | undefined = this; s; s = s.parent) {
      const e = s.memo.get(key);
      if (e) return e;
    }
    return undefined;
  }
}

/** How a kernel sees the values it reads. */
export interface InlineEnv {
  readonly n: number;
  readonly precision: Precision;
  /** Mixed precision: comparisons see their f32 operands as bfloat16 (see `comparable`). */
  readonly mixed?: boolean;
  readonly forms: Forms;
  /** The kernel buffer name of a value read from memory, if it is read from memory here. */
  readonly buffer: (v: Value) => string | undefined;
  /** Names for locals, from the printed names of nodes. */
  readonly nameOf: (t: Tensor) => string;
  /** Told of every local that holds one value's element (for the checked kernels of --check-numerics). */
  readonly holds?: (local: string, v: Value) => void;
}

/** An expression and the scope it is valid in. */
interface Placed {
  readonly e: Expr;
  readonly scope: Scope;
}

/** The deeper of two scopes on one chain. */
const deeper = (a: Scope, b: Scope): Scope => (a.depth >= b.depth ? a : b);

/**
 * Computes values inline. `local(v, coords)` may hand back a value the kernel
 * already holds (an accumulator, an epilogue value); every value computed
 * here is recorded in `computed` (for the kernel's comments).
 */
export class Inliner {
  readonly computed = new Set<Value>();
  private counter = 0;
  private readonly used = new Set<string>();

  constructor(
    private readonly env: InlineEnv,
    private readonly local: (v: Value, coords: readonly Coord[], scope: Scope) => Expr | undefined = () => undefined,
  ) {}

  /** A fresh local name derived from a node's printed name. */
  fresh(base: string): string {
    let name = `${sanitize(base, 16)}`;
    if (!/^[A-Za-z_]/.test(name)) name = `v${name}`;
    name = `${name}_`;
    while (this.used.has(name)) name = `${sanitize(base, 16)}_${++this.counter}`;
    this.used.add(name);
    return name;
  }

  /** `v`'s element at `coords`, placed in `scope` or an outer scope. */
  value(v: Value, coords: readonly Coord[], scope: Scope): Expr {
    return this.place(v, coords, scope).e;
  }

  /** The value of `v` computed from its definition (never loaded), e.g. a member being stored. */
  compute(v: Value, coords: readonly Coord[], scope: Scope): Expr {
    return this.define(v, canonical(coords, v.node.shape, this.env.n), scope).e;
  }

  /** A load of a stored value at coordinates in its own shape. */
  loadAt(v: Value, coords: readonly Coord[], shape = v.node.shape): Expr {
    const name = this.env.buffer(v);
    if (!name) throw new Error(`inline: ${String(v.node)} is not in memory here`);
    return load(name, this.env.forms.ref(flatIndex(coords, shape, this.env.n)));
  }

  private place(v: Value, raw: readonly Coord[], scope: Scope): Placed {
    const coords = canonical(raw, v.node.shape, this.env.n);
    const at = scope.outermost(axesUsed(coords, this.env.n));
    if (v.kind === "literal") return { e: num(this.literal(v)), scope: scope.outermost([]) };
    const held = this.local(v, coords, scope);
    if (held) return { e: held, scope };
    if (v.kind === "alias") {
      const s = storageOf(v);
      if (s.kind === "literal") return { e: num(this.literal(s)), scope: scope.outermost([]) };
      if (this.env.buffer(s)) return { e: this.loadAt(s, coords, v.node.shape), scope: at };
      const ins = inputCoords(v, coords, this.env.n);
      if (!ins) throw new Error(`inline: ${String(v.node)} needs its input in memory`);
      return this.place(v.inputs[0]!, ins[0]!, scope);
    }
    if (this.env.buffer(v)) return { e: this.loadAt(v, coords), scope: at };
    return this.define(v, coords, scope);
  }

  /**
   * The operands of a comparison as f32 values in an f32 kernel. A value
   * computed inline lives in a float64 local, unrounded, while a stored one was
   * rounded to f32: `a == max(a)` must hold for the element that is the max
   * whether `a` was loaded or recomputed, so inline operands are rounded as
   * storing them would (Math.fround is monotonic, so orderings agree too).
   */
  private comparable(v: Value, args: readonly Expr[]): readonly Expr[] {
    if (this.env.mixed) return comparableMixed(v.node, args);
    if (this.env.precision !== "f32" || v.node.dtype !== "bool") return args;
    return args.map((a, i) => (v.inputs[i]!.node.dtype === "f32" && a.k !== "load" && a.k !== "num" ? un("fround", a) : a));
  }

  private literal(v: Value): number {
    return uniformValue(v.node, this.env.precision)!;
  }

  private define(v: Value, coords: readonly Coord[], scope: Scope): Placed {
    if (v.kind !== "pointwise" && v.kind !== "index") {
      throw new Error(`inline: ${String(v.node)} (${v.kind}) cannot be computed inline here`);
    }
    const key = `${v.key}@${coordsKey(coords)}`;
    const found = scope.lookup(key);
    if (found) return { e: found, scope };
    const ins = inputCoords(v, coords, this.env.n)!;
    let where = scope.outermost(axesUsed(coords, this.env.n));
    const args = v.inputs.map((u, i) => {
      const p = this.place(u, ins[i]!, scope);
      where = deeper(where, p.scope);
      return p.e;
    });
    let e: Expr;
    if (v.node.op === "oneHot") {
      // the class index is the last coordinate itself
      e = bin("==", args[0]!, this.env.forms.ref(coords.at(-1)!));
    } else if (v.kind === "index") {
      e = args[0]!;
    } else {
      const expr = OPS[v.node.op].expr as (a: readonly Expr[], n: NodeOf<OpKind>) => Expr;
      e = expr(this.comparable(v, args), v.node as NodeOf<OpKind>);
      // integers wrap as the interpreter's i32 rounding does
      if (v.node.dtype === "i32" && !(OPS[v.node.op] as { intInRange?: boolean }).intInRange) e = un("toInt", e);
    }
    this.computed.add(v);
    if (e.k === "num" || e.k === "var" || e.k === "load") return { e, scope: where };
    const name = this.fresh(this.env.nameOf(v.node));
    where.stmts.push({ k: "let", name, init: e });
    this.env.holds?.(name, v);
    where.memo.set(key, ref(name));
    return { e: ref(name), scope: where };
  }
}

/** The loads and stores of `stmts` indexed by a form placeholder, as the set of form indexes used per buffer. */
export function formsByBuffer(stmts: readonly Stmt[]): Map<string, Set<number>> {
  const out = new Map<string, Set<number>>();
  const note = (buf: string, index: Expr): void => {
    if (index.k !== "form") return;
    const s = out.get(buf) ?? new Set<number>();
    s.add(index.form);
    out.set(buf, s);
  };
  visitKir(stmts, {
    stmt: (s) => {
      if (s.k === "store") note(s.buf, s.index);
    },
    expr: (e) => {
      if (e.k === "load") note(e.buf, e.index);
    },
  });
  return out;
}
