// Rewriting as data: rules (pattern → replacement) applied bottom-up to a
// fixpoint while the graph is replayed through a fresh Context, so interning
// merges equal nodes (CSE) and only what the roots need survives (DCE).
import { Context } from "../ir/node.js";
import type { Tensor } from "../ir/node.js";
import { Graph, neededNodes } from "../ir/graph.js";
import type { InputSpec, ParamSpec } from "../ir/graph.js";
import type { DType } from "../ir/types.js";
import { GraphError, shapeStr, shapesEqual } from "../ir/types.js";
import type { OpKind, OpParams } from "../ir/kinds.js";
import type { Bindings, Pattern } from "./pattern.js";
import { match } from "./pattern.js";

/** Creates nodes for a replacement: they keep the rewritten node's source line and gradient origin. */
export interface Builder {
  /** The node `op(inputs; params)` in the graph being built. */
  apply<K extends OpKind>(op: K, inputs: readonly Tensor[], params: OpParams[K]): Tensor;
  /** A constant of `shape`: one value repeated, or one value per element. */
  constant(value: number | readonly number[], shape: readonly number[], dtype: DType): Tensor;
}

/** What a rule's `replace` receives. */
export interface Match {
  /** The matched node (its inputs already rewritten). */
  readonly node: Tensor;
  /** The nodes the pattern's names bound. */
  readonly bind: Bindings;
  readonly build: Builder;
}

/**
 * One rewrite: where `match` matches a node, `replace` gives a node of the same
 * shape and dtype that computes the same values, or undefined to decline.
 * It must build nothing when it declines.
 */
export interface Rule {
  readonly name: string;
  readonly match: Pattern;
  readonly replace: (m: Match) => Tensor | undefined;
}

/** How many times each rule fired, by name. */
export type Fired = Record<string, number>;

/** Rewrites of one node at most, and replays of one graph at most, before a rule set counts as looping. */
const NODE_LIMIT = 64;
const ROUND_LIMIT = 32;

/** A Builder over `ctx` that stamps `src` on what it creates (the context's origin is already set). */
function builder(ctx: Context, node: Tensor): Builder {
  const src = node.src ?? null;
  return {
    apply: (op, inputs, params) => ctx.apply(op, inputs, params, src),
    constant: (value, shape, dtype) =>
      ctx.apply("const", [], { value: typeof value === "number" ? [value] : [...value], shape: [...shape], dtype }, src),
  };
}

/** Applies the first rule that fires to `t`, again and again, until none does. */
function simplifyNode(ctx: Context, t: Tensor, rules: readonly Rule[], fired: Fired): Tensor {
  let cur = t;
  for (let n = 0; n < NODE_LIMIT; n++) {
    let next: Tensor | undefined;
    for (const rule of rules) {
      const bind = match(rule.match, cur);
      if (!bind) continue;
      next = rule.replace({ node: cur, bind, build: builder(ctx, cur) });
      if (next === undefined) continue;
      if (next.ctx !== ctx || !shapesEqual(next.shape, cur.shape) || next.dtype !== cur.dtype) {
        const got = next.ctx !== ctx ? "a node of another graph" : `${next.dtype}${shapeStr(next.shape)}`;
        throw new GraphError("rewrite", `rule "${rule.name}" replaced ${cur.dtype}${shapeStr(cur.shape)} = ${cur.op} with ${got}`, cur.src);
      }
      if (next === cur) {
        next = undefined;
        continue;
      }
      fired[rule.name] = (fired[rule.name] ?? 0) + 1;
      break;
    }
    if (next === undefined) return cur;
    cur = next;
  }
  throw new GraphError("rewrite", `rules keep rewriting ${cur.dtype}${shapeStr(cur.shape)} = ${cur.op}: they do not reach a fixpoint`, cur.src);
}

/**
 * One replay: every needed node, in order, rebuilt from its inputs' images in a
 * fresh Context (keeping its src and origin), then simplified by the rules.
 * Returns the new graph; `fired` counts the rules that fired.
 */
export function replay(g: Graph, rules: readonly Rule[], fired: Fired = {}): Graph {
  const ctx = new Context(g.name, g.ctx.ops);
  // customGrad nodes refer to their VJP by its index here
  ctx.customVjps.push(...g.ctx.customVjps);
  const image = new Map<Tensor, Tensor>();
  const img = (t: Tensor): Tensor => image.get(t) ?? ((): never => {
    throw new GraphError("rewrite", `node %${t.id} (${t.op}) is used before it is rebuilt`, t.src);
  })();
  try {
    for (const t of neededNodes(g)) {
      // a backward node's origin is the rebuilt forward node it differentiates
      ctx.origin = t.origin ? { of: img(t.origin.of), input: t.origin.input } : undefined;
      const fresh = ctx.apply(t.op, t.inputs.map(img), t.params, t.src ?? null);
      image.set(t, t.op === "input" || t.op === "param" ? fresh : simplifyNode(ctx, fresh, rules, fired));
    }
  } finally {
    ctx.origin = undefined;
  }
  const inputs: InputSpec[] = g.inputs.map((i) => ({ ...i, node: img(i.node) }));
  const params: ParamSpec[] = g.params.map((p) => ({ ...p, node: img(p.node) }));
  const byName = (r: Readonly<Record<string, Tensor>>) => Object.fromEntries(Object.entries(r).map(([k, t]) => [k, img(t)]));
  return new Graph(g.name, ctx, inputs, params, g.loss ? img(g.loss) : undefined, byName(g.outputs), byName(g.grads), byName(g.updates));
}

/** The result of `rewriteCounted`: the graph, and how often each rule fired. */
export interface Rewritten {
  readonly graph: Graph;
  readonly fired: Fired;
}

/** `rewrite`, also counting the rules that fired. */
export function rewriteCounted(g: Graph, rules: readonly Rule[]): Rewritten {
  const fired: Fired = {};
  let cur = g;
  for (let round = 0; round < ROUND_LIMIT; round++) {
    const before = Object.values(fired).reduce((a, b) => a + b, 0);
    cur = replay(cur, rules, fired);
    // a replay where nothing fired rebuilt every node as it was: the fixpoint, and a compact context
    if (Object.values(fired).reduce((a, b) => a + b, 0) === before) return { graph: cur, fired };
  }
  throw new GraphError("rewrite", `graph "${g.name}": the rules still fire after ${ROUND_LIMIT} replays`);
}

/**
 * Applies `rules` bottom-up to a fixpoint: replays the graph, rewriting each
 * node (inputs first) with the first rule that matches, until a replay changes
 * nothing. Equal nodes merge (interning) and unreachable ones vanish. With no
 * rules it is one plain replay: CSE and DCE.
 */
export function rewrite(g: Graph, rules: readonly Rule[]): Graph {
  return rewriteCounted(g, rules).graph;
}
