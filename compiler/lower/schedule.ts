// The schedule: the training graph (grad(graph)) and the forward graph become
// ordered lists of kernels over static buffers, plus the optimizer update.
// Fusion (fuse.ts) decides which values are stored and which kernel computes
// each; with `fusion: false` every node is a kernel of its own, as emitted
// before fusion existed. Params, gradients and optimizer state are laid out
// alike in blocks, so one loop updates every param.
import type { Graph } from "../ir/graph.js";
import { reachable } from "../ir/graph.js";
import type { Tensor } from "../ir/node.js";
import type { Shape } from "../ir/types.js";
import { formatLoc, sizeOf } from "../ir/types.js";
import { grad } from "../autodiff/grad.js";
import { trainingGraph } from "../passes/training.js";
import type { DTypeName, OptimizerSpec } from "../../runtime/manifest.js";
import type { Stmt } from "../kernel/kir.js";
import { load, loop, num, ref, store } from "../kernel/kir.js";
import type { ArenaName, Buffer, BufferRole, Precision } from "./lower.js";
import { arenaOf, storageNode, storedDtype, uniformValue } from "./lower.js";
import { Namer, printedNodes } from "./names.js";
import type { ResolvedOptimizer, UpdateKernel, UpdateTarget } from "./optimizer.js";
import { checkLrMultipliers, clipKernel, lrMultiplier, resolveOptimizer, stateSlots, updateKernel } from "./optimizer.js";
import type { SavePolicy, Value } from "../fusion/program.js";
import { KEEP_ALL, buildProgram, kindOf } from "../fusion/program.js";
import { fuseProgram } from "../fusion/fuse.js";
import type { FusionPlan } from "../fusion/fuse.js";
import type { KernelDraft, KernelEnv } from "./kernelBuild.js";
import { groupKernel } from "./kernelBuild.js";
import type { WasmProduct } from "../backends/wasm/wasm.js";
import { packsOperands } from "../backends/wasm/gemmWasm.js";

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
  /** A matrix product it hands to WebAssembly: the export `product.name`, called where the body has its NATIVE loop. */
  readonly native?: { readonly product: WasmProduct };
}

/** An optimizer-state buffer of one param. */
export interface StateBuffer {
  readonly param: string;
  readonly slot: "m" | "v" | "velocity";
  readonly buffer: Buffer;
}

export interface ScheduleOptions {
  readonly precision?: Precision;
  readonly optimizer?: OptimizerSpec;
  readonly gradClip?: number;
  /** Rewrites the training graph (loss, outputs, gradients) before lowering, e.g. the pass pipeline. */
  readonly transform?: (train: Graph) => Graph;
  /** false: one kernel per node and one update kernel per param, as before fusion (default true). */
  readonly fusion?: boolean;
  /**
   * Recompute forward values in the backward pass instead of keeping them:
   * elementwise ones by default, everything but checkpoints when the graph
   * has `checkpoint` nodes (default: true exactly when it has some).
   */
  readonly remat?: boolean;
  /** Large f32 matmul products in WebAssembly SIMD (default true); false keeps them in JavaScript. */
  readonly wasm?: boolean;
}

export interface Schedule {
  /** The user's graph (loss and outputs) and the training graph (plus one gradient per trainable param). */
  readonly graph: Graph;
  readonly train: Graph;
  readonly precision: Precision;
  readonly optimizer: ResolvedOptimizer;
  readonly gradClip?: number;
  readonly fusion: boolean;
  readonly remat: boolean;
  /** Every buffer, in creation order (the memory plan lays them out). */
  readonly buffers: readonly Buffer[];
  /** The buffer of each input, param, output and the loss (aliases share their source's). */
  readonly bufferOf: ReadonlyMap<Tensor, Buffer>;
  readonly hyper: { readonly lr: Buffer; readonly step: Buffer };
  readonly state: readonly StateBuffer[];
  /** Kernels in execution order for each entry point (forward-only kernels interleaved), then the update kernels. */
  readonly kernels: readonly Kernel[];
  /** Per param name, the buffer its gradient is in (trainable params only). */
  readonly grads: ReadonlyMap<string, Buffer>;
  /** Which entry points read each input. */
  readonly inputUse: ReadonlyMap<string, readonly ("forward" | "train")[]>;
  /** The fusion plans of forward() and of the training step. */
  readonly plans: { readonly forward: FusionPlan; readonly step: FusionPlan };
}

