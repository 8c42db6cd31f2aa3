// A graph as plain JSON data and back: nodes by index, with their params,
// shapes, source lines and gradient origins. Loading replays the nodes through
// a fresh Context, so shape rules run again and interning holds.
import { Graph, neededNodes } from "./graph.js";
import type { Init, InputSpec, ParamSpec } from "./graph.js";
import { Context } from "./node.js";
import type { OpRules, Tensor } from "./node.js";
import type { DType, SourceLoc } from "./types.js";
import { GraphError, shapeStr, shapesEqual } from "./types.js";
import type { OpKind, OpParams } from "./kinds.js";

/** The version written by `graphToJson`; `graphFromJson` reads only this one. */
export const GRAPH_JSON_VERSION = 1;

/** Any JSON value. Non-finite numbers and −0 are written as `{ "$f": "NaN" | "Infinity" | "-Infinity" | "-0" }`. */
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [k: string]: JsonValue };

/** One node: its op, params and inputs (indexes of earlier nodes), type, and where it came from. */
export interface NodeJson {
  readonly op: OpKind;
  readonly params: JsonValue;
  readonly inputs: readonly number[];
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly src?: SourceLoc;
  /** For backward nodes: the forward node (index) they differentiate, and which input. */
  readonly origin?: { readonly of: number; readonly input: number };
}

export interface GraphJson {
  readonly format: "gradc.graph";
  readonly version: number;
  readonly name: string;
  readonly inputs: readonly { readonly name: string; readonly shape: readonly number[]; readonly dtype: DType; readonly node: number }[];
  readonly params: readonly {
    readonly name: string;
    readonly shape: readonly number[];
    readonly dtype: DType;
    readonly init: JsonValue;
    readonly trainable: boolean;
    readonly node: number;
  }[];
  /** In topological order; nodes refer to each other by index in this list. */
  readonly nodes: readonly NodeJson[];
  readonly loss: number | null;
  readonly outputs: Readonly<Record<string, number>>;
  readonly grads: Readonly<Record<string, number>>;
}

/** Deep copy as JSON data; numbers JSON cannot hold are tagged. */
function encode(v: unknown): JsonValue {
  if (typeof v === "number") {
    if (Number.isFinite(v) && !Object.is(v, -0)) return v;
    return { $f: Object.is(v, -0) ? "-0" : String(v) };
  }
  if (v === null || typeof v === "string" || typeof v === "boolean") return v;
  if (Array.isArray(v)) return v.map(encode);
  if (typeof v === "object") {
    const out: Record<string, JsonValue> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) if (x !== undefined) out[k] = encode(x);
    return out;
  }
  throw new Error(`cannot write ${typeof v} as JSON`);
}

/** The inverse of `encode`. */
function decode(v: JsonValue): unknown {
  if (Array.isArray(v)) return v.map(decode);
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, JsonValue>;
    const keys = Object.keys(o);
    if (keys.length === 1 && keys[0] === "$f" && typeof o.$f === "string") {
      const tags: Record<string, number> = { NaN: NaN, Infinity: Infinity, "-Infinity": -Infinity, "-0": -0 };
      if (o.$f in tags) return tags[o.$f];
      throw new Error(`unknown number tag "${o.$f}"`);
    }
    return Object.fromEntries(keys.map((k) => [k, decode(o[k]!)]));
  }
  return v;
}

/**
 * A graph as plain JSON-able data: format version, name, inputs, params (with
 * init and trainable), nodes (op, params, inputs by index, shape, dtype, src,
 * origin), loss, outputs and grads. Graphs with `customGrad` nodes are refused:
 * their gradient is a function.
 */
export function graphToJson(g: Graph): GraphJson {
  const nodes = neededNodes(g);
  const index = new Map<Tensor, number>(nodes.map((t, i) => [t, i]));
  const ref = (t: Tensor): number => index.get(t)!;
  const out: NodeJson[] = nodes.map((t) => {
    if (t.op === "customGrad") {
      const label = t.p("customGrad").label;
      throw new GraphError("graphToJson", `graph "${g.name}" has a customGrad node ("${label}"); its gradient is a JavaScript function, which JSON cannot hold`, t.src);
    }
    return {
      op: t.op,
      params: encode(t.params),
      inputs: t.inputs.map(ref),
      shape: [...t.shape],
      dtype: t.dtype,
      ...(t.src ? { src: { file: t.src.file, line: t.src.line, column: t.src.column } } : {}),
      ...(t.origin ? { origin: { of: ref(t.origin.of), input: t.origin.input } } : {}),
    };
  });
  const byName = (r: Readonly<Record<string, Tensor>>) => Object.fromEntries(Object.entries(r).map(([k, t]) => [k, ref(t)]));
  return {
    format: "gradc.graph",
    version: GRAPH_JSON_VERSION,
    name: g.name,
    inputs: g.inputs.map((i) => ({ name: i.name, shape: [...i.shape], dtype: i.dtype, node: ref(i.node) })),
    params: g.params.map((p) => ({
      name: p.name,
      shape: [...p.shape],
      dtype: p.dtype,
      init: encode(p.init),
      trainable: p.trainable,
      node: ref(p.node),
    })),
    nodes: out,
    loss: g.loss ? ref(g.loss) : null,
    outputs: byName(g.outputs),
    grads: byName(g.grads),
  };
}

