// What `gradc inspect` and `gradc graph` read from a bundle beyond its
// manifest: the training graph as autodiff built it, after each graph pass
// and as compiled (as JSON) and, per kernel, the graph nodes it computes, its
// buffers, its cost and its emitted code. The compiler writes these files from
// what its stages produced; the runtime never reads them, and inspection
// tools read them instead of computing anything again.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import type { Graph } from "../ir/graph.js";
import { neededNodes } from "../ir/graph.js";
import type { Tensor } from "../ir/node.js";
import { GraphError } from "../ir/types.js";
import { graphFromJson, graphToJson } from "../ir/json.js";
import type { GraphJson } from "../ir/json.js";
import { OPS } from "../ops/index.js";
import type { Kernel, Schedule } from "../lower/schedule.js";
import type { ArenaPlan } from "../plan/arena.js";
import { offsetOf } from "../plan/arena.js";
import type { Manifest } from "../../runtime/manifest.js";
import { readManifest } from "../../runtime/load.js";
import type { KernelCost } from "./flops.js";
import { kernelCost } from "./flops.js";

/** The files, relative to the bundle's folder. */
export const INSPECT_FILES = {
  /** The training graph the kernels compute (after the pass pipeline). */
  train: "graphs/train.json",
  /** The training graph as autodiff built it (before the pass pipeline). */
  grad: "graphs/grad.json",
  /** The training graph after each graph pass, in the order the passes ran. */
  stages: "graphs/stages.json",
  kernels: "graphs/kernels.json",
} as const;

/** One buffer a kernel binds. */
export interface KernelBufferInfo {
  /** The kernel IR's name for it: `in0`, `out`, `p`, ... */
  readonly name: string;
  /** The buffer's label: a node's printed name, a param name, `m(W1)`. */
  readonly label: string;
  readonly role: string;
  readonly shape: readonly number[];
  readonly dtype: string;
  readonly arena: "F" | "I" | "H";
  readonly offset: number;
  readonly size: number;
  readonly access: "read" | "write" | "readwrite" | "none";
}

/** A kernel's emitted function (JSDoc included) and the module that holds it, e.g. step.ts. */
export interface KernelSource {
  readonly file: string;
  readonly text: string;
}

/** What graphs/kernels.json says about one kernel. */
export interface KernelInfo {
  readonly name: string;
  /** Indexes into graphs/train.json's nodes of the nodes it computes (absent without graph data). */
  readonly nodes?: readonly number[];
  readonly buffers: readonly KernelBufferInfo[];
  readonly cost: KernelCost;
  /** Its function as emitted, JSDoc included, and the module that holds it (step.ts for a kernel both hold). */
  readonly source?: KernelSource;
}

export interface KernelsJson {
  readonly format: "gradc.kernels";
  readonly version: number;
  readonly kernels: readonly KernelInfo[];
}

export const KERNELS_JSON_VERSION = 1;

/** graphs/stages.json: the graph after each pass. */
export interface StagesJson {
  readonly format: "gradc.stages";
  readonly version: number;
  readonly passes: readonly { readonly pass: string; readonly graph: GraphJson }[];
}

export const STAGES_JSON_VERSION = 1;

/** What the compiler's stages produced that the inspection files record. */
export interface InspectionInput {
  /** The training graph as autodiff built it (the graph passes' input). */
  readonly differentiated: Graph;
  /** The training graph after each graph pass. */
  readonly stages: readonly { readonly pass: string; readonly graph: Graph }[];
  readonly schedule: Schedule;
  readonly plan: ArenaPlan;
  /** Each kernel's emitted function. */
  readonly sources: ReadonlyMap<string, KernelSource>;
}


/**
 * Node → index in `graphToJson(g).nodes`, which lists `neededNodes(g)` in
 * that order. Checked against the JSON by op and shape.
 */
function jsonIndex(g: Graph, json: GraphJson): Map<Tensor, number> {
  const nodes = neededNodes(g);
  const ok = nodes.length === json.nodes.length && nodes.every((t, i) => t.op === json.nodes[i]!.op && t.shape.join() === json.nodes[i]!.shape.join());
  if (!ok) throw new Error(`inspect data: graph "${g.name}" and its JSON disagree on the node list`);
  return new Map(nodes.map((t, i) => [t, i]));
}

/** A graph as JSON, or undefined when it cannot be written (customGrad nodes hold functions). */
function tryJson(g: Graph): GraphJson | undefined {
  try {
    return graphToJson(g);
  } catch (e) {
    if (e instanceof GraphError) return undefined;
    throw e;
  }
}

/** One kernel's buffers, with how its body uses each. */
function kernelBuffers(k: Kernel, plan: ArenaPlan, cost: KernelCost): KernelBufferInfo[] {
  return Object.entries(k.buffers).map(([name, b]) => {
    const r = name in cost.loads;
    const w = name in cost.stores;
    return {
      name,
      label: b.label,
      role: b.role,
      shape: [...b.shape],
      dtype: b.dtype,
      arena: b.arena,
      offset: offsetOf(plan, b),
      size: b.size,
      access: r && w ? "readwrite" : w ? "write" : r ? "read" : "none",
    };
  });
}

