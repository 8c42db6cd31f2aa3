// The checkpoint marker: an identity whose value the backward pass reads from
// memory; with rematerialization, everything between checkpoints is recomputed.
import type { OpDef } from "./def.js";

export const CHECKPOINT = {
  checkpoint: {
    fusion: "alias",
    math: "through",
    flops: () => 0,
    infer: ([x]) => ({ shape: x!.shape, dtype: x!.dtype }),
    eval: (_n, [x]) => Float64Array.from(x!.data),
    // the identity's cotangent passes through unchanged
    vjp: (ct) => [ct],
    expr: ([x]) => x!,
  } satisfies OpDef<"checkpoint">,
} as const;
