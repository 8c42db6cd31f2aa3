// The lowering stage of compile(): the training graph and the forward graph,
// as fused by the fusion stage (fusion/plans.ts), become ordered lists of
// kernels over static buffers, plus the optimizer update. With `fusion: false`
// every node is a kernel of its own, as emitted before fusion existed. Params,
// gradients and optimizer state are laid out alike in blocks, so one loop
// updates every param.
import type { Graph } from "../ir/graph.js";
import { reachable } from "../ir/graph.js";
import { OPS } from "../ops/index.js";
import type { Tensor } from "../ir/node.js";
import type { Shape } from "../ir/types.js";
import { formatLoc, sizeOf } from "../ir/types.js";
import type { DTypeName, MixedSpec, OptimizerSpec } from "../../runtime/manifest.js";
import type { Stmt } from "../kernel/kir.js";
import { bin, load, loop, num, parallel, ref, store } from "../kernel/kir.js";
import type { ArenaName, Buffer, BufferRole, Precision } from "./lower.js";
import { arenaOf, storageNode, storedDtype, uniformValue } from "./lower.js";
import { Namer, printedNodes } from "./names.js";
import type { ResolvedOptimizer, UpdateKernel, UpdateTarget } from "./optimizer.js";
import { checkLrMultipliers, clipKernel, lrMultiplier, resolveOptimizer, stateSlots, updateKernel } from "./optimizer.js";
import type { Value } from "../fusion/program.js";
import type { FusionPlan } from "../fusion/fuse.js";
import type { EntryPlans } from "../fusion/plans.js";
import type { KernelDraft, KernelEnv, LoweringTarget } from "./kernelBuild.js";
import { groupKernel } from "./kernelBuild.js";
import type { ExternWork } from "../kernel/kir.js";

/** Which entry point runs a kernel. */
export type Entry = "forward" | "gradients" | "update";

/** One kernel: a body in the kernel IR and the buffers its names refer to. */
export interface Kernel {
  /** A unique identifier, named after what it computes (`matmul_x_W1_add_relu`, `adam_params`). */
  readonly name: string;
  readonly body: readonly Stmt[];
  /** Kernel IR buffer name (`out`, `in0`, `p`, ...) → buffer. */
  readonly buffers: Readonly<Record<string, Buffer>>;
  /** The graph node it is anchored at (absent for copies and optimizer kernels). */
  readonly node?: Tensor;
  /** Every graph node it computes. */
  readonly nodes: readonly Tensor[];
  /** The printed binding of its node, or what an update does. */
  readonly what: string;
  /** The user's file:line, or "grad of relu at file:line" for backward nodes. */
  readonly where: string;
  readonly entry: readonly Entry[];
  /** Trainable params whose gradient depends on this kernel. */
  readonly gradOf: readonly string[];
  /** The pass it belongs to. */
  readonly phase: "forward" | "backward" | "update";
  /** (read, written) buffer names whose buffers the memory plan may place at one offset. */
  readonly inplace: readonly (readonly [string, string])[];
  /** How many recomputed (rematerialized) values it computes. */
  readonly recomputes: number;
  /** Work the target's own code does where the body has its `extern` statement (see ExternWork). */
  readonly extern?: ExternWork;
  /** A fused kernel's locals that hold a node's element → the node's index in `nodes` (see `probedKernel`). */
  readonly probes?: ReadonlyMap<string, number>;
}

/** An optimizer-state buffer of one param. */
export interface StateBuffer {
  readonly param: string;
  readonly slot: "m" | "v" | "velocity";
  readonly buffer: Buffer;
}

/** Scalars the runtime writes before a step: the learning rate, the step's number and (mixed precision) the loss scale. */
export interface Hyper {
  readonly lr: Buffer;
  readonly step: Buffer;
  readonly lossScale?: Buffer;
  /** The run's seed that random ops (dropout) draw from, when the graph has one. */
  readonly runSeed?: Buffer;
}

