// Reverse-mode autodiff as a graph-to-graph transform: one walk in reverse
// topological order, one VJP rule per primitive (kept in the op's record).
import type { Tensor } from "../ir/node.js";
import { Graph, reachable } from "../ir/graph.js";
import type { InputSpec } from "../ir/graph.js";
import { GraphError, isFloat, shapeStr, shapesEqual } from "../ir/types.js";
import { OPS } from "../ops/index.js";
import type { NodeOf } from "../ops/def.js";
import type { OpKind } from "../ir/kinds.js";

/**
 * Sums a cotangent of a broadcast shape back to `shape`: the one place where
 * broadcasting is undone (leading axes and size-1 axes are summed).
 */
export function unbroadcast(ct: Tensor, shape: readonly number[]): Tensor {
  if (shapesEqual(ct.shape, shape)) return ct;
  const lead = ct.rank - shape.length;
  const axes: number[] = [];
  ct.shape.forEach((d, i) => {
    if (i < lead || (shape[i - lead] === 1 && d !== 1)) axes.push(i);
  });
  const summed = axes.length ? ct.sum(axes, true) : ct;
  return summed.reshape([...shape]);
}

/** Nodes that depend on any of `sources`: only these carry cotangents. */
function dependents(nodes: readonly Tensor[], sources: readonly Tensor[]): Set<Tensor> {
  const dep = new Set<Tensor>(sources);
  for (const n of nodes) if (n.inputs.some((i) => dep.has(i))) dep.add(n);
  return dep;
}

/**
 * Cotangents of `wrt` given cotangents `cts` of `roots`. Nodes that do not
 * depend on `wrt` get no backward nodes at all (frozen layers, stopGradient,
 * integer paths). Returns undefined for a `wrt` the roots do not depend on.
 */
export function backprop(roots: readonly Tensor[], cts: readonly Tensor[], wrt: readonly Tensor[]): Map<Tensor, Tensor> {
  const nodes = reachable(roots);
  const live = dependents(nodes, wrt.filter((w) => isFloat(w.dtype)));
  const pending = new Map<Tensor, Tensor[]>();
  const push = (t: Tensor, ct: Tensor) => {
    const list = pending.get(t);
    if (list) list.push(ct);
    else pending.set(t, [ct]);
  };
  roots.forEach((r, i) => push(r, cts[i]!));
  const ctx = roots[0]!.ctx;
  const result = new Map<Tensor, Tensor>();
  const saved = ctx.origin;
  try {
    for (let k = nodes.length - 1; k >= 0; k--) {
      const node = nodes[k]!;
      const list = pending.get(node);
      if (!list || !live.has(node)) continue;
      ctx.origin = { of: node, input: -1 };
      // fan-out: a node used several times sums its cotangents
      const ct = list.reduce((a, b) => a.add(b));
      result.set(node, ct);
      const rule = OPS[node.op].vjp as ((ct: Tensor, n: NodeOf<OpKind>) => readonly (Tensor | null)[]) | undefined;
      if (!rule || node.inputs.every((i) => !live.has(i))) continue;
      const ins = rule(ct, node as NodeOf<OpKind>);
      node.inputs.forEach((input, i) => {
        const c = ins[i];
        if (!c || !live.has(input) || !isFloat(input.dtype)) return;
        ctx.origin = { of: node, input: i };
        let g = unbroadcast(c, input.shape);
        if (g.dtype !== input.dtype) g = g.cast(input.dtype);
        if (!shapesEqual(g.shape, input.shape)) {
          throw new GraphError(node.op, `VJP gave a cotangent of shape ${shapeStr(g.shape)} for input ${i} of shape ${shapeStr(input.shape)}`, node.src);
        }
        push(input, g);
      });
    }
  } finally {
    ctx.origin = saved;
  }
  return result;
}

/** The nodes and names a gradient may be taken with respect to. */
function resolveWrt(g: Graph, wrt: readonly string[] | undefined): { name: string; node: Tensor }[] {
  if (!wrt) return g.params.filter((p) => p.trainable).map((p) => ({ name: p.name, node: p.node }));
  return wrt.map((name) => {
    const p = g.param(name);
    const i = g.input(name);
    if (p && !p.trainable) throw new GraphError("grad", `param "${name}" is frozen (trainable: false); it has no gradient`);
    const node = p?.node ?? i?.node;
    if (!node) throw new GraphError("grad", `no param or input named "${name}" in graph "${g.name}"`);
    if (!isFloat(node.dtype)) throw new GraphError("grad", `"${name}" is ${node.dtype}; only float tensors have gradients`);
    return { name, node };
  });
}