/**
 * Rebuilds a graph from `graphToJson`'s data (or its parsed JSON text). Nodes
 * are replayed in order through a fresh Context: each op's shape rule runs
 * again and must give the recorded shape and dtype; src and origin are restored.
 * `ops` are the shape rules of the op table (ops/index.ts's OPS).
 */
export function graphFromJson(json: GraphJson | string, ops: OpRules): Graph {
  const data = (typeof json === "string" ? JSON.parse(json) : json) as GraphJson;
  const bad = (why: string): never => {
    throw new GraphError("graphFromJson", why);
  };
  if (!data || typeof data !== "object" || data.format !== "gradc.graph") bad(`not a gradc graph (format is ${JSON.stringify(data?.format)})`);
  if (data.version !== GRAPH_JSON_VERSION) bad(`format version ${data.version} is not supported (expected ${GRAPH_JSON_VERSION})`);
  if (typeof data.name !== "string" || !Array.isArray(data.nodes)) bad("the graph needs a name and a list of nodes");

  const ctx = new Context(data.name, ops);
  const built: Tensor[] = [];
  const node = (i: unknown, what: string, before = built.length): Tensor => {
    if (typeof i !== "number" || !Number.isInteger(i) || i < 0 || i >= before) bad(`${what} refers to node ${JSON.stringify(i)}, which is not an earlier node`);
    return built[i as number]!;
  };
  try {
    data.nodes.forEach((n, k) => {
      if (!n || typeof n.op !== "string" || !Object.hasOwn(ops, n.op)) bad(`node ${k} has the unknown op ${JSON.stringify(n?.op)}`);
      if (n.op === "customGrad") bad(`node ${k} is a customGrad node; its gradient cannot be restored from JSON`);
      const inputs = (Array.isArray(n.inputs) ? n.inputs : bad(`node ${k} has no input list`)).map((i) => node(i, `node ${k}`));
      ctx.origin = n.origin ? { of: node(n.origin.of, `node ${k}'s origin`), input: n.origin.input } : undefined;
      const t = ctx.apply(n.op, inputs, decode(n.params) as OpParams[OpKind], n.src ? { ...n.src } : null);
      if (t.id !== k) bad(`node ${k} (${n.op}) duplicates node ${t.id}`);
      if (!shapesEqual(t.shape, n.shape) || t.dtype !== n.dtype) {
        bad(`node ${k} (${n.op}) is recorded as ${n.dtype}${shapeStr(n.shape)} but its shape rule gives ${t.dtype}${shapeStr(t.shape)}`);
      }
      built.push(t);
    });
  } finally {
    ctx.origin = undefined;
  }

  const source = (s: { name: string; node: number }, op: "input" | "param"): Tensor => {
    const t = node(s.node, `${op} "${s.name}"`);
    if (t.op !== op || t.p("input").name !== s.name) bad(`${op} "${s.name}" refers to node ${s.node}, which is not that ${op}`);
    return t;
  };
  const inputs: InputSpec[] = data.inputs.map((i) => {
    const t = source(i, "input");
    return { name: i.name, shape: t.shape, dtype: t.dtype, node: t };
  });
  const params: ParamSpec[] = data.params.map((p) => {
    const t = source(p, "param");
    return { name: p.name, shape: t.shape, dtype: t.dtype, init: decode(p.init) as Init, trainable: p.trainable !== false, node: t };
  });
  const byName = (r: Readonly<Record<string, number>> | undefined, what: string) =>
    Object.fromEntries(Object.entries(r ?? {}).map(([k, i]) => [k, node(i, `${what} "${k}"`)]));
  const loss = data.loss === null || data.loss === undefined ? undefined : node(data.loss, "the loss");
  return new Graph(data.name, ctx, inputs, params, loss, byName(data.outputs, "output"), byName(data.grads, "gradient"));
}