export interface Schedule {
  /** The user's graph (loss and outputs) and the training graph (plus one gradient per trainable param). */
  readonly graph: Graph;
  readonly train: Graph;
  readonly precision: Precision;
  /** Mixed precision: f32 temporaries live in arena H as bfloat16. */
  readonly mixed?: MixedSpec;
  /** The backend its kernels were built for, which emits them. */
  readonly target: LoweringTarget;
  readonly optimizer: ResolvedOptimizer;
  readonly gradClip?: number;
  readonly fusion: boolean;
  readonly remat: boolean;
  /** Every buffer, in creation order (the memory plan lays them out). */
  readonly buffers: readonly Buffer[];
  /** The buffer of each input, param, output and the loss (aliases share their source's). */
  readonly bufferOf: ReadonlyMap<Tensor, Buffer>;
  readonly hyper: Hyper;
  readonly state: readonly StateBuffer[];
  /** Kernels in execution order for each entry point (forward-only kernels interleaved), then the update kernels. */
  readonly kernels: readonly Kernel[];
  /** Per param name, the buffer its gradient is in (trainable params only). */
  readonly grads: ReadonlyMap<string, Buffer>;
  /** Which entry points read each input. */
  readonly inputUse: ReadonlyMap<string, readonly ("forward" | "train")[]>;
  /** The fusion plans of forward() and of the training step. */
  readonly plans: EntryPlans;
}

/** Kernels of one entry point, in order. */
export function kernelsOf(s: Schedule, entry: Entry): Kernel[] {
  return s.kernels.filter((k) => k.entry.includes(entry));
}

/** Consecutive params (in block order) grouped by learning-rate multiplier: each group's offset and size in the blocks. */
function multiplierRuns(params: readonly { name: string; size: number; multiplier: number }[]): { at: number; size: number; multiplier: number; names: string[] }[] {
  const runs: { at: number; size: number; multiplier: number; names: string[] }[] = [];
  let at = 0;
  for (const p of params) {
    const last = runs.at(-1);
    if (last && last.multiplier === p.multiplier) {
      last.size += p.size;
      last.names.push(p.name);
    } else {
      runs.push({ at, size: p.size, multiplier: p.multiplier, names: [p.name] });
    }
    at += p.size;
  }
  return runs;
}

/** Kernels of two entry points merged into one list that keeps each one's order. */
function mergeOrders(first: readonly Kernel[], second: readonly Kernel[]): Kernel[] {
  const inSecond = new Set(second);
  const out: Kernel[] = [];
  let i = 0;
  for (const k of second) {
    if (first.includes(k)) {
      while (i < first.length && first[i] !== k) {
        if (!inSecond.has(first[i]!)) out.push(first[i]!);
        i++;
      }
      i++;
    }
    out.push(k);
  }
  for (; i < first.length; i++) if (!inSecond.has(first[i]!)) out.push(first[i]!);
  return out;
}

/** How the lowering stage lowers (compile()'s options, resolved). */
export interface LowerOptions {
  readonly precision: Precision;
  readonly optimizer?: OptimizerSpec;
  readonly gradClip?: number;
  /** false: one update kernel per param, as before fusion. */
  readonly fusion: boolean;
  /** Whether the training step recomputes forward values (the remat stage's decision, recorded). */
  readonly remat: boolean;
  /** The backend the kernels are for: lowering asks its reduction width and reserved names. */
  readonly target: LoweringTarget;
  /** Mixed precision: f32 temporaries (activations, saved activations, their gradients) stored as bfloat16 in arena H; the loss scale's policy. */
  readonly mixed?: MixedSpec;
}

/** Creates the buffers, in creation order (the memory plan lays them out in it). */
class BufferTable {
  readonly buffers: Buffer[] = [];
  constructor(readonly precision: Precision) {}

  add(label: string, role: BufferRole, shape: Shape, dtype: DTypeName, extra: Partial<Buffer> = {}, half = false): Buffer {
    const d = storedDtype(dtype, this.precision);
    const arena: ArenaName = half && d === "f32" ? "H" : arenaOf(d);
    const b: Buffer = { id: this.buffers.length, label, role, arena, shape: [...shape], dtype: d, size: sizeOf(shape), ...extra };
    this.buffers.push(b);
    return b;
  }
}

/** The buffers of the graph's sources and results, before any kernel exists. */
interface Layout {
  readonly hyper: Hyper;
  readonly trainable: Graph["params"];
  /** Each trainable param's element offset in the blocks. */
  readonly at: ReadonlyMap<string, number>;
  readonly pBlock?: Buffer;
  readonly gBlock?: Buffer;
  readonly slots: readonly StateBuffer["slot"][];
  readonly sBlocks: ReadonlyMap<StateBuffer["slot"], Buffer>;
  readonly bufferOf: Map<Tensor, Buffer>;
  /** Results (the loss, outputs, gradients computed in place) that keep their own buffers. */
  readonly pinned: ReadonlyMap<Tensor, Buffer>;
  readonly grads: ReadonlyMap<string, Buffer>;
  /** Gradients that are not their own node, copied into their block after the step's kernels. */
  readonly copies: readonly { name: string; from: Tensor; to: Buffer }[];
  readonly constBuffer: (t: Tensor) => Buffer;
}

