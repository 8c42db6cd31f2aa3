// Coordinates inside a fused kernel: every axis of a value read by the kernel
// is an affine function of the kernel's iteration axes, so broadcasting,
// transposes and reshapes become index arithmetic and never copies.
import type { Shape } from "../ir/types.js";
import { stridesOf } from "../ir/types.js";
import type { Value } from "./program.js";

/** Σ c[a]·axis_a + k over a kernel's iteration axes (integer coefficients). */
export interface Affine {
  readonly c: readonly number[];
  readonly k: number;
}

/** The constant `k` over `n` axes. */
export const constant = (n: number, k = 0): Affine => ({ c: new Array<number>(n).fill(0), k });

/** The iteration axis `a` itself. */
export function axisOf(n: number, a: number): Affine {
  const c = new Array<number>(n).fill(0);
  c[a] = 1;
  return { c, k: 0 };
}

/** Identity coordinates: axis d of a value is iteration axis d. */
export const identity = (rank: number): Affine[] => Array.from({ length: rank }, (_, a) => axisOf(rank, a));

/** Σ coords[d]·strides[d] + base: a flat element offset. */
export function flatten(coords: readonly Affine[], strides: readonly number[], n: number, base = 0): Affine {
  const c = new Array<number>(n).fill(0);
  let k = base;
  coords.forEach((x, d) => {
    const s = strides[d]!;
    if (s === 0) return;
    for (let a = 0; a < n; a++) c[a]! += x.c[a]! * s;
    k += x.k * s;
  });
  return { c, k };
}

/** The row-major flat offset of `coords` in a value of `shape`. */
export const flatIndex = (coords: readonly Affine[], shape: Shape, n: number): Affine => flatten(coords, stridesOf(shape), n);

/** Coordinates with every axis of size 1 read at 0 (so equal reads compare equal). */
export function canonical(coords: readonly Affine[], shape: Shape, n: number): Affine[] {
  return coords.map((x, d) => (shape[d] === 1 ? constant(n) : x));
}

/** A stable text key of coordinates (for memoizing a value computed at them). */
export function coordsKey(coords: readonly Affine[]): string {
  return coords.map((x) => `${x.c.join(",")}+${x.k}`).join(";");
}

/** Iteration axes that coordinates depend on. */
export function axesUsed(coords: readonly Affine[], n: number): boolean[] {
  const used = new Array<boolean>(n).fill(false);
  for (const x of coords) x.c.forEach((v, a) => (used[a] ||= v !== 0));
  return used;
}

/** Coordinates of an operand of shape `inShape` broadcast (numpy rules) to coordinates `out`. */
export function broadcastCoords(inShape: Shape, out: readonly Affine[], n: number): Affine[] {
  const lead = out.length - inShape.length;
  return inShape.map((d, i) => (d === 1 ? constant(n) : out[i + lead]!));
}

/**
 * Coordinates of a reshape's input when the reshape only adds or drops axes
 * of size 1 (the common case: keepDims, squeeze); undefined otherwise.
 */
export function unitReshapeCoords(inShape: Shape, outShape: Shape, out: readonly Affine[], n: number): Affine[] | undefined {
  const outAxes = outShape.map((_, i) => i).filter((i) => outShape[i] !== 1);
  const inAxes = inShape.map((_, i) => i).filter((i) => inShape[i] !== 1);
  if (outAxes.length !== inAxes.length || outAxes.some((a, i) => outShape[a] !== inShape[inAxes[i]!])) return undefined;
  const coords = inShape.map(() => constant(n));
  inAxes.forEach((a, i) => (coords[a] = out[outAxes[i]!]!));
  return coords;
}

/** Whether a reshape can be followed through coordinates (see unitReshapeCoords). */
export function isUnitReshape(v: Value): boolean {
  const x = v.inputs[0]!;
  return unitReshapeCoords(x.node.shape, v.node.shape, v.node.shape.map(() => constant(0)), 0) !== undefined;
}

/**
 * The coordinates at which `v` reads each of its inputs when computing its
 * element at `coords`, for the kinds a kernel inlines (pointwise, index,
 * alias). For oneHot the last coordinate is a value, not an operand index:
 * the labels are read at the leading coordinates. Undefined when a reshape
 * needs its input's flat layout (its input must then be in memory).
 */
export function inputCoords(v: Value, coords: readonly Affine[], n: number): Affine[][] | undefined {
  const t = v.node;
  switch (v.kind) {
    case "pointwise":
      return v.inputs.map((x) => broadcastCoords(x.node.shape, coords, n));
    case "alias": {
      const x = v.inputs[0]!;
      if (t.op !== "reshape") return [[...coords]];
      const c = unitReshapeCoords(x.node.shape, t.shape, coords, n);
      return c ? [c] : undefined;
    }
    case "index":
      switch (t.op) {
        case "broadcastTo": return [broadcastCoords(v.inputs[0]!.node.shape, coords, n)];
        case "transpose": {
          // out axis d is input axis perm[d]
          const perm = t.p("transpose").perm;
          const c = new Array<Affine>(perm.length);
          perm.forEach((p, d) => (c[p] = coords[d]!));
          return [c];
        }
        case "oneHot": return [coords.slice(0, -1)];
        default: throw new Error(`coords: ${t.op} is not an index op`);
      }
    default:
      throw new Error(`coords: a ${v.kind} value is not computed inline`);
  }
}
