// Static cost of one kernel from its kernel IR: arithmetic operations on
// values and elements loaded and stored, each multiplied by the trip counts
// of the loops around it. Index arithmetic is not counted.
import type { Expr, Stmt } from "../kernel/kir.js";

/** What one run of a kernel does, counted from its loop nests. */
export interface KernelCost {
  /** Arithmetic operations on values (every unary and binary op; `+=` counts one `+`). */
  readonly flops: number;
  /** The same, by operator (`*`, `+`, `exp`, `>`, ...). */
  readonly byOp: Readonly<Record<string, number>>;
  /** Elements read from and written to buffers, by kernel buffer name (`in0`, `out`, ...). */
  readonly loads: Readonly<Record<string, number>>;
  readonly stores: Readonly<Record<string, number>>;
  /** True when the kernel branches: the count then takes the costlier branch (an upper bound). */
  readonly branches: boolean;
}

/** Counts accumulated while walking a body. */
interface Tally {
  byOp: Map<string, number>;
  loads: Map<string, number>;
  stores: Map<string, number>;
  branches: boolean;
}

const bump = (m: Map<string, number>, key: string, n: number): void => {
  if (n !== 0) m.set(key, (m.get(key) ?? 0) + n);
};

/**
 * Whether `e` computes a value (it reads a buffer or a value local) rather
 * than an index (loop counters and constants only).
 */
function isValue(e: Expr, values: ReadonlySet<string>): boolean {
  switch (e.k) {
    case "num":
    case "base":
    case "form":
      return false;
    case "var":
      return values.has(e.name);
    case "load":
      return true;
    case "un":
      return isValue(e.a, values);
    case "bin":
      return isValue(e.a, values) || isValue(e.b, values);
    case "sel":
      return isValue(e.c, values) || isValue(e.a, values) || isValue(e.b, values);
    default:
      return e satisfies never;
  }
}

/** Adds `times` × the ops and loads of `e`; ops count only in value expressions. */
function countExpr(e: Expr, times: number, counted: boolean, t: Tally): void {
  switch (e.k) {
    case "num":
    case "var":
    case "base":
    case "form":
      return;
    case "load":
      bump(t.loads, e.buf, times);
      // the index is address arithmetic, never counted as flops
      countExpr(e.index, times, false, t);
      return;
    case "un":
      if (counted) bump(t.byOp, e.op, times);
      countExpr(e.a, times, counted, t);
      return;
    case "bin":
      if (counted) bump(t.byOp, e.op, times);
      countExpr(e.a, times, counted, t);
      countExpr(e.b, times, counted, t);
      return;
    case "sel":
      // a select moves a value; its condition may compute
      countExpr(e.c, times, counted, t);
      countExpr(e.a, times, counted, t);
      countExpr(e.b, times, counted, t);
      return;
    default:
      e satisfies never;
  }
}

/** Total of a tally's op counts. */
function sumOf(m: ReadonlyMap<string, number>): number {
  let n = 0;
  for (const v of m.values()) n += v;
  return n;
}

function walk(body: readonly Stmt[], times: number, values: Set<string>, t: Tally): void {
  for (const s of body) {
    switch (s.k) {
      case "for":
        walk(s.body, times * Math.max(0, s.to - s.from), values, t);
        break;
      case "let":
      case "set": {
        const e = s.k === "let" ? s.init : s.value;
        const value = isValue(e, values);
        if (value) values.add(s.name);
        countExpr(e, times, value, t);
        break;
      }
      case "store":
      case "scatterAdd":
        bump(t.stores, s.buf, times);
        countExpr(s.index, times, false, t);
        countExpr(s.value, times, true, t);
        if (s.k === "scatterAdd" || s.add) {
          // buf[i] += v reads the element and adds
          bump(t.loads, s.buf, times);
          bump(t.byOp, "+", times);
        }
        break;
      case "if": {
        t.branches = true;
        countExpr(s.c, times, isValue(s.c, values), t);
        // count each branch apart and keep the costlier one
        const arms = [s.then, s.else ?? []].map((arm) => {
          const sub: Tally = { byOp: new Map(), loads: new Map(), stores: new Map(), branches: true };
          walk(arm, times, new Set(values), sub);
          return sub;
        });
        const [a, b] = arms as [Tally, Tally];
        const pick = sumOf(a.byOp) >= sumOf(b.byOp) ? a : b;
        for (const key of ["byOp", "loads", "stores"] as const) for (const [k, n] of pick[key]) bump(t[key], k, n);
        break;
      }
      case "extern":
        // what the backend's own code computes, as its reference loops say
        walk(s.reference, times, values, t);
        break;
      case "comment":
        break;
      default:
        s satisfies never;
    }
  }
}

/** The static cost of a kernel body (see KernelCost). */
export function kernelCost(body: readonly Stmt[]): KernelCost {
  const t: Tally = { byOp: new Map(), loads: new Map(), stores: new Map(), branches: false };
  walk(body, 1, new Set(), t);
  const sorted = (m: Map<string, number>) => Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return { flops: sumOf(t.byOp), byOp: sorted(t.byOp), loads: sorted(t.loads), stores: sorted(t.stores), branches: t.branches };
}

/** 1234567 → "1.23M", for people; exact counts stay in the data. */
export function humanCount(n: number): string {
  if (n < 1e4) return String(n);
  const units: [number, string][] = [
    [1e12, "T"],
    [1e9, "G"],
    [1e6, "M"],
    [1e3, "k"],
  ];
  const [scale, unit] = units.find(([s]) => n >= s)!;
  return `${(n / scale).toPrecision(3)}${unit}`;
}
