// Kernel counts and peak arena bytes of the XOR and MNIST examples' training
// steps, with fusion off and on and with rematerialization (no timing).
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import xor, { config as xorConfig } from "../examples/xor/model.js";
import mnist, { config as mnistConfig } from "../examples/mnist/model.js";
import { lowerGraph } from "../compiler/compile.js";
import type { CompileOptions } from "../compiler/config.js";
import { summarize } from "../compiler/bundle/summary.js";
import type { Graph } from "../compiler/ir/graph.js";

/** One row: a model compiled one way. */
export interface CompileRow {
  readonly model: string;
  readonly mode: string;
  readonly stepKernels: number;
  readonly forwardKernels: number;
  readonly peakBytes: number;
  readonly savedActivationBytes: number;
  readonly backwardFlops: number;
  readonly recomputedFlops: number;
}

const MODES: Record<string, Omit<CompileOptions, "outDir">> = {
  unfused: { fusion: false },
  fused: {},
  "fused+remat": { remat: true },
};

/** Compiles (in memory) every model in every mode; writes compile-report.json into `folder`. */
export function compileReport(folder: string): CompileRow[] {
  const models: [string, Graph, Omit<CompileOptions, "outDir">][] = [
    ["xor", xor, xorConfig],
    ["mnist", mnist, mnistConfig],
  ];
  const rows: CompileRow[] = [];
  for (const [model, g, config] of models) {
    for (const [mode, options] of Object.entries(MODES)) {
      const { schedule, plan, passes } = lowerGraph(g, { optimizer: config.optimizer!, ...options });
      const s = summarize(schedule, plan, passes.stats);
      rows.push({
        model,
        mode,
        stepKernels: s.kernels.step,
        forwardKernels: s.kernels.forward,
        peakBytes: s.memory.peakBytes,
        savedActivationBytes: s.memory.savedActivations.bytes,
        backwardFlops: s.flops.backward,
        recomputedFlops: s.flops.recomputed,
      });
    }
  }
  mkdirSync(folder, { recursive: true });
  writeFileSync(path.join(folder, "compile-report.json"), JSON.stringify(rows, null, 2) + "\n");
  return rows;
}

/** The rows as an aligned table. */
export function reportTable(rows: readonly CompileRow[]): string {
  const head = ["model", "mode", "step kernels", "forward kernels", "peak bytes", "saved activations", "backward FLOPs", "recomputed FLOPs"];
  const cells = rows.map((r) => [r.model, r.mode, r.stepKernels, r.forwardKernels, r.peakBytes, r.savedActivationBytes, r.backwardFlops, r.recomputedFlops].map(String));
  const width = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  return [head, ...cells].map((c) => c.map((x, i) => x.padEnd(width[i]!)).join("  ")).join("\n");
}
