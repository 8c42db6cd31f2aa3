// From kernel groups to kernels: each group is lowered (fused kernels, or one
// node through its op record), bound to buffers, named after what it computes
// and documented with one comment line per graph node it includes.
import type { Tensor } from "../ir/node.js";
import { GraphError } from "../ir/types.js";
import { OPS } from "../ops/index.js";
import { describeOrigin } from "../ir/printer.js";
import type { Stmt } from "../kernel/kir.js";
import type { Buffer, Precision } from "./lower.js";
import { lowerNode, uniformValue } from "./lower.js";
import type { Printed } from "./names.js";
import { commentText, sanitize } from "./names.js";
import type { FusionPlan } from "../fusion/fuse.js";
import type { Group } from "../fusion/groups.js";
import type { FusedKernel } from "./fusedKernel.js";
import { KernelContext } from "./fusedKernel.js";
import { pointwiseKernel, reduceKernel } from "./loopKernels.js";
import { matmulKernel } from "./matmulKernel.js";
import type { Value } from "../fusion/program.js";
import { storageOf } from "../fusion/program.js";

/** A kernel before it gets its unique name and entry points. */
export interface KernelDraft {
  /** The base of its name, e.g. `matmul_x_W1_add_relu`. */
  readonly base: string;
  readonly body: readonly Stmt[];
  readonly buffers: Readonly<Record<string, Buffer>>;
  /** The graph node it is anchored at, and every node it computes (members and inlined values), by id. */
  readonly node: Tensor;
  readonly nodes: readonly Tensor[];
  readonly what: string;
  readonly where: string;
  readonly phase: "forward" | "backward";
  readonly inplace: readonly (readonly [string, string])[];
  /** Values recomputed in the backward pass that this kernel computes. */
  readonly recomputes: number;
  /** Work the target's own code does (see FusedKernel.extern). */
  readonly extern?: FusedKernel["extern"];
  /** A fused kernel's locals that hold a node's element → the node's index in `nodes` (see `probedKernel`). */
  readonly probes?: ReadonlyMap<string, number>;
}

/**
 * What lowering asks of the target it lowers for (compiler/backends/target.ts's
 * Target has this and more); the schedule records it.
 */
export interface LoweringTarget {
  /** The backend's name (printed in kernels.txt). */
  readonly name: string;
  /** The runtime device its bundles run on (manifest.backend). */
  readonly device: string;
  /**
   * Columns a reduction over all but the last axis accumulates at once, each
   * in a local of its own, so that it reads rows contiguously (below 2: one
   * accumulator per output, row by row).
   */
  readonly reduceColumns: number;
  /** Names no kernel may take: module-level names of the target's emitted code. */
  readonly reservedNames: readonly string[];
}

/** What lowering a group needs from the schedule. */
export interface KernelEnv {
  readonly precision: Precision;
  /** Mixed precision (see LowerOptions.mixed). */
  readonly mixed?: boolean;
  readonly printed: ReadonlyMap<Tensor, Printed>;
  /** The buffer of a stored value. */
  readonly bufferOf: (v: Value) => Buffer;
  /** The target the kernels are for. */
  readonly target: LoweringTarget;
  /** The step's number (i32 scalar), bound as `step` for ops whose record says `readsStep`. */
  readonly step?: Buffer;
  /** The run's seed (i32 scalar), bound as `runSeed` for the same ops. */
  readonly runSeed?: Buffer;
  /** Mixed precision's loss scale (f32 scalar), bound as `lossScale` for ops whose record says `readsLossScale`. */
  readonly lossScale?: Buffer;
}

const nameOf = (env: KernelEnv, t: Tensor): string => env.printed.get(t)?.name ?? `n${t.id}`;

/** The name base of a node's kernel as emitted one node per kernel: `matmul_x_W1`, `grad_relu_c_where`. */
export function nodeKernelBase(env: KernelEnv, t: Tensor): string {
  if (t.origin) return `grad_${t.origin.of.op}_${sanitize(nameOf(env, t.origin.of))}_${t.op}`;
  const operands = t.inputs.filter((x) => uniformValue(x, env.precision) === undefined).map((x) => sanitize(nameOf(env, x)));
  return [t.op, ...operands].join("_");
}