/**
 * Params, gradients and each optimizer-state slot as blocks with one layout
 * (so one loop updates every param), inputs and params, and the buffers of
 * the loss, the outputs and the gradients.
 */
function layoutSources(forward: Graph, train: Graph, table: BufferTable, optimizer: ResolvedOptimizer, nameOf: (t: Tensor) => string, mixed: boolean): Layout {
  const precision = table.precision;
  const newBuffer = table.add.bind(table);
  const hyper: Hyper = {
    lr: newBuffer("lr", "hyper", [], precision),
    step: newBuffer("step", "hyper", [], "i32"),
    ...(mixed ? { lossScale: newBuffer("lossScale", "hyper", [], "f32") } : {}),
    ...([...train.nodes, ...forward.nodes].some((t) => OPS[t.op].readsStep) ? { runSeed: newBuffer("runSeed", "hyper", [], "i32") } : {}),
  };

  const trainable = forward.params.filter((p) => train.grads[p.name] !== undefined);
  const total = trainable.reduce((n, p) => n + sizeOf(p.shape), 0);
  const at = new Map<string, number>();
  trainable.reduce((n, p) => (at.set(p.name, n), n + sizeOf(p.shape)), 0);
  const block = (label: string, role: BufferRole) => newBuffer(label, role, [total], precision);
  const pBlock = trainable.length ? block("params", "block") : undefined;
  const gBlock = trainable.length ? block("grads", "block") : undefined;
  const slots = trainable.length ? stateSlots(optimizer) : [];
  const sBlocks = new Map(slots.map((slot) => [slot, block(`${slot}(params)`, "block")]));

  const bufferOf = new Map<Tensor, Buffer>();
  for (const i of forward.inputs) bufferOf.set(i.node, newBuffer(i.name, "input", i.shape, i.dtype, { node: i.node }));
  for (const p of forward.params) {
    const within = pBlock && at.has(p.name) ? { within: { block: pBlock, at: at.get(p.name)! } } : {};
    bufferOf.set(p.node, newBuffer(p.name, "param", p.shape, p.dtype, { node: p.node, ...within }));
  }
  const constBuffer = (t: Tensor): Buffer => {
    let b = bufferOf.get(t);
    if (!b) bufferOf.set(t, (b = newBuffer(nameOf(t), "const", t.shape, t.dtype, { node: t, fill: t.p("const").value })));
    return b;
  };
  // results keep their own buffers: the loss, then the outputs
  const pinned = new Map<Tensor, Buffer>();
  const pin = (t: Tensor, label: string, role: BufferRole) => {
    const s = storageNode(t);
    if (bufferOf.has(s) || pinned.has(s) || s.op === "input" || s.op === "param") return;
    if (s.op === "const") return void bufferOf.set(s, constBuffer(s));
    const b = newBuffer(label, role, s.shape, s.dtype, { node: s });
    pinned.set(s, b);
    bufferOf.set(s, b);
  };
  if (train.loss) pin(train.loss, nameOf(storageNode(train.loss)), "loss");
  for (const [name, t] of Object.entries(forward.outputs)) pin(t, name, "output");
  // a gradient is computed straight into its block when its node is its own; else it is copied there
  const grads = new Map<string, Buffer>();
  const copies: { name: string; from: Tensor; to: Buffer }[] = [];
  for (const p of trainable) {
    const g = train.grads[p.name]!;
    const s = storageNode(g);
    const view = newBuffer(`d${p.name}`, "grad", p.shape, p.dtype, { within: { block: gBlock!, at: at.get(p.name)! } });
    grads.set(p.name, view);
    // only a backward node: a forward one may also be written by forward()
    const own = s.origin !== undefined && !pinned.has(s) && !bufferOf.has(s) && s.op !== "const";
    if (own) {
      pinned.set(s, view);
    } else {
      copies.push({ name: p.name, from: s, to: view });
    }
  }
  for (const t of forward.outputs ? Object.values(forward.outputs) : []) if (!bufferOf.has(t) && bufferOf.has(storageNode(t))) bufferOf.set(t, bufferOf.get(storageNode(t))!);
  if (train.loss && !bufferOf.has(train.loss) && bufferOf.has(storageNode(train.loss))) bufferOf.set(train.loss, bufferOf.get(storageNode(train.loss))!);
  return { hyper, trainable, at, ...(pBlock ? { pBlock } : {}), ...(gBlock ? { gBlock } : {}), slots, sBlocks, bufferOf, pinned, grads, copies, constBuffer };
}

