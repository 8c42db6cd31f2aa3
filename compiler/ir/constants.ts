// What a constant node holds, asked the same way everywhere: the printer, the
// verifier, the graph passes, lowering, inspect and the graph drawings.
import type { Tensor } from "./node.js";

/**
 * The value of a constant written as one value for every element: a literal,
 * which the printer writes inline and kernels inline instead of reading a
 * buffer. Undefined for any other node.
 */
export function literalValue(t: Tensor): number | undefined {
  if (t.op !== "const") return undefined;
  const value = t.p("const").value;
  return value.length === 1 ? value[0] : undefined;
}

/** The one value every element of `values` holds (NaN included; +0 and −0 differ), else undefined. */
export function uniformOf(values: ArrayLike<number>): number | undefined {
  const first = values[0];
  if (first === undefined) return undefined;
  for (let i = 1; i < values.length; i++) if (!Object.is(values[i], first)) return undefined;
  return first;
}

/** The value of a constant whose elements all hold the same one (written once or repeated), else undefined. */
export function uniformConst(t: Tensor): number | undefined {
  return t.op === "const" ? uniformOf(t.p("const").value) : undefined;
}
