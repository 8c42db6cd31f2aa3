// Basic value types of the IR: dtypes, shapes, source locations and errors.

/** Element types. `f64` exists for gradient checking; `bool` holds 0/1. */
export type DType = "f32" | "f64" | "i32" | "bool";

/** A static shape: one non-negative size per axis; `[]` is a scalar. */
export type Shape = readonly number[];

/** Where in the user's model file a node was created. */
export interface SourceLoc {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

/** `file:line` of a source location, or `<unknown>`. */
export function formatLoc(src: SourceLoc | undefined): string {
  return src ? `${src.file}:${src.line}` : "<unknown>";
}

/** Number of elements of a shape. */
export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major strides of a shape. */
export function stridesOf(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

export function shapeStr(shape: Shape): string {
  return `[${shape.join(",")}]`;
}

export function shapesEqual(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function isFloat(dtype: DType): boolean {
  return dtype === "f32" || dtype === "f64";
}

/**
 * An error in the user's graph: a wrong shape, dtype, axis or name. The
 * message names the op, the shapes involved and the user's file:line.
 */
export class GraphError extends Error {
  constructor(
    readonly op: string,
    readonly detail: string,
    readonly src?: SourceLoc,
  ) {
    super(`${op}: ${detail}${src ? ` (at ${formatLoc(src)})` : ""}`);
    this.name = "GraphError";
  }
}

/** Thrown by shape rules; the builder adds the op name and source line. */
export class ShapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ShapeError";
  }
}

/** Normalizes a possibly negative axis against a rank, or throws. */
export function normAxis(axis: number, rank: number): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) {
    throw new ShapeError(`axis ${axis} is out of range for rank ${rank}`);
  }
  return axis < 0 ? axis + rank : axis;
}

/** Normalizes a list of axes (undefined = all), sorted and without repeats. */
export function normAxes(axes: number | readonly number[] | undefined, rank: number): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axes === "number" ? [axes] : axes;
  const out = list.map((a) => normAxis(a, rank));
  if (new Set(out).size !== out.length) throw new ShapeError(`repeated axis in [${list.join(",")}]`);
  return out.sort((a, b) => a - b);
}

/** numpy broadcasting of two shapes, or throws naming both. */
export function broadcastShapes(a: Shape, b: Shape): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(`shapes ${shapeStr(a)} and ${shapeStr(b)} do not broadcast (axis ${i}: ${da} vs ${db})`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}
