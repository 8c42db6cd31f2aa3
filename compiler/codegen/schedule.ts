// The schedule: the training graph (grad(graph)) and the forward graph become
// one ordered list of kernels over static buffers, plus the optimizer update.
// One kernel per node for now; fusion and buffer reuse come later as passes.
import type { Graph } from "../ir/graph.js";
import { reachable } from "../ir/graph.js";
import type { Tensor } from "../ir/node.js";
import type { Shape } from "../ir/types.js";
import { formatLoc, sizeOf } from "../ir/types.js";
import { describeOrigin } from "../ir/printer.js";
import { grad } from "../autodiff/grad.js";
import type { DTypeName } from "../../runtime/manifest.js";
import type { Stmt } from "./kir.js";
import { load, loop, ref, store } from "./kir.js";
import type { ArenaName, Buffer, BufferRole, Precision } from "./lower.js";
import { arenaOf, isAlias, lowerNode, storageNode, storedDtype, uniformValue } from "./lower.js";
import { Namer, printedNodes, sanitize } from "./names.js";
import type { ResolvedOptimizer, UpdateTarget } from "./optimizer.js";
import { clipKernel, resolveOptimizer, stateSlots, updateKernel } from "./optimizer.js";
import type { OptimizerSpec } from "../../runtime/manifest.js";

/** Which entry point runs a kernel. */
export type Entry = "forward" | "gradients" | "update";

/** One kernel: a body in the kernel IR and the buffers its names refer to. */
export interface Kernel {
  /** A unique identifier, named after what it computes (`matmul_x_W1`, `adam_W1`). */
  readonly name: string;
  readonly body: readonly Stmt[];
  /** Kernel IR buffer name (`out`, `in0`, `p`, ...) → buffer. */
  readonly buffers: Readonly<Record<string, Buffer>>;
  /** The graph node it computes (absent for optimizer kernels). */
  readonly node?: Tensor;
  /** The printed binding of that node, or what an update does. */
  readonly what: string;
  /** The user's file:line, or "grad of relu at file:line" for backward nodes. */
  readonly where: string;
  readonly entry: readonly Entry[];
  /** Trainable params whose gradient depends on this kernel. */
  readonly gradOf: readonly string[];
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
}

export interface Schedule {
  /** The user's graph (loss and outputs) and the training graph (plus one gradient per trainable param). */
  readonly graph: Graph;
  readonly train: Graph;
  readonly precision: Precision;
  readonly optimizer: ResolvedOptimizer;
  readonly gradClip?: number;
  /** Every buffer, in creation order (the arena plan lays them out). */
  readonly buffers: readonly Buffer[];
  /** The buffer holding each node's value (aliases share their input's). */
  readonly bufferOf: ReadonlyMap<Tensor, Buffer>;
  readonly hyper: { readonly lr: Buffer; readonly step: Buffer };
  readonly state: readonly StateBuffer[];
  /** Graph kernels in topological order, then the update kernels. */
  readonly kernels: readonly Kernel[];
  /** Per param name, the buffer its gradient is in (trainable params only). */
  readonly grads: ReadonlyMap<string, Buffer>;
  /** Which entry points read each input. */
  readonly inputUse: ReadonlyMap<string, readonly ("forward" | "train")[]>;
}

/** Kernels of one entry point, in order. */
export function kernelsOf(s: Schedule, entry: Entry): Kernel[] {
  return s.kernels.filter((k) => k.entry.includes(entry));
}

/**
 * Lowers a graph to its schedule. The training graph's roots are the loss and
 * the gradients (step); the forward graph's are the outputs (forward), so an
 * input that only the loss reads (labels) is not needed by forward().
 */
