// Indexing primitives: slice, concat, pad, gather, scatterAdd, oneHot.
import type { OpDef } from "./def.js";

const todo = (op: string) => (): never => {
  throw new Error(`${op} is not implemented yet`);
};

export const INDEXING = {
  slice: { infer: todo("slice"), eval: todo("slice") } satisfies OpDef<"slice">,
  concat: { infer: todo("concat"), eval: todo("concat") } satisfies OpDef<"concat">,
  pad: { infer: todo("pad"), eval: todo("pad") } satisfies OpDef<"pad">,
  gather: { infer: todo("gather"), eval: todo("gather") } satisfies OpDef<"gather">,
  scatterAdd: { infer: todo("scatterAdd"), eval: todo("scatterAdd") } satisfies OpDef<"scatterAdd">,
  oneHot: { infer: todo("oneHot"), eval: todo("oneHot") } satisfies OpDef<"oneHot">,
} as const;