/** One node through its op record's lowering, as before fusion. */
function singleKernel(env: KernelEnv, v: Value): FusedKernel {
  const lowered = lowerNode(v.node, env.precision, env.mixed === true);
  const buffers = new Map<string, Value>([["out", v]]);
  for (const k of lowered.reads) buffers.set(`in${k}`, storageOf(v.inputs[k]!));
  return { body: lowered.body, buffers, inplace: [], computed: new Set([v]) };
}

/** Lowers a group and binds its buffers. */
export function groupKernel(env: KernelEnv, plan: FusionPlan, g: Group): KernelDraft {
  const anchor = g.members[0]!;
  let fused: FusedKernel;
  let cx: KernelContext | undefined;
  if (g.kind === "single" || g.kind === "opaque") {
    fused = singleKernel(env, anchor);
  } else {
    cx = new KernelContext(plan, g, env.precision, (t) => nameOf(env, t), env.mixed === true);
    fused = g.kind === "pointwise" ? pointwiseKernel(cx) : g.kind === "reduce" ? reduceKernel(cx, env.target.reduceColumns) : matmulKernel(cx);
  }
  const buffers: Record<string, Buffer> = {};
  for (const [name, v] of fused.buffers) buffers[name] = env.bufferOf(v);
  if ((OPS[anchor.node.op] as { readsStep?: boolean }).readsStep) {
    if (!env.step) throw new GraphError(anchor.node.op, "reads the step's number, but this schedule has no step buffer", anchor.node.src);
    buffers["step"] = env.step;
    if (!env.runSeed) throw new GraphError(anchor.node.op, "reads the run's seed, but this schedule has no runSeed buffer", anchor.node.src);
    buffers["runSeed"] = env.runSeed;
  }
  // the loss scale is read inline, wherever a member or a value computed for it uses it
  if ([...fused.computed, ...g.members].some((v) => (OPS[v.node.op] as { readsLossScale?: boolean }).readsLossScale)) {
    if (!env.lossScale) throw new GraphError("lossScale", "reads the loss scale, but this schedule has no lossScale buffer (compile with precision \"mixed\")", anchor.node.src);
    buffers["lossScale"] = env.lossScale;
  }
  const computed = [...fused.computed].sort((a, b) => a.node.id - b.node.id || Number(a.copy) - Number(b.copy));
  const nodes = [...new Set(computed.map((v) => v.node))];
  const probes = new Map<string, number>();
  if (cx && nodes.length > 1) {
    for (const [local, v] of cx.locals) {
      const i = nodes.indexOf(v.node);
      if (i >= 0) probes.set(local, i);
    }
  }
  const binding = (t: Tensor) => env.printed.get(t)?.binding ?? String(t);
  const others = g.members.slice(1).map((v) => nameOf(env, v.node));
  const what = others.length ? `${binding(anchor.node)} (fused with ${others.join(" ")})` : binding(anchor.node);
  const ops = [...new Set(g.members.slice(1).map((v) => v.node.op))].slice(0, 4);
  const base = `${anchor.copy ? "re_" : ""}${[nodeKernelBase(env, anchor.node), ...(g.kind === "single" ? [] : ops)].join("_")}`;
  // fused kernels list every node they compute, one per line, with its source
  const comments: Stmt[] =
    g.kind === "single"
      ? []
      : computed.map((v) => {
          const origin = describeOrigin(v.node);
          const text = `${binding(v.node)}${v.copy ? " (recomputed)" : ""}${origin ? `  # ${origin}` : ""}`;
          return { k: "comment", text: commentText(text) };
        });
  return {
    base,
    body: [...comments, ...fused.body],
    buffers,
    node: anchor.node,
    nodes,
    what,
    where: describeOrigin(anchor.node),
    phase: g.phase,
    inplace: fused.inplace,
    recomputes: computed.filter((v) => v.copy).length,
    ...(fused.extern ? { extern: fused.extern } : {}),
    ...(probes.size ? { probes } : {}),
  };
}
