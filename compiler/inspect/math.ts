// `gradc inspect --grad NAME --math`: the gradient slice as a chain-rule
// expression read off the backward graph, e.g. dL/dW1 = xᵀ · ((δf · W2ᵀ) ⊙ [b > 0]).
// Inputs and params appear by name, forward values by their printer letters,
// shared backward values and cotangent sums as δ names defined below.
import type { Graph } from "../ir/graph.js";
import type { Tensor } from "../ir/node.js";
import { describeOrigin, printedName } from "../ir/printer.js";
import { shapesEqual } from "../ir/types.js";
import { commentText, printedNodes } from "../lower/names.js";
import type { Printed } from "../lower/names.js";
import { bindingLines, gradNode } from "./slice.js";
import { OPS } from "../ops/index.js";
import type { Term } from "./terms.js";
import { T, add, call, cmp, div, dot, had, mask, name, neg, not, num, pow, render, sub, subscript } from "./terms.js";
import { literalValue } from "../ir/constants.js";

/** How the maths reads a node's op (its record's `math`): "through" a move or retag, or as a "layer". */
const mathOf = (t: Tensor): "through" | "layer" | undefined => (OPS[t.op] as { math?: "through" | "layer" }).math;


/** The node `t` stands for once moves are read through. */
function core(t: Tensor): Tensor {
  let c = t;
  while (c.origin && mathOf(c) === "through") c = c.inputs[0]!;
  return c;
}

/** The chain-rule view of one gradient. */
export interface GradMath {
  /** `dL/dNAME = …` */
  readonly equation: string;
  /** δ names and their definitions, in the order they are read (outer first). */
  readonly defs: readonly { readonly name: string; readonly term: string; readonly note: string }[];
  /** Forward bindings and sources the expressions name. */
  readonly uses: readonly Tensor[];
}

/** Forward nodes that depend on a trainable param: the ones that have cotangents. */
function liveNodes(g: Graph): Set<Tensor> {
  const live = new Set<Tensor>(g.params.filter((p) => p.trainable).map((p) => p.node));
  for (const t of g.nodes) if (!t.origin && t.inputs.some((i) => live.has(i))) live.add(t);
  return live;
}

/**
 * The forward value whose cotangent `b` is, as far as its origin tells: the
 * input its unbroadcast step is for; or, for a node of a VJP, a cotangent sum
 * of the op's own value (an `add` of its shape), else the one live input of
 * that shape. Undefined when that is ambiguous. Names only: nothing depends on it.
 */
function cotangentOf(b: Tensor, live: ReadonlySet<Tensor>): Tensor | undefined {
  const o = b.origin;
  if (!o) return undefined;
  const n = o.of;
  if (o.input >= 0) {
    const x = n.inputs[o.input];
    return x && shapesEqual(x.shape, b.shape) ? x : undefined;
  }
  if (b.op === "add" && shapesEqual(n.shape, b.shape)) return n;
  const candidates = [...new Set(n.inputs)].filter((x) => live.has(x) && shapesEqual(x.shape, b.shape));
  return candidates.length === 1 ? candidates[0] : undefined;
}

