// Kernel groups of a fused program and their iteration frames: which values a
// kernel computes, and at which coordinates each of them lives in its loops.
import type { Shape } from "../ir/types.js";
import { shapesEqual, sizeOf } from "../ir/types.js";
import { normAxes } from "../ir/types.js";
import { reducedShape } from "../ops/reduce.js";
import type { Coord } from "../kernel/coords.js";
import { axisOf, canonical, constant, identity } from "../kernel/coords.js";
import type { Phase, Value } from "./program.js";

/**
 * - pointwise: one loop nest over a shape computing each element once;
 * - reduce: loops over the kept positions of a reduced shape, one inner loop
 *   per reduction (same shape and axes), epilogues at each kept position, an
 *   optional total over all kept positions;
 * - matmul: a register-tiled product with an epilogue at each output element;
 * - opaque / single: one node through its op record's lowering.
 */
export type GroupKind = "pointwise" | "reduce" | "matmul" | "opaque" | "single";

/** One kernel-to-be. */
export interface Group {
  readonly id: number;
  readonly kind: GroupKind;
  readonly phase: Phase;
  /** Values it computes, in topological order; the first is the anchor. */
  readonly members: Value[];
  /** Rank of the iteration frame. */
  readonly n: number;
  /** pointwise: the shape; reduce: the reduced input's shape; matmul: the output's shape. */
  readonly shape: Shape;
  /** reduce: the reduced axes (of `shape`). */
  readonly axes: readonly number[];
  /** reduce: the reduction over every kept position, run after the loops. */
  total?: Value;
}

/** Where a member lives in a reduce group: at every element, at each kept position, or once after the loops. */
export type Level = "x" | "k" | "t";

/** The reduced axes of a reduction value. */
export function reducedAxes(v: Value): number[] {
  const p = v.node.p("sum");
  return normAxes(p.axes ?? undefined, v.inputs[0]!.node.rank);
}

/** A new group anchored at `v`. */
export function newGroup(id: number, kind: GroupKind, v: Value): Group {
  const base = { id, kind, phase: v.phase, members: [v] };
  switch (kind) {
    case "reduce": {
      const x = v.inputs[0]!.node.shape;
      return { ...base, n: x.length, shape: x, axes: reducedAxes(v) };
    }
    case "matmul":
      // frame: batch axes, i, j, then p (the summed axis)
      return { ...base, n: v.node.rank + 1, shape: v.node.shape, axes: [] };
    default:
      return { ...base, n: v.node.rank, shape: v.node.shape, axes: [] };
  }
}

/** K-level coordinates of a value of shape `s` in a reduce group, or undefined. */
function keptCoords(g: Group, s: Shape): Coord[] | undefined {
  const keep = reducedShape(g.shape, g.axes, true);
  const drop = reducedShape(g.shape, g.axes, false);
  const kept = g.shape.map((_, a) => a).filter((a) => !g.axes.includes(a));
  if (shapesEqual(s, keep)) return g.shape.map((_, a) => (g.axes.includes(a) ? constant(g.n) : axisOf(g.n, a)));
  if (shapesEqual(s, drop)) return kept.map((a) => axisOf(g.n, a));
  return undefined;
}

/** The level of a value of shape `s` in a reduce group (before any total), or undefined. */
export function levelOfShape(g: Group, s: Shape): Level | undefined {
  if (shapesEqual(s, g.shape)) return "x";
  return keptCoords(g, s) ? "k" : undefined;
}

/**
 * The coordinates at which a member computes its elements: identity over
 * the output for pointwise and matmul groups; in a reduce group, identity
 * over the reduced shape (x), the kept axes (k), or constants (t).
 */
export function nativeCoords(g: Group, v: Value, level?: Level): Coord[] | undefined {
  const c = nativeRaw(g, v, level);
  return c && canonical(c, v.node.shape, g.n);
}

function nativeRaw(g: Group, v: Value, level?: Level): Coord[] | undefined {
  const s = v.node.shape;
  switch (g.kind) {
    case "pointwise":
      return shapesEqual(s, g.shape) ? identity(g.n) : undefined;
    case "matmul":
      return shapesEqual(s, g.shape) ? s.map((_, a) => axisOf(g.n, a)) : undefined;
    case "reduce": {
      if (level === "t") return sizeOf(s) === 1 ? s.map(() => constant(g.n)) : undefined;
      if (v.kind === "reduce" && v !== g.total) return keptCoords(g, s);
      if (v === g.total) return s.map(() => constant(g.n));
      if (level === "x" || (level === undefined && shapesEqual(s, g.shape))) return shapesEqual(s, g.shape) ? identity(g.n) : undefined;
      return keptCoords(g, s);
    }
    default:
      return undefined;
  }
}

/** Sizes of the kept positions of a reduce group (the outer loops), in axis order. */
export function keptShape(g: Group): number[] {
  return g.shape.filter((_, a) => !g.axes.includes(a));
}

/** Whether reduction `v` reduces the same shape over the same axes as group `g`. */
export function sameReduction(g: Group, v: Value): boolean {
  const axes = reducedAxes(v);
  return shapesEqual(v.inputs[0]!.node.shape, g.shape) && axes.length === g.axes.length && axes.every((a, i) => a === g.axes[i]);
}

/**
 * Whether reduction `v` can close reduce group `g` as its total: it reduces
 * every axis of a value that lives at the kept positions (more than one).
 */
export function canBeTotal(g: Group, v: Value): boolean {
  const x = v.inputs[0]!;
  if (g.total || sizeOf(keptShape(g)) <= 1) return false;
  return reducedAxes(v).length === x.node.rank && keptCoords(g, x.node.shape) !== undefined;
}
