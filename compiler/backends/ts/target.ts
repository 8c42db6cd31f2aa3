// The TypeScript target: every kernel is plain JavaScript loops over the
// arenas; its passes put matmuls in register tiles (tile.ts) with pointer
// walks (pointers.ts).
import type { Target } from "../target.js";
import type { EmitHooks } from "./emitTs.js";
import { PLAIN_TS, emitTsKernels } from "./emitTs.js";
import { TILE, registerTiles } from "./tile.js";
import { pointerWalks } from "./pointers.js";

/** A value inlined into a matmul operand is recomputed ~n/tile times per element: stored above this total. */
const OPERAND_COST = 16;

/** A target whose kernels are TypeScript: the TS emitter writes them, with its hooks. */
export interface TsTarget extends Target {
  readonly hooks: EmitHooks;
}

/** Whether a target's kernels are TypeScript (the in-memory test harness runs those directly). */
export function isTsTarget(t: Target): t is TsTarget {
  return "hooks" in t;
}

export const tsTarget: TsTarget = {
  name: "ts",
  device: "ts",
  // one thread: a scatterAdd is a plain +=
  capabilities: { f64: true, vectorWidth: 1, threads: 1, atomics: true, fusion: true, bf16: true },
  cost: {
    operandCost: OPERAND_COST,
    // each element of A is read once per tile of columns, each element of B once per tile of rows
    matmulReuse: (mm) => {
      const [m, n] = mm.node.shape.slice(-2) as [number, number];
      return [Math.ceil(n / TILE), Math.ceil(m / TILE)];
    },
  },
  reduceColumns: 8,
  reservedNames: PLAIN_TS.moduleNames,
  passes: [registerTiles, pointerWalks],
  hooks: PLAIN_TS,
  emitKernels: (s, plan) => emitTsKernels(s, plan, PLAIN_TS),
};
