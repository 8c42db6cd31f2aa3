// The arena plan's shape: every buffer's element offset in F (floats), I
// (i32 and bool) or H (bfloat16 temporaries of mixed precision) and each
// arena's size. memory.ts computes it.
import type { Buffer } from "../lower/lower.js";

/** Offsets of every buffer and the size of each arena, in elements, with what the plan achieved. */
export interface ArenaPlan {
  readonly offsets: ReadonlyMap<Buffer, number>;
  readonly floats: number;
  readonly ints: number;
  /** Elements of the H arena (bfloat16; 0 unless mixed precision). */
  readonly halves: number;
  /** Both arenas in bytes: the most memory a step or a forward pass ever uses. */
  readonly peakBytes: number;
  /** Bytes of buffers that keep their own place (inputs, params, gradients, state, results, constants). */
  readonly pinnedBytes: number;
  /** Bytes the temporaries would take without sharing, and what they take shared. */
  readonly tempBytes: number;
  readonly sharedTempBytes: number;
  /** Temporaries the forward pass writes and the backward pass reads (saved activations). */
  readonly savedActivations: { readonly count: number; readonly bytes: number };
  /** What the saved activations would take with every f32 stored as f32 (equals their bytes unless mixed precision). */
  readonly savedAsF32Bytes: number;
  /** (read, written) buffer pairs placed at one offset by an in-place kernel. */
  readonly inplace: readonly (readonly [Buffer, Buffer])[];
}

/** Buffers start on multiples of this many elements (32 bytes for f32), for future SIMD emitters. */
export const ALIGN = 8;

/** Offset of a buffer in its arena. */
export function offsetOf(plan: ArenaPlan, b: Buffer): number {
  const o = plan.offsets.get(b);
  if (o === undefined) throw new Error(`arena: buffer "${b.label}" has no offset`);
  return o;
}