/**
 * The kernels of each fusion plan's groups, bound to buffers; a kernel both
 * entry points compute alike (same body and buffers) is one kernel run by both.
 */
function planKernels(plans: EntryPlans, train: Graph, env: KernelEnv, namer: Namer): { forward: Kernel[]; step: Kernel[] } {
  // which params' gradients each node feeds
  const gradOf = new Map<Tensor, string[]>();
  for (const [name, g] of Object.entries(train.grads)) {
    for (const t of reachable([g])) gradOf.set(t, [...(gradOf.get(t) ?? []), name]);
  }
  const bySignature = new Map<string, { kernel: Kernel; entry: Entry[] }>();
  const build = (plan: FusionPlan, entry: Entry): Kernel[] =>
    plan.groups.map((g) => {
      const draft: KernelDraft = groupKernel(env, plan, g);
      const sig = `${draft.base}|${JSON.stringify(draft.body)}|${Object.entries(draft.buffers).map(([n, b]) => `${n}=${b.id}`).join(",")}`;
      const found = bySignature.get(sig);
      if (found) {
        if (!found.entry.includes(entry)) found.entry.push(entry);
        return found.kernel;
      }
      const feeds = [...new Set(draft.nodes.flatMap((t) => gradOf.get(t) ?? []))];
      const order = Object.keys(train.grads);
      const entries: Entry[] = [entry];
      const name = namer.fresh(draft.base);
      const kernel: Kernel = {
        name,
        body: draft.body,
        buffers: draft.buffers,
        node: draft.node,
        nodes: draft.nodes,
        what: draft.what,
        where: draft.where,
        entry: entries,
        gradOf: order.filter((n) => feeds.includes(n)),
        phase: draft.phase,
        inplace: draft.inplace,
        recomputes: draft.recomputes,
        ...(draft.extern ? { extern: draft.extern } : {}),
        ...(draft.probes ? { probes: draft.probes } : {}),
      };
      bySignature.set(sig, { kernel, entry: entries });
      return kernel;
    });
  const forward = build(plans.forward, "forward");
  const step = build(plans.step, "gradients");
  return { forward, step };
}

/** A kernel that copies a value computed in the step (or a uniform literal) into `to`. */
type CopyKernel = Omit<Kernel, "entry" | "gradOf" | "phase" | "where">;

/** Makes copy kernels: `stored` finds the buffer a step value is in. */
function copyKernels(layout: Layout, precision: Precision, stored: (t: Tensor) => Buffer | undefined, namer: Namer) {
  return (base: string, target: string, from: Tensor, to: Buffer): CopyKernel => {
    const lit = uniformValue(from, precision);
    const src = lit !== undefined ? undefined : from.op === "const" ? layout.constBuffer(from) : stored(from);
    if (lit === undefined && !src) throw new Error(`schedule: the value of ${target} is in no buffer`);
    const value = src ? load("in0", ref("i")) : num(lit ?? 0);
    return {
      name: namer.fresh(base),
      body: [loop("i", to.size, [store("out", ref("i"), value)])],
      buffers: { out: to, ...(src ? { in0: src } : {}) },
      nodes: [],
      what: `${target} = copy of ${JSON.stringify(src?.label ?? String(lit))}`,
      inplace: [],
      recomputes: 0,
    };
  };
}

/**
 * Mixed precision: the backward pass started from the loss scale S, so every
 * gradient is S·dLoss/dθ; one loop over the gradient block divides S out
 * (exactly: S is a power of two), leaving dLoss/dθ, or ±Infinity/NaN where
 * the scaled backward pass overflowed, for the runtime to check.
 */
function unscaleKernel(layout: Layout, namer: Namer): Kernel[] {
  const { gBlock, hyper } = layout;
  if (!gBlock || !hyper.lossScale) return [];
  return [
    {
      name: namer.fresh("unscale_grads"),
      body: [parallel("i", gBlock.size, [store("g", ref("i"), bin("/", load("g", ref("i")), load("lossScale", 0)))])],
      buffers: { g: gBlock, lossScale: hyper.lossScale },
      nodes: [],
      what: "grads /= lossScale (mixed precision), every trainable param's gradient in one loop",
      where: "",
      entry: ["gradients"],
      gradOf: layout.trainable.map((p) => p.name),
      phase: "backward",
      inplace: [],
      recomputes: 0,
    },
  ];
}

