// The arena plan: every buffer gets an element offset in F (floats) or I
// (i32 and bool). No reuse yet: a later memory-plan pass shares offsets
// between buffers whose lifetimes do not overlap.
import type { ArenaName, Buffer, BufferRole } from "./lower.js";

/** Offsets of every buffer and the size of each arena, in elements. */
export interface ArenaPlan {
  readonly offsets: ReadonlyMap<Buffer, number>;
  readonly floats: number;
  readonly ints: number;
}

/** Buffers start on multiples of this many elements (32 bytes for f32), for future SIMD emitters. */
export const ALIGN = 8;

/** The order roles are laid out in: what the runtime reads and writes comes first. */
const ORDER: readonly BufferRole[] = ["hyper", "input", "param", "state", "node", "const", "scratch"];

/** Lays the buffers out one after another in their arena, by role, then in creation order. */
export function planArena(buffers: readonly Buffer[]): ArenaPlan {
  const next: Record<ArenaName, number> = { F: 0, I: 0 };
  const offsets = new Map<Buffer, number>();
  const sorted = [...buffers].sort((a, b) => ORDER.indexOf(a.role) - ORDER.indexOf(b.role) || a.id - b.id);
  for (const b of sorted) {
    const at = Math.ceil(next[b.arena] / ALIGN) * ALIGN;
    offsets.set(b, at);
    next[b.arena] = at + b.size;
  }
  return { offsets, floats: next.F, ints: next.I };
}

/** Offset of a buffer in its arena. */
export function offsetOf(plan: ArenaPlan, b: Buffer): number {
  const o = plan.offsets.get(b);
  if (o === undefined) throw new Error(`arena: buffer "${b.label}" has no offset`);
  return o;
}
