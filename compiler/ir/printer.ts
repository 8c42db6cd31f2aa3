// A jaxpr-style text printer: one binding per line, dtype and shape on every
// binding, params shown, source lines and gradient origins as comments.
import type { Graph } from "./graph.js";
import type { Tensor } from "./node.js";
import { formatLoc, shapeStr } from "./types.js";
import { stableJson } from "./node.js";
import { literalValue } from "./constants.js";

/** a, b, ..., z, ba, bb, ...: short names in order of appearance. */
export function letterName(i: number): string {
  let s = "";
  let n = i;
  do {
    s = String.fromCharCode(97 + (n % 26)) + s;
    n = Math.floor(n / 26);
  } while (n > 0);
  return s;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_.]*$/;
/** A user name as printed: bare when it is an identifier, else JSON-quoted. */
export function printedName(name: string): string {
  return IDENT.test(name) ? name : JSON.stringify(name);
}

function typeOf(t: Tensor): string {
  return `${t.dtype}${shapeStr(t.shape)}`;
}

function literal(t: Tensor): string | undefined {
  const v = literalValue(t);
  if (v === undefined) return undefined;
  const s = Number.isInteger(v) && t.dtype !== "i32" && t.dtype !== "bool" ? v.toFixed(1) : String(v);
  return t.rank === 0 ? s : `${s}:${typeOf(t)}`;
}

function paramsText(t: Tensor): string {
  if (t.op === "input" || t.op === "param" || t.op === "const") return "";
  const p = t.params as Record<string, unknown>;
  const keys = Object.keys(p).filter((k) => p[k] !== undefined);
  if (!keys.length) return "";
  return `[${keys.map((k) => `${k}=${stableJson(p[k])}`).join(" ")}]`;
}

/** Where a node came from: the user's line, and for backward nodes the op it differentiates. */
export function describeOrigin(t: Tensor): string {
  const loc = formatLoc(t.src);
  if (!t.origin) return t.src ? loc : "";
  const of = t.origin.of;
  const which = t.origin.input >= 0 ? ` wrt input ${t.origin.input}` : "";
  return `grad of ${of.op}${which} at ${formatLoc(of.src)}`;
}

export interface PrintOptions {
  /** Show source lines and origins as comments (default true). */
  readonly comments?: boolean;
}

/** Prints a graph: its signature, one binding per node, and its results. */
export function printGraph(g: Graph, options: PrintOptions = {}): string {
  return printGraphWithNames(g, options).text;
}

/** A printed graph with the names the printer gave its nodes. */
export interface PrintedGraph {
  readonly text: string;
  /** The printed name of every input, param and bound node (literals are written inline and have none). */
  readonly names: ReadonlyMap<Tensor, string>;
  /** Each bound node's binding as printed, without indentation or comment, e.g. `c:f32[4,8] = relu b`. */
  readonly bindings: ReadonlyMap<Tensor, string>;
}

/** `printGraph`'s text, with the names and binding lines it assigned to each node. */
export function printGraphWithNames(g: Graph, options: PrintOptions = {}): PrintedGraph {
  const comments = options.comments ?? true;
  const names = new Map<Tensor, string>();
  for (const i of g.inputs) names.set(i.node, printedName(i.name));
  for (const p of g.params) names.set(p.node, printedName(p.name));
  let counter = 0;
  // letters skip the names of inputs and params, so `b` is never both a param and a binding
  const taken = new Set(names.values());
  const nameOf = (t: Tensor): string => {
    const lit = literal(t);
    if (lit !== undefined) return lit;
    let n = names.get(t);
    if (!n) {
      do n = letterName(counter++);
      while (taken.has(n));
      names.set(t, n);
    }
    return n;
  };
  const sig = (list: readonly { name: string; node: Tensor }[]) => list.map((x) => `${printedName(x.name)}:${typeOf(x.node)}`).join(", ");
  const frozen = g.params.filter((p) => !p.trainable).map((p) => printedName(p.name));
  const lines = [`{ lambda ${g.name} (${sig(g.inputs)}; ${sig(g.params)})${frozen.length ? ` frozen(${frozen.join(", ")})` : ""} .`];
  const body: [string, string][] = [];
  const bindings = new Map<Tensor, string>();
  for (const t of g.nodes) {
    if (t.op === "input" || t.op === "param" || literal(t) !== undefined) continue;
    const lhs = `${nameOf(t)}:${typeOf(t)}`;
    const rhs = t.op === "const" ? `const ${JSON.stringify(t.p("const").value)}` : `${t.op}${paramsText(t)} ${t.inputs.map(nameOf).join(" ")}`;
    const binding = `${lhs} = ${rhs.trimEnd()}`;
    bindings.set(t, binding);
    body.push([`  ${binding}`, comments ? describeOrigin(t) : ""]);
  }
  const width = Math.min(72, Math.max(0, ...body.map(([s]) => s.length)));
  for (const [s, c] of body) lines.push(c ? `${s.padEnd(width)}  # ${c}` : s);
  const results: string[] = [];
  if (g.loss) results.push(`loss=${nameOf(g.loss)}`);
  for (const [k, t] of Object.entries(g.outputs)) results.push(`${printedName(k)}=${nameOf(t)}`);
  for (const [k, t] of Object.entries(g.grads)) results.push(`d${printedName(k)}=${nameOf(t)}`);
  lines.push(`  in (${results.join(", ")}) }`);
  return { text: lines.join("\n"), names, bindings };
}
