// The compile summary: what the graph passes did, how many kernels each
// entry point runs, the arithmetic of the forward and backward passes (and
// what recomputation adds), and what the memory plan achieved. compile()
// returns it, writes it to report.json, and `gradc compile` prints its text.
import type { Tensor } from "../ir/node.js";
import { sizeOf } from "../ir/types.js";
import type { NodeOf, OpDef, OpKind } from "../ops/index.js";
import { OPS } from "../ops/index.js";
import type { ArenaPlan } from "../plan/arena.js";
import type { Kernel, Schedule } from "../lower/schedule.js";
import { kernelsOf } from "../lower/schedule.js";

/** One graph pass, as the pass pipeline reports it. */
export interface PassSummary {
  readonly pass: string;
  readonly nodesBefore: number;
  readonly nodesAfter: number;
  readonly ms: number;
}

/** Everything the summary reports (report.json). */
export interface CompileSummary {
  readonly graph: string;
  readonly fusion: boolean;
  readonly remat: boolean;
  readonly passes: readonly PassSummary[];
  /** Nodes of the training graph the step computes, and kernels per entry point. */
  readonly nodes: number;
  readonly kernels: { readonly forward: number; readonly gradients: number; readonly update: number; readonly step: number };
  /** Floating-point operations of one step: forward, backward (with recomputation), update; backward / forward. */
  readonly flops: {
    readonly forward: number;
    readonly backward: number;
    readonly update: number;
    readonly ratio: number;
    /** Operations spent recomputing forward values in the backward pass. */
    readonly recomputed: number;
  };
  readonly memory: {
    readonly arenaFloats: number;
    readonly arenaInts: number;
    readonly peakBytes: number;
    readonly pinnedBytes: number;
    /** Temporaries laid end to end, and in the plan (shared where lifetimes allow). */
    readonly tempBytes: number;
    readonly sharedTempBytes: number;
    readonly savedActivations: { readonly count: number; readonly bytes: number };
    /** Mixed precision: the bfloat16 arena's elements, and the bytes the saved activations would take stored as f32. */
    readonly mixed?: { readonly arenaHalves: number; readonly savedAsF32Bytes: number };
    readonly inplace: number;
  };
  /** The printed summary (what `gradc compile` shows). */
  readonly text: string;
}

/** Arithmetic operations to compute every element of a node once: its op record's count, else one per element. */
export function nodeFlops(t: Tensor): number {
  return (OPS[t.op] as OpDef<OpKind>).flops?.(t as NodeOf<OpKind>) ?? sizeOf(t.shape);
}

/** Operations of one kernel: every node it computes (a recomputed node counts again). */
function kernelFlops(k: Kernel): number {
  if (k.phase === "update") {
    // per element: Adam ~ 14 operations, momentum 5, SGD 2 (plus clipping's 2)
    const p = k.buffers["p"];
    const perElement = k.buffers["m"] ? 14 : k.buffers["velocity"] ? 5 : k.buffers["p"] ? 2 : 2;
    return (p ?? Object.values(k.buffers)[0]!).size * perElement;
  }
  return k.nodes.reduce((n, t) => n + nodeFlops(t), 0);
}

const mb = (bytes: number) =>
  bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(2)} MiB` : bytes >= 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${bytes} B`;
const mflop = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)} MFLOP` : `${(n / 1e3).toFixed(1)} kFLOP`);

/** The summary of a compiled schedule and its memory plan. */
export function summarize(s: Schedule, plan: ArenaPlan, passes: readonly PassSummary[] = []): CompileSummary {
  const grads = kernelsOf(s, "gradients");
  const update = kernelsOf(s, "update");
  const sum = (ks: readonly Kernel[]) => ks.reduce((n, k) => n + kernelFlops(k), 0);
  const forward = sum(grads.filter((k) => k.phase === "forward"));
  const backward = sum(grads.filter((k) => k.phase === "backward"));
  // recomputation: the forward nodes backward kernels compute again
  const recomputed = grads
    .filter((k) => k.phase === "backward")
    .reduce((n, k) => n + k.nodes.filter((t) => !t.origin).reduce((m, t) => m + nodeFlops(t), 0), 0);
  const nodes = s.plans.step.program.values.filter((v) => v.kind !== "source" && v.kind !== "literal" && v.kind !== "alias").length;
  const summary: Omit<CompileSummary, "text"> = {
    graph: s.graph.name,
    fusion: s.fusion,
    remat: s.remat,
    passes: passes.map((p) => ({ pass: p.pass, nodesBefore: p.nodesBefore, nodesAfter: p.nodesAfter, ms: p.ms })),
    nodes,
    kernels: { forward: kernelsOf(s, "forward").length, gradients: grads.length, update: update.length, step: grads.length + update.length },
    flops: { forward, backward, update: sum(update), ratio: forward > 0 ? backward / forward : 0, recomputed },
    memory: {
      arenaFloats: plan.floats,
      arenaInts: plan.ints,
      peakBytes: plan.peakBytes,
      pinnedBytes: plan.pinnedBytes,
      tempBytes: plan.tempBytes,
      sharedTempBytes: plan.sharedTempBytes,
      savedActivations: plan.savedActivations,
      ...(plan.halves > 0 ? { mixed: { arenaHalves: plan.halves, savedAsF32Bytes: plan.savedAsF32Bytes } } : {}),
      inplace: plan.inplace.length,
    },
  };
  return { ...summary, text: summaryText(summary) };
}

/** `bytes` against `of`, e.g. "50% less". */
const percentLess = (bytes: number, of: number): string => (of > 0 ? `${Math.round((100 * (of - bytes)) / of)}% less` : "none saved");

/** The summary as lines of text. */
function summaryText(x: Omit<CompileSummary, "text">): string {
  const lines: string[] = [];
  if (x.passes.length) {
    lines.push(`  graph passes: ${x.passes.map((p) => `${p.pass} ${p.nodesBefore}→${p.nodesAfter}`).join(", ")}`);
  }
  lines.push(
    `  kernels: step ${x.kernels.step} (${x.kernels.gradients} gradients + ${x.kernels.update} update) for ${x.nodes} nodes, forward ${x.kernels.forward}` +
      `${x.fusion ? "" : " (fusion off)"}`,
  );
  const recompute = x.remat ? `, recomputing ${mflop(x.flops.recomputed)}` : "";
  lines.push(
    `  FLOPs per step: forward ${mflop(x.flops.forward)}, backward ${mflop(x.flops.backward)} (${x.flops.ratio.toFixed(2)}× forward${recompute}), update ${mflop(x.flops.update)}`,
  );
  const m = x.memory;
  const saved = m.savedActivations;
  const savedText = m.mixed
    ? `${mb(saved.bytes)} as bfloat16, ${mb(m.mixed.savedAsF32Bytes)} as f32: ${percentLess(saved.bytes, m.mixed.savedAsF32Bytes)}`
    : mb(saved.bytes);
  lines.push(
    `  memory: peak ${mb(m.peakBytes)} (kept ${mb(m.pinnedBytes)}, temporaries ${mb(m.sharedTempBytes)} shared from ${mb(m.tempBytes)}), ` +
      `saved activations ${saved.count} (${savedText}), in place ${m.inplace}${x.remat ? ", remat on" : ""}${m.mixed ? ", mixed precision" : ""}`,
  );
  return lines.join("\n");
}
