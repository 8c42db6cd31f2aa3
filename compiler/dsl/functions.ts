// DSL functions over lists of tensors (concat, stack): the ops that are not
// methods of one tensor because no input is special.
import type { Tensor } from "../ir/node.js";
import { GraphError, shapeStr, shapesEqual } from "../ir/types.js";
import { callerLocation } from "../ir/source.js";

function requireTensors(op: string, tensors: readonly Tensor[]): void {
  if (!Array.isArray(tensors) || tensors.length === 0) {
    throw new GraphError(op, "needs a non-empty list of tensors", callerLocation());
  }
}

/**
 * Joins tensors along `axis` (negative counts from the end). All must share
 * a dtype and agree in size on every other axis.
 */
export function concat(tensors: readonly Tensor[], axis = 0): Tensor {
  requireTensors("concat", tensors);
  return tensors[0]!.ctx.apply("concat", tensors, { axis });
}

/**
 * Stacks tensors of one shape along a new axis at `axis` (0..rank, negative
 * counts from the end): n tensors of [a, b] give [n, a, b] for axis 0.
 */
export function stack(tensors: readonly Tensor[], axis = 0): Tensor {
  requireTensors("stack", tensors);
  const first = tensors[0]!;
  for (const t of tensors) {
    if (!shapesEqual(t.shape, first.shape)) {
      const shapes = tensors.map((u) => shapeStr(u.shape)).join(", ");
      throw new GraphError("stack", `all tensors must have one shape, got ${shapes}`, callerLocation());
    }
  }
  return concat(tensors.map((t) => t.expandDims(axis)), axis);
}