/**
 * The update: the optimizer-state buffers, optional clipping, then every
 * param in one loop over the blocks (or one kernel per param unfused).
 */
function updateKernels(layout: Layout, table: BufferTable, optimizer: ResolvedOptimizer, o: LowerOptions, namer: Namer): { state: StateBuffer[]; kernels: Kernel[] } {
  const { trainable, slots, sBlocks, at, pBlock, gBlock, hyper } = layout;
  const state: StateBuffer[] = [];
  for (const p of trainable) {
    for (const slot of slots) {
      const b = table.add(`${slot}(${p.name})`, "state", p.shape, p.dtype, { within: { block: sBlocks.get(slot)!, at: at.get(p.name)! } });
      state.push({ param: p.name, slot, buffer: b });
    }
  }
  const targets: UpdateTarget[] = trainable.map((p) => ({ name: p.name, grad: layout.grads.get(p.name)!, param: layout.bufferOf.get(p.node)! }));
  const updates: UpdateKernel[] = [];
  const scale = o.gradClip !== undefined && targets.length ? table.add("clipScale", "scratch", [], o.precision) : undefined;
  checkLrMultipliers(optimizer, trainable.map((p) => p.name));
  const multiplierOf = (name: string) => lrMultiplier(optimizer, name);
  if (o.fusion && pBlock && gBlock) {
    const all: UpdateTarget = { name: "params", param: pBlock, grad: gBlock };
    if (scale) updates.push(clipKernel([all], o.gradClip!, scale));
    const runs = multiplierRuns(trainable.map((p) => ({ name: p.name, size: sizeOf(p.shape), multiplier: multiplierOf(p.name) })));
    if (runs.length === 1 && runs[0]!.multiplier === 1) updates.push(updateKernel(optimizer, all, hyper, Object.fromEntries(sBlocks), scale));
    // one loop per run of params with the same multiplier, over that stretch of the blocks
    for (const run of runs.length === 1 && runs[0]!.multiplier === 1 ? [] : runs) {
      const view = (b: Buffer, role: BufferRole) => table.add(`${b.label}[${run.names.join(",")}]`, role, [run.size], o.precision, { within: { block: b, at: run.at } });
      const target: UpdateTarget = { name: run.names.length === 1 ? run.names[0]! : `${run.names[0]}…${run.names.at(-1)}`, param: view(pBlock, "param"), grad: view(gBlock, "grad") };
      const own = Object.fromEntries([...sBlocks].map(([slot, b]) => [slot, view(b, "state")]));
      const k = updateKernel(optimizer, target, hyper, own, scale, run.multiplier);
      updates.push({ ...k, what: `${k.what}: ${run.names.join(", ")} in one loop` });
    }
  } else {
    if (scale) updates.push(clipKernel(targets, o.gradClip!, scale));
    for (const t of targets) {
      const own = Object.fromEntries(state.filter((s) => s.param === t.name).map((s) => [s.slot, s.buffer]));
      updates.push(updateKernel(optimizer, t, hyper, own, scale, multiplierOf(t.name)));
    }
  }
  const kernels: Kernel[] = updates.map((u) => ({
    name: namer.fresh(u.base),
    body: u.body,
    buffers: u.buffers,
    nodes: [],
    what: u.param === "params" ? `${u.what}, every trainable param in one loop (${trainable.map((p) => p.name).join(", ")})` : u.what,
    where: "",
    entry: ["update"],
    gradOf: [],
    phase: "update",
    inplace: [],
    recomputes: 0,
  }));
  return { state, kernels };
}

/** Which entry points read each input. */
function inputUses(forward: Graph, plans: EntryPlans): Map<string, ("forward" | "train")[]> {
  const inputsOf = (plan: FusionPlan) => new Set(plan.program.values.filter((v) => v.node.op === "input").map((v) => v.node));
  const fwdInputs = inputsOf(plans.forward);
  const stepInputs = inputsOf(plans.step);
  return new Map(forward.inputs.map((i) => [i.name, [...(fwdInputs.has(i.node) ? ["forward" as const] : []), ...(stepInputs.has(i.node) ? ["train" as const] : [])]]));
}

