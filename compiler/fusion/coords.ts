// How a value a kernel computes inline reads its inputs: elementwise ops
// broadcast, and the ops that re-index say how in their records' index maps.
import type { NodeOf, OpDef, OpKind } from "../ops/index.js";
import { OPS } from "../ops/index.js";
import type { Coord } from "../kernel/coords.js";
import { broadcastCoords, constant } from "../kernel/coords.js";
import type { Value } from "./program.js";

/** The op record's index map of a value's node. */
const indexMapOf = (v: Value): OpDef<OpKind>["indexMap"] => (OPS[v.node.op] as OpDef<OpKind>).indexMap;

/** Whether a reshape can be followed through coordinates (its index map gives them: it only adds or drops axes of size 1). */
export function isUnitReshape(v: Value): boolean {
  return indexMapOf(v)?.(v.node as NodeOf<OpKind>, v.node.shape.map(() => constant(0)), 0) !== undefined;
}

/**
 * The coordinates at which `v` reads each of its inputs when computing its
 * element at `coords`, for the kinds a kernel inlines (pointwise, index,
 * alias). Undefined when a reshape needs its input's flat layout (its input
 * must then be in memory).
 */
export function inputCoords(v: Value, coords: readonly Coord[], n: number): Coord[][] | undefined {
  switch (v.kind) {
    case "pointwise":
      return v.inputs.map((x) => broadcastCoords(x.node.shape, coords, n));
    case "alias":
    case "index": {
      const map = indexMapOf(v);
      if (map) return map(v.node as NodeOf<OpKind>, coords, n);
      if (v.kind === "alias") return [[...coords]];
      throw new Error(`coords: ${v.node.op} is an index op without an index map`);
    }
    default:
      throw new Error(`coords: a ${v.kind} value is not computed inline`);
  }
}