/** A zero tensor of `t`'s shape and dtype (the gradient of something the loss ignores). */
function zerosLike(t: Tensor): Tensor {
  return t.lift(0, t.dtype).broadcastTo([...t.shape]);
}

/**
 * The training graph: the loss, the outputs, and dLoss/dθ for every trainable
 * param (or the names in `wrt`, params or inputs), as graph nodes; with
 * `lossScale`, S·dLoss/dθ where S is the `lossScale` node.
 */
export function grad(g: Graph, options: { wrt?: readonly string[]; lossScale?: boolean } = {}): Graph {
  if (!g.loss) throw new GraphError("grad", `graph "${g.name}" has no loss to differentiate`);
  const targets = resolveWrt(g, options.wrt);
  // `lossScale` (mixed precision): the gradients come out multiplied by the runtime's loss scale S, which lowering divides out again
  const seed = options.lossScale ? g.ctx.apply("lossScale", [], {}, g.loss.src ?? null) : g.loss.lift(1, g.loss.dtype);
  const cts = backprop([g.loss], [seed], targets.map((t) => t.node));
  const grads = Object.fromEntries(targets.map((t) => [t.name, cts.get(t.node) ?? zerosLike(t.node)]));
  return g.with({ grads });
}

/** Name of the input that feeds the cotangent of output `name` in `vjp`. */
export const cotangentName = (name: string): string => `${name}.ct`;

/**
 * Vector–Jacobian product of non-scalar outputs: a graph with one more input
 * per output (its cotangent, named `<output>.ct`) and gradients for `wrt`.
 */
export function vjp(g: Graph, outputs: readonly string[], options: { wrt?: readonly string[] } = {}): Graph {
  const targets = resolveWrt(g, options.wrt);
  const ctInputs: InputSpec[] = outputs.map((name) => {
    const out = g.outputs[name];
    if (!out) throw new GraphError("vjp", `graph "${g.name}" has no output "${name}"`);
    const n = cotangentName(name);
    const node = g.ctx.apply("input", [], { name: n, shape: [...out.shape], dtype: out.dtype });
    return { name: n, shape: out.shape, dtype: out.dtype, node };
  });
  const cts = backprop(outputs.map((n) => g.outputs[n]!), ctInputs.map((c) => c.node), targets.map((t) => t.node));
  const grads = Object.fromEntries(targets.map((t) => [t.name, cts.get(t.node) ?? zerosLike(t.node)]));
  return new Graph(g.name, g.ctx, [...g.inputs, ...ctInputs], g.params, g.loss, g.outputs, grads, g.updates);
}

/** Name of the input that feeds the direction for param `name` in `hvp`. */
export const tangentName = (name: string): string => `${name}.v`;

/**
 * Hessian-vector product by differentiating the gradient again: a graph with
 * one direction input per param (`<param>.v`) whose grads are H·v.
 */
export function hvp(g: Graph, options: { wrt?: readonly string[] } = {}): Graph {
  const first = grad(g, options);
  const names = Object.keys(first.grads);
  const vs: InputSpec[] = names.map((name) => {
    const t = first.grads[name]!;
    const n = tangentName(name);
    const node = g.ctx.apply("input", [], { name: n, shape: [...t.shape], dtype: t.dtype });
    return { name: n, shape: t.shape, dtype: t.dtype, node };
  });
  // d/dθ ⟨∇L(θ), v⟩ = H v
  const inner = names.map((n, i) => first.grads[n]!.mul(vs[i]!.node).sum()).reduce((a, b) => a.add(b));
  const wrtNodes = names.map((n) => (g.param(n) ?? g.input(n))!.node);
  const cts = backprop([inner], [inner.lift(1, inner.dtype)], wrtNodes);
  const grads = Object.fromEntries(names.map((n, i) => [n, cts.get(wrtNodes[i]!) ?? zerosLike(wrtNodes[i]!)]));
  return new Graph(g.name, g.ctx, [...g.inputs, ...vs], g.params, g.loss, g.outputs, grads, g.updates);
}