export function buildSchedule(graph: Graph, options: ScheduleOptions = {}): Schedule {
  const precision = options.precision ?? "f32";
  const optimizer = resolveOptimizer(options.optimizer);
  const base = graph.with({ grads: {} });
  const differentiated = graph.loss ? grad(base) : base;
  const train = options.transform ? options.transform(differentiated) : differentiated;
  // a transformed training graph has its own nodes: the forward graph is its outputs and loss
  if (options.transform) graph = train.with({ grads: {} });
  const printed = printedNodes(train);
  const trainRoots = [...(train.loss ? [train.loss] : []), ...Object.values(train.grads)];
  const trainSet = new Set(reachable(trainRoots));
  const fwdSet = new Set(reachable(Object.values(graph.outputs)));
  const all = [...new Set([...trainSet, ...fwdSet])].sort((a, b) => a.id - b.id);

  const buffers: Buffer[] = [];
  const newBuffer = (label: string, role: BufferRole, shape: Shape, dtype: DTypeName, extra: Partial<Buffer> = {}): Buffer => {
    const d = storedDtype(dtype, precision);
    const b: Buffer = { id: buffers.length, label, role, arena: arenaOf(d) as ArenaName, shape: [...shape], dtype: d, size: sizeOf(shape), ...extra };
    buffers.push(b);
    return b;
  };
  const floatType: DTypeName = precision;
  const hyper = { lr: newBuffer("lr", "hyper", [], floatType), step: newBuffer("step", "hyper", [], "i32") };

  const bufferOf = new Map<Tensor, Buffer>();
  for (const i of graph.inputs) bufferOf.set(i.node, newBuffer(i.name, "input", i.shape, i.dtype, { node: i.node }));
  for (const p of graph.params) bufferOf.set(p.node, newBuffer(p.name, "param", p.shape, p.dtype, { node: p.node }));
  const rootSet = new Set([...trainRoots, ...Object.values(graph.outputs)].map(storageNode));
  for (const t of all) {
    if (bufferOf.has(t) || isAlias(t)) continue;
    const name = printed.get(t)?.name ?? `n${t.id}`;
    if (t.op === "const") {
      // uniform constants are inlined as literals; only a root needs them stored
      if (uniformValue(t, precision) !== undefined && !rootSet.has(t)) continue;
      bufferOf.set(t, newBuffer(name, "const", t.shape, t.dtype, { node: t, fill: t.p("const").value }));
    } else {
      bufferOf.set(t, newBuffer(name, "node", t.shape, t.dtype, { node: t }));
    }
  }
  for (const t of all) if (isAlias(t) && bufferOf.has(storageNode(t))) bufferOf.set(t, bufferOf.get(storageNode(t))!);

  // gradOf: which params' gradients each node feeds
  const gradOf = new Map<Tensor, string[]>();
  for (const [name, g] of Object.entries(train.grads)) {
    for (const t of reachable([g])) {
      const list = gradOf.get(t);
      if (list) list.push(name);
      else gradOf.set(t, [name]);
    }
  }

  const namer = new Namer();
  const nameOf = (t: Tensor): string => printed.get(t)?.name ?? `n${t.id}`;
  const kernelName = (t: Tensor): string => {
    if (t.origin) return namer.fresh(`grad_${t.origin.of.op}_${sanitize(nameOf(t.origin.of))}_${t.op}`);
    const operands = t.inputs.filter((x) => uniformValue(x, precision) === undefined).map((x) => sanitize(nameOf(x)));
    return namer.fresh([t.op, ...operands].join("_"));
  };
  const kernels: Kernel[] = [];
  for (const t of all) {
    if (t.op === "input" || t.op === "param" || t.op === "const" || isAlias(t)) continue;
    const lowered = lowerNode(t, precision);
    const kb: Record<string, Buffer> = { out: bufferOf.get(t)! };
    for (const k of lowered.reads) kb[`in${k}`] = bufferOf.get(storageNode(t.inputs[k]!))!;
    kernels.push({
      name: kernelName(t),
      body: lowered.body,
      buffers: kb,
      node: t,
      what: printed.get(t)?.binding ?? String(t),
      where: describeOrigin(t),
      entry: [...(fwdSet.has(t) ? ["forward" as const] : []), ...(trainSet.has(t) ? ["gradients" as const] : [])],
      gradOf: gradOf.get(t) ?? [],
    });
  }

  // gradients: a gradient stored in an input or param buffer gets its own copy,
  // since the update rewrites params in place
  const grads = new Map<string, Buffer>();
  for (const [name, g] of Object.entries(train.grads)) {
    let buf = bufferOf.get(storageNode(g))!;
    if (buf.role === "input" || buf.role === "param") {
      const copy = newBuffer(`d${name}`, "node", g.shape, g.dtype);
      kernels.push({
        name: namer.fresh(`copy_grad_${name}`),
        body: [loop("i", copy.size, [store("out", ref("i"), load("in0", ref("i")))])],
        buffers: { out: copy, in0: buf },
        what: `d${JSON.stringify(name)} = copy of ${JSON.stringify(buf.label)}`,
        where: formatLoc(g.src),
        entry: ["gradients"],
        gradOf: [name],
      });
      buf = copy;
    }
    grads.set(name, buf);
  }

  // the update: optional clipping, then one kernel per trainable param
  const targets: UpdateTarget[] = [...grads].map(([name, g]) => ({ name, grad: g, param: bufferOf.get(graph.param(name)!.node)! }));
  const state: StateBuffer[] = [];
  const updates = [];
  const scale = options.gradClip !== undefined && targets.length ? newBuffer("clipScale", "scratch", [], floatType) : undefined;
  if (scale) updates.push(clipKernel(targets, options.gradClip!, scale));
  for (const t of targets) {
    const slots: Record<string, Buffer> = {};
    for (const slot of stateSlots(optimizer)) {
      const b = newBuffer(`${slot}(${t.name})`, "state", t.param.shape, t.param.dtype);
      slots[slot] = b;
      state.push({ param: t.name, slot, buffer: b });
    }
    updates.push(updateKernel(optimizer, t, hyper, slots, scale));
  }
  for (const u of updates) {
    kernels.push({ name: namer.fresh(u.base), body: u.body, buffers: u.buffers, what: u.what, where: "", entry: ["update"], gradOf: [] });
  }

  const inputUse = new Map(
    graph.inputs.map((i) => [i.name, [...(fwdSet.has(i.node) ? ["forward" as const] : []), ...(trainSet.has(i.node) ? ["train" as const] : [])]]),
  );
  return {
    graph,
    train,
    precision,
    optimizer,
    ...(options.gradClip !== undefined ? { gradClip: options.gradClip } : {}),
    buffers,
    bufferOf,
    hyper,
    state,
    kernels,
    grads,
    inputUse,
  };
}
