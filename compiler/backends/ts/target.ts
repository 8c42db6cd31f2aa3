// The TypeScript target: every kernel is plain JavaScript loops over the
// arenas; matmuls run in register tiles with pointer walks (gemm.ts).
import type { Target } from "../target.js";
import { PLAIN_TS } from "../target.js";
import { TILE, matmulKernel } from "./gemm.js";

/** A value inlined into a matmul operand is recomputed ~n/tile times per element: stored above this total. */
const OPERAND_COST = 16;

export const tsTarget: Target = {
  name: "ts",
  device: "ts",
  // one thread: a scatterAdd is a plain +=
  capabilities: { f64: true, vectorWidth: 1, threads: 1, atomics: true, fusion: true },
  cost: {
    operandCost: OPERAND_COST,
    // each element of A is read once per tile of columns, each element of B once per tile of rows
    matmulReuse: (mm) => {
      const [m, n] = mm.node.shape.slice(-2) as [number, number];
      return [Math.ceil(n / TILE), Math.ceil(m / TILE)];
    },
  },
  reduceColumns: 8,
  matmulKernel,
  emit: PLAIN_TS,
};
