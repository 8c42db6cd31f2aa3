// The IR verifier: re-checks every invariant a well-formed graph keeps, so a
// pass that breaks one is caught at once, naming the node as the printer shows it.
import type { Graph } from "./graph.js";
import type { Tensor } from "./node.js";
import type { DType, Shape } from "./types.js";
import { GraphError, isFloat, shapeStr, shapesEqual } from "./types.js";
import { printGraph, printedName } from "./printer.js";
import type { OpKind } from "./kinds.js";
import { literalValue } from "./constants.js";

type Infer = (inputs: readonly Tensor[], p: unknown) => { shape: Shape; dtype: DType };

const DTYPES: readonly DType[] = ["f32", "f64", "i32", "bool"];

/** Whether the printer shows `t` inline as a literal instead of a binding. */
const isLiteral = (t: Tensor): boolean => literalValue(t) !== undefined;

/**
 * Names nodes as the printer does: a binding line (`c:f32[4,8] = add a b1`) for
 * computed nodes, `name:type = input` for sources, the literal for constants.
 * Built lazily, only when there is something to report.
 */
class Namer {
  private lines: Map<Tensor, string> | undefined;

  constructor(private readonly g: Graph) {}

  describe(t: Tensor): string {
    const typ = `${t.dtype}${shapeStr(t.shape)}`;
    if (t.op === "input" || t.op === "param") return `${printedName(t.p("input").name)}:${typ} = ${t.op}`;
    if (isLiteral(t)) return `const ${literalValue(t)}:${typ}`;
    const line = this.table().get(t);
    return line ?? `%${t.id}:${typ} = ${t.op}`;
  }

  private table(): Map<Tensor, string> {
    if (this.lines) return this.lines;
    this.lines = new Map();
    try {
      // the printed body has one line per node of g.nodes that is not a source or a literal
      const body = printGraph(this.g, { comments: false }).split("\n").slice(1, -1);
      const printed = this.g.nodes.filter((t) => t.op !== "input" && t.op !== "param" && !isLiteral(t));
      if (body.length === printed.length) printed.forEach((t, i) => this.lines!.set(t, body[i]!.trim()));
    } catch {
      // a graph too broken to print: fall back to %id names
    }
    return this.lines;
  }
}

function validShape(s: unknown): boolean {
  return Array.isArray(s) && s.every((d) => Number.isInteger(d) && d >= 0);
}

/** Checks one node: its place in the graph and its shape and dtype against its op's rule. */
function verifyNode(g: Graph, t: Tensor, fail: (t: Tensor, why: string) => never): void {
  if (t.ctx !== g.ctx) fail(t, `belongs to another graph ("${t.ctx.graphName}")`);
  if (t.ctx.nodes[t.id] !== t) fail(t, `is not node ${t.id} of its graph's node table (not interned)`);
  if (!Object.hasOwn(t.ctx.ops, t.op)) fail(t, `has the unknown op "${t.op}"`);
  if (!DTYPES.includes(t.dtype)) fail(t, `has the unknown dtype "${t.dtype}"`);
  if (!validShape(t.shape)) fail(t, `has an invalid shape ${JSON.stringify(t.shape)}`);
  t.inputs.forEach((x, i) => {
    if (x.ctx !== t.ctx) fail(t, `input ${i} belongs to another graph ("${x.ctx.graphName}")`);
    // ids are a topological order: every input was created before its user
    if (!(x.id < t.id)) fail(t, `input ${i} (%${x.id}) does not precede the node (%${t.id})`);
  });
  if (t.origin && !(t.origin.of.id < t.id && t.origin.of.ctx === t.ctx)) {
    fail(t, `its origin %${t.origin.of.id} is not an earlier node of the same graph`);
  }
  if (t.op === "customGrad" && t.ctx.customVjps[t.p("customGrad").fn] === undefined) {
    fail(t, `refers to custom gradient #${t.p("customGrad").fn}, which the graph does not hold`);
  }
  let sig: { shape: Shape; dtype: DType };
  try {
    sig = (t.ctx.ops[t.op as OpKind].infer as Infer)(t.inputs, t.params);
  } catch (e) {
    const shapes = t.inputs.map((x) => `${x.dtype}${shapeStr(x.shape)}`).join(", ") || "none";
    return fail(t, `its op's shape rule rejects it: ${(e as Error).message}; inputs: ${shapes}`);
  }
  if (!shapesEqual(sig.shape, t.shape)) fail(t, `has shape ${shapeStr(t.shape)} but ${t.op} gives ${shapeStr(sig.shape)}`);
  if (sig.dtype !== t.dtype) fail(t, `has dtype ${t.dtype} but ${t.op} gives ${sig.dtype}`);
}