/**
 * The inspection files of a compiled graph (see INSPECT_FILES), from what the
 * stages produced. A graph JSON cannot hold (customGrad) is left out, with
 * the stages, and kernels.json then carries no node lists.
 */
export function inspectionFiles(input: InspectionInput): Map<string, string> {
  const { schedule: s, plan } = input;
  const files = new Map<string, string>();
  const raw = tryJson(input.differentiated);
  const train = tryJson(s.train);
  if (raw) files.set(INSPECT_FILES.grad, JSON.stringify(raw) + "\n");
  if (train) files.set(INSPECT_FILES.train, JSON.stringify(train) + "\n");
  const stages = input.stages.map((st) => ({ pass: st.pass, graph: tryJson(st.graph) }));
  if (stages.every((st) => st.graph !== undefined)) {
    const json: StagesJson = { format: "gradc.stages", version: STAGES_JSON_VERSION, passes: stages as StagesJson["passes"] };
    files.set(INSPECT_FILES.stages, JSON.stringify(json) + "\n");
  }
  const index = train ? jsonIndex(s.train, train) : undefined;
  const kernels: KernelInfo[] = s.kernels.map((k) => {
    const cost = kernelCost(k.body);
    const nodes = index ? k.nodes.map((t) => index.get(t)) : undefined;
    if (nodes?.some((i) => i === undefined)) throw new Error(`inspect data: kernel ${k.name} computes a node outside the training graph`);
    const source = input.sources.get(k.name);
    return { name: k.name, ...(nodes ? { nodes: nodes as number[] } : {}), buffers: kernelBuffers(k, plan, cost), cost, ...(source ? { source } : {}) };
  });
  const json: KernelsJson = { format: "gradc.kernels", version: KERNELS_JSON_VERSION, kernels };
  files.set(INSPECT_FILES.kernels, JSON.stringify(json) + "\n");
  return files;
}

/** A bundle as the inspection tools see it. */
export interface BundleView {
  readonly dir: string;
  readonly manifest: Manifest;
  /** The training graph the kernels compute; absent in bundles without graph data. */
  readonly train?: Graph;
  /** The training graph before the pass pipeline. */
  readonly raw?: Graph;
  /** The graph passes the bundle was compiled with, in order, each with the graph after it (read when asked). */
  readonly stages?: readonly { readonly pass: string; readonly graph: () => Graph }[];
  /** graphs/kernels.json by kernel name (empty when the bundle has none). */
  readonly kernels: ReadonlyMap<string, KernelInfo>;
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as Error).message}`);
  }
}

/** Reads a bundle's manifest and whichever inspection files it has. */
export function readBundle(dir: string): BundleView {
  const manifest = readManifest(dir);
  const at = (rel: string) => path.join(dir, rel);
  const graphAt = (rel: string): Graph | undefined => (existsSync(at(rel)) ? graphFromJson(readJson(at(rel)) as GraphJson, OPS) : undefined);
  const kernels = new Map<string, KernelInfo>();
  if (existsSync(at(INSPECT_FILES.kernels))) {
    const data = readJson(at(INSPECT_FILES.kernels)) as KernelsJson;
    if (data?.format !== "gradc.kernels" || data.version !== KERNELS_JSON_VERSION) {
      throw new Error(`${at(INSPECT_FILES.kernels)}: not a gradc kernel list of version ${KERNELS_JSON_VERSION}`);
    }
    for (const k of data.kernels) kernels.set(k.name, k);
  }
  const train = graphAt(INSPECT_FILES.train);
  const raw = graphAt(INSPECT_FILES.grad);
  let stages: BundleView["stages"];
  if (existsSync(at(INSPECT_FILES.stages))) {
    const data = readJson(at(INSPECT_FILES.stages)) as StagesJson;
    if (data?.format !== "gradc.stages" || data.version !== STAGES_JSON_VERSION || !Array.isArray(data.passes)) {
      throw new Error(`${at(INSPECT_FILES.stages)}: not a gradc stage list of version ${STAGES_JSON_VERSION}`);
    }
    stages = data.passes.map((st) => {
      let g: Graph | undefined;
      return { pass: String(st.pass), graph: () => (g ??= graphFromJson(st.graph, OPS)) };
    });
  }
  return { dir, manifest, kernels, ...(train ? { train } : {}), ...(raw ? { raw } : {}), ...(stages ? { stages } : {}) };
}

/** The nodes of `view.train` a kernel computes ([] without graph data or for optimizer kernels). */
export function nodesOfKernel(view: BundleView, name: string): Tensor[] {
  const info = view.kernels.get(name);
  if (!view.train || !info?.nodes) return [];
  const all = view.train.ctx.nodes;
  return info.nodes.map((i) => {
    const t = all[i];
    if (!t) throw new Error(`${INSPECT_FILES.kernels}: kernel ${name} names node ${i}, which ${INSPECT_FILES.train} does not have`);
    return t;
  });
}

/** The error for a bundle whose graphs/kernels.json records no code for a kernel. */
export function noRecordedCode(view: BundleView, name: string): Error {
  return new Error(`${path.join(view.dir, "graphs/kernels.json")} records no code for kernel ${name} (a bundle written by an older gradc, or edited): recompile it to inspect its kernels`);
}
