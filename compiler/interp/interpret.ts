// The reference interpreter: evaluates a graph op by op from each op's record.
// It is the definition every backend is tested against.
import type { Graph } from "../ir/graph.js";
import type { Tensor } from "../ir/node.js";
import { reachable } from "../ir/graph.js";
import type { DType } from "../ir/types.js";
import { formatLoc, shapeStr, sizeOf } from "../ir/types.js";
import { OPS } from "../ops/index.js";
import type { EvalEnv, NDArray, NodeOf } from "../ops/def.js";
import type { OpKind } from "../ir/kinds.js";
import { initValues } from "../dsl/init.js";

/** Values for inputs or params: flat arrays in row-major order. */
export type Feeds = Readonly<Record<string, ArrayLike<number> | NDArray>>;

export interface InterpretOptions {
  /** "f64" evaluates every float in float64 (for gradient checks); "f32" rounds f32 nodes. */
  readonly precision?: "f32" | "f64";
  /**
   * The training step (default) or forward/predict: `ifTraining` picks its
   * branch by it (dropout is active, batch norm uses the batch's statistics).
   */
  readonly training?: boolean;
  /** The step's number, which random ops draw from (default 1, the first update). */
  readonly step?: number;
  /** The run's seed, which random ops draw from too (default 0; the trainer's --seed). */
  readonly runSeed?: number;
}

/** Rounds values to what a dtype can hold. */
export function roundTo(data: Float64Array, dtype: DType, precision: "f32" | "f64"): Float64Array {
  switch (dtype) {
    case "f64": return data;
    case "f32": return precision === "f64" ? data : data.map(Math.fround);
    case "i32": return data.map((v) => v | 0);
    // NaN counts as true, as the emitted `x != 0` does
    case "bool": return data.map((v) => (v !== 0 ? 1 : 0));
    default: return dtype satisfies never;
  }
}

/** Evaluates `roots` (and everything they need) given every input and param by name. */
export function evaluate(roots: readonly Tensor[], feeds: Feeds, options: InterpretOptions = {}): Map<Tensor, NDArray> {
  const precision = options.precision ?? "f32";
  const env: EvalEnv = { training: options.training ?? true, step: options.step ?? 1, runSeed: options.runSeed ?? 0 };
  const values = new Map<Tensor, NDArray>();
  for (const node of reachable(roots)) {
    let data: Float64Array;
    if (node.op === "input" || node.op === "param") {
      const p = node.p("input");
      const v = feeds[p.name];
      const at = node.src ? ` (declared at ${formatLoc(node.src)})` : "";
      if (v === undefined) throw new Error(`interpret: no value for ${node.op} "${p.name}" ${shapeStr(node.shape)}${at}`);
      const flat = "data" in v && "shape" in v ? (v as NDArray).data : (v as ArrayLike<number>);
      if (flat.length !== sizeOf(node.shape)) {
        throw new Error(`interpret: ${node.op} "${p.name}" needs ${sizeOf(node.shape)} values for shape ${shapeStr(node.shape)}, got ${flat.length}${at}`);
      }
      data = Float64Array.from(flat);
    } else {
      const ins = node.inputs.map((t) => values.get(t)!);
      data = (OPS[node.op].eval as (n: NodeOf<OpKind>, i: readonly NDArray[], e: EvalEnv) => Float64Array)(node as NodeOf<OpKind>, ins, env);
    }
    values.set(node, { shape: node.shape, dtype: node.dtype, data: roundTo(data, node.dtype, precision) });
  }
  return values;
}

/** Initial parameter values of a graph, from each param's initializer. */
export function initialParams(g: Graph): Record<string, Float64Array> {
  return Object.fromEntries(g.params.map((p) => [p.name, initValues(p.init, p.shape)]));
}

export interface GraphValues {
  readonly loss?: number;
  readonly outputs: Record<string, NDArray>;
  readonly grads: Record<string, NDArray>;
  /** The values the state updates give their params (see `Graph.updates`). */
  readonly updates: Record<string, NDArray>;
}

/**
 * Runs a graph: inputs from `feeds`, params from `params` (or their
 * initializers). Returns the loss, the outputs and any gradients.
 */
export function interpret(g: Graph, feeds: Feeds, params?: Feeds, options: InterpretOptions = {}): GraphValues {
  const all: Record<string, ArrayLike<number> | NDArray> = { ...initialParams(g), ...(params ?? {}), ...feeds };
  const values = evaluate(g.roots(), all, options);
  const pick = (r: Readonly<Record<string, Tensor>>) => Object.fromEntries(Object.entries(r).map(([k, t]) => [k, values.get(t)!]));
  return {
    ...(g.loss ? { loss: values.get(g.loss)!.data[0]! } : {}),
    outputs: pick(g.outputs),
    grads: pick(g.grads),
    updates: pick(g.updates),
  };
}