/**
 * Checks a graph's invariants and throws a GraphError on the first problem:
 * every node's shape and dtype re-derived from its op's rule; inputs created
 * before their users (ids topological); every node interned in the graph's
 * context; the listed inputs and params are its source nodes with matching
 * specs and unique names; the loss is a float scalar; each gradient has the
 * shape and dtype of its param (or input). Returns the graph.
 */
export function verifyGraph(g: Graph): Graph {
  const namer = new Namer(g);
  const fail = (t: Tensor, why: string): never => {
    throw new GraphError(t.op, `node ${namer.describe(t)} ${why}`, t.src);
  };
  const failGraph = (why: string): never => {
    throw new GraphError("verify", `graph "${g.name}": ${why}`);
  };

  // the listed sources
  const sources = new Map<Tensor, string>();
  const names = new Set<string>();
  const specs = [...g.inputs.map((s) => ({ kind: "input" as const, s })), ...g.params.map((s) => ({ kind: "param" as const, s }))];
  for (const { kind, s } of specs) {
    if (names.has(s.name)) failGraph(`the name "${s.name}" is used by two inputs or params`);
    names.add(s.name);
    const t = s.node;
    if (t.op !== kind) fail(t, `is listed as ${kind} "${s.name}" but is a ${t.op} node`);
    const p = t.p("input");
    if (p.name !== s.name) fail(t, `is listed as ${kind} "${s.name}" but is named "${p.name}"`);
    if (!shapesEqual(s.shape, t.shape) || !shapesEqual(p.shape, t.shape)) {
      fail(t, `is listed as ${kind} "${s.name}" of shape ${shapeStr(s.shape)}, its params say ${shapeStr(p.shape)}`);
    }
    if (s.dtype !== t.dtype || p.dtype !== t.dtype) fail(t, `is listed as ${kind} "${s.name}" of dtype ${s.dtype}, its params say ${p.dtype}`);
    if (kind === "param" && !isFloat(t.dtype)) fail(t, `is param "${s.name}" of dtype ${t.dtype}; params are floats`);
    sources.set(t, kind);
  }

  // every node the roots need, and every listed source
  const nodes = new Set<Tensor>([...g.nodes, ...sources.keys()]);
  for (const t of [...nodes].sort((a, b) => a.id - b.id)) {
    verifyNode(g, t, fail);
    if ((t.op === "input" || t.op === "param") && !sources.has(t)) {
      fail(t, `is a source of the graph but not listed among its ${t.op}s`);
    }
  }

  if (g.loss) {
    if (g.loss.rank !== 0) fail(g.loss, `is the loss but is not a scalar`);
    if (!isFloat(g.loss.dtype)) fail(g.loss, `is the loss but is not a float`);
  }
  for (const [name, t] of Object.entries(g.grads)) {
    const wrt = g.param(name) ?? g.input(name) ?? fail(t, `is the gradient of "${name}", which is no param or input of the graph`);
    if (!shapesEqual(t.shape, wrt.shape)) fail(t, `is the gradient of "${name}" ${shapeStr(wrt.shape)} but has shape ${shapeStr(t.shape)}`);
    if (t.dtype !== wrt.dtype) fail(t, `is the gradient of "${name}" (${wrt.dtype}) but has dtype ${t.dtype}`);
  }
  return g;
}