/** Builds the chain-rule expression of dLoss/dNAME in `g` (any stage of the training graph). */
export function gradMath(g: Graph, paramName: string): GradMath {
  const root = gradNode(g, paramName);
  const printed: Map<Tensor, Printed> = printedNodes(g);
  const letter = (t: Tensor) => printedName(printed.get(t)?.name ?? `n${t.id}`);
  const live = liveNodes(g);
  const isValue = (t: Tensor) => t.origin !== undefined && t.op !== "const" && mathOf(t) !== "through";

  // the slice's backward values (moves read through), with their distinct consumers
  const consumers = new Map<Tensor, Set<Tensor>>();
  const layerOperand = new Set<Tensor>();
  const rootCore = core(root);
  const seen = new Set<Tensor>();
  const visit = (t: Tensor) => {
    if (seen.has(t)) return;
    seen.add(t);
    for (const i of t.inputs) {
      if (!i.origin) continue;
      const c = core(i);
      if (isValue(t)) {
        if (!consumers.has(c)) consumers.set(c, new Set());
        consumers.get(c)!.add(t);
        // a layer's operands are its cotangents: each gets a δ line of its own
        if (mathOf(t) === "layer" && t !== rootCore) layerOperand.add(c);
      }
      visit(c);
    }
  };
  visit(rootCore);

  // δ names: values read twice, and the cotangents a layer's gradient reads
  const names = new Map<Tensor, string>();
  const taken = new Set<string>();
  for (const t of [...seen].filter((x) => isValue(x) && x !== rootCore).sort((a, b) => b.id - a.id)) {
    const of = cotangentOf(t, live);
    const shared = (consumers.get(t)?.size ?? 0) >= 2;
    if (!shared && !(layerOperand.has(t) && of)) continue;
    let n = of ? `δ${letter(of)}` : letter(t);
    if (taken.has(n)) n = letter(t);
    names.set(t, n);
    taken.add(n);
  }

  const leaves = new Set<Tensor>();
  const memo = new Map<Tensor, Term>();
  const term = (t: Tensor, top = false): Term => {
    const c = core(t);
    const u = literalValue(c);
    if (u !== undefined) return num(u);
    const named = names.get(c);
    if (named && !top) return name(named);
    if (!c.origin) {
      leaves.add(c);
      return name(letter(c));
    }
    const hit = memo.get(c);
    if (hit) return hit;
    const made = build(c);
    memo.set(c, made);
    return made;
  };
  const build = (t: Tensor): Term => {
    const a = () => term(t.inputs[0]!);
    const b = () => term(t.inputs[1]!);
    const op = t.op;
    switch (op) {
      case "const": return name(letter(t));
      case "add": return add(a(), b());
      case "sub": return sub(a(), b());
      case "mul": return had(a(), b());
      case "div": return div(a(), b());
      case "neg": return neg(a());
      case "matmul": {
        const p = t.p("matmul");
        return dot(p.transposeA ? T(a()) : a(), p.transposeB ? T(b()) : b());
      }
      case "where": {
        const c = a();
        const x = b();
        const y = term(t.inputs[2]!);
        if (y.k === "num" && y.v === 0) return mask(x, c);
        if (x.k === "num" && x.v === 0) return mask(y, not(c));
        return call("where", c, x, y);
      }
      case "sum":
      case "max":
      case "min": {
        const axes = t.p("sum").axes;
        const f = op === "sum" ? "Σ" : op;
        return call(axes === null ? f : `${f}${subscript(axes)}`, a());
      }
      case "transpose": {
        const perm = t.p("transpose").perm;
        return perm.length === 2 && perm[0] === 1 ? T(a()) : call(`transpose[${perm.join(",")}]`, a());
      }
      case "pow": return pow(a(), t.p("pow").exponent);
      case "exp":
      case "log":
      case "tanh":
      case "sin":
      case "cos":
      case "abs":
      case "sign":
      case "relu":
      case "softplus":
      case "rsqrt":
      case "sigmoid":
      case "sqrt":
        return call(OPS[op].symbol ?? op, a());
      default: {
        // comparisons are the binary ops with a bool result; their records say their symbol
        const sym = OPS[op].symbol;
        if (sym && t.dtype === "bool" && t.inputs.length === 2) return cmp(sym, a(), b());
        if (op === "maximum" || op === "minimum") return call(sym ?? op, a(), b());
        // conv and pooling gradients, gathers, scatters: by op name
        return call(op, ...t.inputs.map((i) => term(i)));
      }
    }
  };

  const equation = `dL/d${printedName(paramName)} = ${render(term(root, true))}`;
  // definitions outer first: a δ is defined after the expressions that read it
  const order = [...names.keys()].sort((x, y) => y.id - x.id);
  const defs = order.map((t) => {
    const of = cotangentOf(t, live);
    const what = of ? `dL/d${letter(of)}: ` : "";
    return { name: names.get(t)!, term: render(term(t, true)), note: `${what}${describeOrigin(t)}` };
  });
  const usedLeaves = g.nodes.filter((t) => leaves.has(t));
  return { equation, defs, uses: usedLeaves };
}

/** The text `gradc inspect --grad NAME --math` prints. */
export function mathText(g: Graph, paramName: string): string {
  const m = gradMath(g, paramName);
  const lines = [m.equation];
  const width = Math.max(0, ...m.defs.map((d) => d.name.length + d.term.length + 5));
  for (const d of m.defs) lines.push(`  ${`${d.name} = ${d.term}`.padEnd(width)}  # ${d.note}`);
  const printed = printedNodes(g);
  const sources = m.uses.filter((t) => t.op === "input" || t.op === "param");
  const bound = m.uses.filter((t) => t.op !== "input" && t.op !== "param");
  if (m.uses.length) {
    lines.push("where");
    if (sources.length) lines.push(`  ${sources.map((t) => `${printedName(printed.get(t)!.name)}:${t.dtype}[${t.shape.join(",")}] ${t.op}`).join(", ")}`);
    lines.push(...bindingLines(g, bound));
  }
  return lines.map(commentText).join("\n");
}