/** Kernels of one entry point, in order. */
export function kernelsOf(s: Schedule, entry: Entry): Kernel[] {
  return s.kernels.filter((k) => k.entry.includes(entry));
}

/** Which forward values the backward reads from memory (see ScheduleOptions.remat). */
function savePolicy(remat: boolean, checkpoints: boolean, precision: Precision): SavePolicy {
  if (!remat) return KEEP_ALL;
  if (checkpoints) return { recompute: true, saved: (t) => t.op === "checkpoint" };
  return { recompute: true, saved: (t) => ["reduce", "matmul", "opaque"].includes(kindOf(t, precision)) || t.op === "checkpoint" };
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

/**
 * Lowers a graph to its schedule. The training graph's roots are the loss and
 * the gradients (step); the forward graph's are the outputs (forward), so an
 * input that only the loss reads (labels) is not needed by forward().
 */
export function buildSchedule(graph: Graph, options: ScheduleOptions = {}): Schedule {
  const precision = options.precision ?? "f32";
  const fusion = options.fusion ?? true;
  const optimizer = resolveOptimizer(options.optimizer);
  // the loss as in the training step, the outputs as in forward()
  graph = trainingGraph(graph);
  const base = graph.with({ grads: {} });
  const differentiated = graph.loss ? grad(base) : base;
  const train = options.transform ? options.transform(differentiated) : differentiated;
  // a transformed training graph has its own nodes: the forward graph is its outputs and loss
  if (options.transform) graph = train.with({ grads: {} });
  const printed = printedNodes(train);
  const trainRoots = [...(train.loss ? [train.loss] : []), ...Object.values(train.grads), ...Object.values(train.updates)];
  const checkpoints = reachable(trainRoots).some((t) => t.op === "checkpoint");
  const remat = options.remat ?? checkpoints;
  const wasm = options.wasm ?? true;
  const packed = (mm: Value) => packsOperands(mm, precision, wasm);
  const stepPlan = fuseProgram(buildProgram(trainRoots, precision, savePolicy(remat, checkpoints, precision)), { fusion, packed });
  const fwdPlan = fuseProgram(buildProgram(Object.values(graph.outputs), precision), { fusion, packed });

  const buffers: Buffer[] = [];
  const newBuffer = (label: string, role: BufferRole, shape: Shape, dtype: DTypeName, extra: Partial<Buffer> = {}): Buffer => {
    const d = storedDtype(dtype, precision);
    const b: Buffer = { id: buffers.length, label, role, arena: arenaOf(d) as ArenaName, shape: [...shape], dtype: d, size: sizeOf(shape), ...extra };
    buffers.push(b);
    return b;
  };
  const hyper = { lr: newBuffer("lr", "hyper", [], precision), step: newBuffer("step", "hyper", [], "i32") };

  // params, gradients and each state slot: blocks with one layout, so one loop updates them all
  const trainable = graph.params.filter((p) => train.grads[p.name] !== undefined);
  const total = trainable.reduce((n, p) => n + sizeOf(p.shape), 0);
  const at = new Map<string, number>();
  trainable.reduce((n, p) => (at.set(p.name, n), n + sizeOf(p.shape)), 0);
  const block = (label: string, role: BufferRole) => newBuffer(label, role, [total], precision);
  const pBlock = trainable.length ? block("params", "block") : undefined;
  const gBlock = trainable.length ? block("grads", "block") : undefined;
  const slots = trainable.length ? stateSlots(optimizer) : [];
  const sBlocks = new Map(slots.map((slot) => [slot, block(`${slot}(params)`, "block")]));

  const bufferOf = new Map<Tensor, Buffer>();
  for (const i of graph.inputs) bufferOf.set(i.node, newBuffer(i.name, "input", i.shape, i.dtype, { node: i.node }));
  for (const p of graph.params) {
    const within = pBlock && at.has(p.name) ? { within: { block: pBlock, at: at.get(p.name)! } } : {};
    bufferOf.set(p.node, newBuffer(p.name, "param", p.shape, p.dtype, { node: p.node, ...within }));
  }
  const nameOf = (t: Tensor) => printed.get(t)?.name ?? `n${t.id}`;
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
  for (const [name, t] of Object.entries(graph.outputs)) pin(t, name, "output");
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
  for (const t of graph.outputs ? Object.values(graph.outputs) : []) if (!bufferOf.has(t) && bufferOf.has(storageNode(t))) bufferOf.set(t, bufferOf.get(storageNode(t))!);
  if (train.loss && !bufferOf.has(train.loss) && bufferOf.has(storageNode(train.loss))) bufferOf.set(train.loss, bufferOf.get(storageNode(train.loss))!);

  // every other stored value: a temporary, shared by both entry points when both store it
  const temps = new Map<string, Buffer>();
  const bufferOfValue = (v: Value): Buffer => {
    const t = v.node;
    if (t.op === "const") return bufferOf.get(t) ?? constBuffer(t);
    const known = bufferOf.get(t);
    if (known && (t.op === "input" || t.op === "param")) return known;
    if (!v.copy && pinned.has(t)) return pinned.get(t)!;
    const key = `${t.id}:${v.copy ? 1 : 0}`;
    let b = temps.get(key);
    if (!b) temps.set(key, (b = newBuffer(`${nameOf(t)}${v.copy ? "'" : ""}`, "node", t.shape, t.dtype, { node: t })));
    return b;
  };

  // which params' gradients each node feeds
  const gradOf = new Map<Tensor, string[]>();
  for (const [name, g] of Object.entries(train.grads)) {
    for (const t of reachable([g])) gradOf.set(t, [...(gradOf.get(t) ?? []), name]);
  }
  const kernelEnv: KernelEnv = { precision, printed, bufferOf: bufferOfValue, wasm, step: hyper.step };
  const namer = new Namer();
  const bySignature = new Map<string, { kernel: Kernel; entry: Entry[] }>();
  const build = (plan: FusionPlan, entry: Entry): Kernel[] =>
    plan.groups.map((g) => {
      const draft: KernelDraft = groupKernel(kernelEnv, plan, g);
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
        ...(draft.native ? { native: { product: { ...draft.native.product, name } } } : {}),
      };
      bySignature.set(sig, { kernel, entry: entries });
      return kernel;
    });
  const forwardKernels = build(fwdPlan, "forward");
  const stepKernels = build(stepPlan, "gradients");

  /** A kernel that copies a value computed in the step (or a uniform literal) into `to`. */
  const copyKernel = (base: string, target: string, from: Tensor, to: Buffer): Omit<Kernel, "entry" | "gradOf" | "phase" | "where"> => {
    const lit = uniformValue(from, precision);
    const src = lit !== undefined ? undefined : from.op === "const" ? constBuffer(from) : (bufferOf.get(from) ?? pinned.get(from) ?? temps.get(`${from.id}:0`));
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

  // gradients that are not their own node: copied into their block
  for (const c of copies) {
    const k = copyKernel(`copy_grad_${c.name}`, `d${JSON.stringify(c.name)}`, c.from, c.to);
    stepKernels.push({ ...k, where: formatLoc(train.grads[c.name]!.src), entry: ["gradients"], gradOf: [c.name], phase: "backward" });
  }

  // the update: optional clipping, then every param in one loop over the blocks (or one kernel per param unfused)
  const state: StateBuffer[] = [];
  for (const p of trainable) {
    for (const slot of slots) {
      const b = newBuffer(`${slot}(${p.name})`, "state", p.shape, p.dtype, { within: { block: sBlocks.get(slot)!, at: at.get(p.name)! } });
      state.push({ param: p.name, slot, buffer: b });
    }
  }
  const targets: UpdateTarget[] = trainable.map((p) => ({ name: p.name, grad: grads.get(p.name)!, param: bufferOf.get(p.node)! }));
  const updates: UpdateKernel[] = [];
  const scale = options.gradClip !== undefined && targets.length ? newBuffer("clipScale", "scratch", [], precision) : undefined;
  checkLrMultipliers(optimizer, trainable.map((p) => p.name));
  const multiplierOf = (name: string) => lrMultiplier(optimizer, name);
  if (fusion && pBlock && gBlock) {
    const all: UpdateTarget = { name: "params", param: pBlock, grad: gBlock };
    if (scale) updates.push(clipKernel([all], options.gradClip!, scale));
    const runs = multiplierRuns(trainable.map((p) => ({ name: p.name, size: sizeOf(p.shape), multiplier: multiplierOf(p.name) })));
    if (runs.length === 1 && runs[0]!.multiplier === 1) updates.push(updateKernel(optimizer, all, hyper, Object.fromEntries(sBlocks), scale));
    // one loop per run of params with the same multiplier, over that stretch of the blocks
    for (const run of runs.length === 1 && runs[0]!.multiplier === 1 ? [] : runs) {
      const view = (b: Buffer, role: BufferRole) => newBuffer(`${b.label}[${run.names.join(",")}]`, role, [run.size], precision, { within: { block: b, at: run.at } });
      const target: UpdateTarget = { name: run.names.length === 1 ? run.names[0]! : `${run.names[0]}…${run.names.at(-1)}`, param: view(pBlock, "param"), grad: view(gBlock, "grad") };
      const own = Object.fromEntries([...sBlocks].map(([slot, b]) => [slot, view(b, "state")]));
      const k = updateKernel(optimizer, target, hyper, own, scale, run.multiplier);
      updates.push({ ...k, what: `${k.what}: ${run.names.join(", ")} in one loop` });
    }
  } else {
    if (scale) updates.push(clipKernel(targets, options.gradClip!, scale));
    for (const t of targets) {
      const own = Object.fromEntries(state.filter((s) => s.param === t.name).map((s) => [s.slot, s.buffer]));
      updates.push(updateKernel(optimizer, t, hyper, own, scale, multiplierOf(t.name)));
    }
  }
  const updateKernels: Kernel[] = updates.map((u) => ({
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
  // state updates (batch norm's moving statistics): each param takes its value once the step has read it
  for (const [name, t] of Object.entries(train.updates)) {
    const p = graph.param(name)!;
    const k = copyKernel(`assign_${name}`, JSON.stringify(name), storageNode(t), bufferOf.get(p.node)!);
    updateKernels.push({ ...k, where: formatLoc(t.src), entry: ["update"], gradOf: [], phase: "update" });
  }

  const inputsOf = (plan: FusionPlan) => new Set(plan.program.values.filter((v) => v.node.op === "input").map((v) => v.node));
  const fwdInputs = inputsOf(fwdPlan);
  const stepInputs = inputsOf(stepPlan);
  const inputUse = new Map(
    graph.inputs.map((i) => [i.name, [...(fwdInputs.has(i.node) ? ["forward" as const] : []), ...(stepInputs.has(i.node) ? ["train" as const] : [])]]),
  );
  return {
    graph,
    train,
    precision,
    optimizer,
    ...(options.gradClip !== undefined ? { gradClip: options.gradClip } : {}),
    fusion,
    remat,
    buffers,
    bufferOf,
    hyper,
    state,
    // only kernels of the step compute gradients (inspect --grad reads step.ts)
    kernels: [...mergeOrders(forwardKernels, stepKernels), ...updateKernels].map((k) => (k.entry.includes("gradients") ? k : { ...k, gradOf: [] })),
    grads,
    inputUse,
    plans: { forward: fwdPlan, step: stepPlan },
  };
}
