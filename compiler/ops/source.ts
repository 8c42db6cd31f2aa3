// Source nodes (inputs, parameters, constants) and the custom-gradient wrapper.
import type { OpDef } from "./def.js";
import { ShapeError, sizeOf } from "../ir/types.js";

const fed = (what: string) => (): never => {
  throw new Error(`${what} values are fed to the interpreter, not computed`);
};

export const SOURCES = {
  input: {
    infer: (_i, p) => ({ shape: p.shape, dtype: p.dtype }),
    eval: fed("input"),
    flops: () => 0,
  } satisfies OpDef<"input">,
  param: {
    infer: (_i, p) => ({ shape: p.shape, dtype: p.dtype }),
    eval: fed("param"),
    flops: () => 0,
  } satisfies OpDef<"param">,
  /** A constant: one value repeated, or one value per element. */
  const: {
    infer: (_i, p) => {
      if (p.value.length !== 1 && p.value.length !== sizeOf(p.shape)) {
        throw new ShapeError(`${p.value.length} values do not fill shape [${p.shape.join(",")}]`);
      }
      return { shape: p.shape, dtype: p.dtype };
    },
    eval: (n) => {
      const v = n.params.value;
      return v.length === 1 ? new Float64Array(sizeOf(n.shape)).fill(v[0]!) : Float64Array.from(v);
    },
    flops: () => 0,
  } satisfies OpDef<"const">,
  /** customGrad(y, ...xs): y forward; the user's VJP maps y's cotangent to the xs'. */
  customGrad: {
    fusion: "alias",
    movesValues: true,
    math: "through",
    flops: () => 0,
    infer: ([y]) => ({ shape: y!.shape, dtype: y!.dtype }),
    eval: (_n, [y]) => Float64Array.from(y!.data),
    vjp: (ct, n) => {
      const fn = n.ctx.customVjps[n.params.fn]!;
      const xs = n.inputs.slice(1);
      const cts = fn(ct, xs, n.inputs[0]!);
      if (cts.length !== xs.length) {
        throw new ShapeError(`custom gradient "${n.params.label}" returned ${cts.length} cotangents for ${xs.length} inputs`);
      }
      return [null, ...cts];
    },
    expr: ([y]) => y!,
  } satisfies OpDef<"customGrad">,
} as const;
