// Coordinates inside a fused kernel: every axis of a value read by the kernel
// is an affine function of the kernel's iteration axes, so broadcasting,
// transposes and reshapes become index arithmetic and never copies. An op
// that re-indexes its input says how in its record (`OpDef.indexMap`).
import type { Shape } from "../ir/types.js";
import { stridesOf } from "../ir/types.js";

/** One coordinate: Σ c[a]·axis_a + k over a kernel's iteration axes (integer coefficients). */
export interface Coord {
  readonly c: readonly number[];
  readonly k: number;
}

/** The constant `k` over `n` axes. */
export const constant = (n: number, k = 0): Coord => ({ c: new Array<number>(n).fill(0), k });

/** The iteration axis `a` itself. */
export function axisOf(n: number, a: number): Coord {
  const c = new Array<number>(n).fill(0);
  c[a] = 1;
  return { c, k: 0 };
}

/** Identity coordinates: axis d of a value is iteration axis d. */
export const identity = (rank: number): Coord[] => Array.from({ length: rank }, (_, a) => axisOf(rank, a));

/** Σ coords[d]·strides[d] + base: a flat element offset. */
export function flatten(coords: readonly Coord[], strides: readonly number[], n: number, base = 0): Coord {
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
export const flatIndex = (coords: readonly Coord[], shape: Shape, n: number): Coord => flatten(coords, stridesOf(shape), n);

/** Coordinates with every axis of size 1 read at 0 (so equal reads compare equal). */
export function canonical(coords: readonly Coord[], shape: Shape, n: number): Coord[] {
  return coords.map((x, d) => (shape[d] === 1 ? constant(n) : x));
}

/** A stable text key of coordinates (for memoizing a value computed at them). */
export function coordsKey(coords: readonly Coord[]): string {
  return coords.map((x) => `${x.c.join(",")}+${x.k}`).join(";");
}

/** Iteration axes that coordinates depend on. */
export function axesUsed(coords: readonly Coord[], n: number): boolean[] {
  const used = new Array<boolean>(n).fill(false);
  for (const x of coords) x.c.forEach((v, a) => (used[a] ||= v !== 0));
  return used;
}

/** Coordinates of an operand of shape `inShape` broadcast (numpy rules) to coordinates `out`. */
export function broadcastCoords(inShape: Shape, out: readonly Coord[], n: number): Coord[] {
  const lead = out.length - inShape.length;
  return inShape.map((d, i) => (d === 1 ? constant(n) : out[i + lead]!));
}

/**
 * Coordinates of a reshape's input when the reshape only adds or drops axes
 * of size 1 (the common case: keepDims, squeeze); undefined otherwise.
 */
export function unitReshapeCoords(inShape: Shape, outShape: Shape, out: readonly Coord[], n: number): Coord[] | undefined {
  const outAxes = outShape.map((_, i) => i).filter((i) => outShape[i] !== 1);
  const inAxes = inShape.map((_, i) => i).filter((i) => inShape[i] !== 1);
  if (outAxes.length !== inAxes.length || outAxes.some((a, i) => outShape[a] !== inShape[inAxes[i]!])) return undefined;
  const coords = inShape.map(() => constant(n));
  inAxes.forEach((a, i) => (coords[a] = out[outAxes[i]!]!));
  return coords;
}