/**
 * The lowering stage: the fusion plans become kernels over static buffers.
 * `forward` is the graph forward() computes (its outputs), `train` the
 * training graph (loss and gradients), both as the graph passes left them.
 * Steps, in order: the sources' and results' buffers, the kernels of each
 * plan, the gradient copies, the optimizer update.
 */
export function lowerSchedule(forward: Graph, train: Graph, plans: EntryPlans, o: LowerOptions): Schedule {
  const { precision } = o;
  const optimizer = resolveOptimizer(o.optimizer);
  const printed = printedNodes(train);
  const nameOf = (t: Tensor) => printed.get(t)?.name ?? `n${t.id}`;
  const table = new BufferTable(precision);
  const layout = layoutSources(forward, train, table, optimizer, nameOf, o.mixed !== undefined && train.loss !== undefined);
  const { bufferOf, pinned } = layout;

  // every other stored value: a temporary, shared by both entry points when both store it
  const temps = new Map<string, Buffer>();
  const bufferOfValue = (v: Value): Buffer => {
    const t = v.node;
    if (t.op === "const") return bufferOf.get(t) ?? layout.constBuffer(t);
    const known = bufferOf.get(t);
    if (known && (t.op === "input" || t.op === "param")) return known;
    if (!v.copy && pinned.has(t)) return pinned.get(t)!;
    const key = `${t.id}:${v.copy ? 1 : 0}`;
    let b = temps.get(key);
    if (!b) temps.set(key, (b = table.add(`${nameOf(t)}${v.copy ? "'" : ""}`, "node", t.shape, t.dtype, { node: t }, o.mixed !== undefined)));
    return b;
  };
  const namer = new Namer(o.target.reservedNames);
  const env: KernelEnv = { precision, ...(o.mixed ? { mixed: true } : {}), printed, bufferOf: bufferOfValue, target: o.target, step: layout.hyper.step, ...(layout.hyper.runSeed ? { runSeed: layout.hyper.runSeed } : {}), ...(layout.hyper.lossScale ? { lossScale: layout.hyper.lossScale } : {}) };
  const kernels = planKernels(plans, train, env, namer);
  const stored = (t: Tensor) => bufferOf.get(t) ?? pinned.get(t) ?? temps.get(`${t.id}:0`);
  const copyKernel = copyKernels(layout, precision, stored, namer);
  // gradients that are not their own node: copied into their block
  const gradCopies: Kernel[] = layout.copies.map((c) => ({
    ...copyKernel(`copy_grad_${c.name}`, `d${JSON.stringify(c.name)}`, c.from, c.to),
    where: formatLoc(train.grads[c.name]!.src),
    entry: ["gradients"],
    gradOf: [c.name],
    phase: "backward",
  }));
  const stepKernels = [...kernels.step, ...gradCopies, ...unscaleKernel(layout, namer)];
  const update = updateKernels(layout, table, optimizer, o, namer);
  // state updates (batch norm's moving statistics): each param takes its value once the step has read it
  for (const [name, t] of Object.entries(train.updates)) {
    const p = forward.param(name)!;
    const k = copyKernel(`assign_${name}`, JSON.stringify(name), storageNode(t), bufferOf.get(p.node)!);
    update.kernels.push({ ...k, where: formatLoc(t.src), entry: ["update"], gradOf: [], phase: "update" });
  }
  return {
    graph: forward,
    train,
    precision,
    ...(o.mixed ? { mixed: o.mixed } : {}),
    target: o.target,
    optimizer,
    ...(o.gradClip !== undefined ? { gradClip: o.gradClip } : {}),
    fusion: o.fusion,
    remat: o.remat,
    buffers: table.buffers,
    bufferOf,
    hyper: layout.hyper,
    state: update.state,
    // only kernels of the step compute gradients (inspect --grad reads step.ts)
    kernels: [...mergeOrders(kernels.forward, stepKernels), ...update.kernels].map((k) => (k.entry.includes("gradients") ? k : { ...k, gradOf: [] })),
    grads: layout.grads,
    inputUse: inputUses(forward, plans),
    plans,
  };
}

/** The lowering stage's dump: every kernel with its entry points, what it computes and the nodes it covers. */
export function kernelListText(s: Schedule): string {
  return s.kernels.map((k) => `${k.name} [${k.entry.join(",")}] ${k.phase}: ${k.what}${k.nodes.length > 1 ? ` (${k.nodes.length} nodes)` : ""}`).join("\n");
}
