// The remat and fusion stages of compile(): which forward values the backward
// pass recomputes instead of reading from memory, then the fusion plan of each
// entry point (forward() over the outputs, the training step over the loss
// and the gradients).
import type { Graph } from "../ir/graph.js";
import { reachable } from "../ir/graph.js";
import type { Tensor } from "../ir/node.js";
import type { Precision } from "../lower/lower.js";
import type { SavePolicy, Value } from "./program.js";
import { KEEP_ALL, buildProgram, kindOf } from "./program.js";
import { fuseProgram } from "./fuse.js";
import type { CostModel, FusionPlan } from "./fuse.js";

/** The roots of the training step: the loss, one gradient per trainable param, then the state updates (`g.assign`). */
export function trainingRoots(train: Graph): Tensor[] {
  return [...(train.loss ? [train.loss] : []), ...Object.values(train.grads), ...Object.values(train.updates)];
}

/** What the remat stage decided. */
export interface Remat {
  /** Whether the backward pass recomputes forward values. */
  readonly remat: boolean;
  /** Which forward values the backward reads from memory. */
  readonly policy: SavePolicy;
}

/**
 * Recompute forward values in the backward pass instead of keeping them:
 * elementwise ones by default, everything but checkpoints when the graph has
 * `checkpoint` nodes. `asked` overrides whether to (default: exactly when the
 * graph has checkpoints).
 */
export function rematPolicy(train: Graph, precision: Precision, asked?: boolean): Remat {
  const checkpoints = reachable(trainingRoots(train)).some((t) => t.op === "checkpoint");
  const remat = asked ?? checkpoints;
  if (!remat) return { remat, policy: KEEP_ALL };
  if (checkpoints) return { remat, policy: { recompute: true, saved: (t) => t.op === "checkpoint" } };
  return { remat, policy: { recompute: true, saved: (t) => ["reduce", "matmul", "opaque"].includes(kindOf(t, precision)) || t.op === "checkpoint" } };
}

/** The fusion plans of forward() and of the training step. */
export interface EntryPlans {
  readonly forward: FusionPlan;
  readonly step: FusionPlan;
}

export interface FuseOptions {
  readonly precision: Precision;
  /** false: one kernel per node. */
  readonly fusion: boolean;
  /** The target's cost model (how often its matmul reads each operand element, ...). */
  readonly cost: CostModel;
  readonly remat: Remat;
}

/** Fuses the training step (with the remat policy) and forward() (which keeps every value it needs). */
export function fuseEntryPoints(forward: Graph, train: Graph, o: FuseOptions): EntryPlans {
  const options = { fusion: o.fusion, cost: o.cost, precision: o.precision };
  const step = fuseProgram(buildProgram(trainingRoots(train), o.precision, o.remat.policy), options);
  const fwd = fuseProgram(buildProgram(Object.values(forward.outputs), o.precision), options);
  return { forward: fwd, step };
}

/** The remat stage's dump: the decision, then the forward nodes the backward reads from memory. */
export function rematText(train: Graph, r: Remat, printed: ReadonlyMap<Tensor, { readonly name: string }>): string {
  if (!r.remat) return "remat: off (the backward pass reads every forward value it needs from memory)";
  const forward = reachable(trainingRoots(train)).filter((t) => !t.origin && t.op !== "input" && t.op !== "param" && t.op !== "const");
  const kept = forward.filter((t) => r.policy.saved(t)).map((t) => printed.get(t)?.name ?? `n${t.id}`);
  return `remat: on (the backward pass recomputes forward values it does not keep)\nkept: ${kept.join(", ") || "(none)"}`;
}

/** The fusion stage's dump: per entry point, each kernel group with its kind and the nodes it computes. */
export function fusionText(plans: EntryPlans, printed: ReadonlyMap<Tensor, { readonly name: string }>): string {
  const name = (v: Value) => `${printed.get(v.node)?.name ?? `n${v.node.id}`}${v.copy ? "'" : ""}`;
  const plan = (title: string, p: FusionPlan) => [
    `${title}: ${p.groups.length} kernels, ${p.stored.size} stored values`,
    ...p.groups.map((g) => `  ${g.kind} ${g.phase} [${g.shape.join(",")}]: ${g.members.map(name).join(" ")}`),
  ];
  return [...plan("forward()", plans.forward), "", ...plan("step", plans.step)].join("\n");
}
