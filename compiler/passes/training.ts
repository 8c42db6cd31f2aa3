// Training mode resolved at compile time: the training step and forward() are
// lowered from two versions of the graph, one in which every `ifTraining(a, b)`
// is a, one in which it is b. Nodes that no switch reaches are shared.
import type { Graph } from "../ir/graph.js";
import { reachable } from "../ir/graph.js";
import type { Tensor } from "../ir/node.js";

/** Whether a graph has nodes that depend on the entry point. */
export function hasTrainingSwitch(g: Graph): boolean {
  return g.nodes.some((t) => t.op === "ifTraining");
}

/**
 * The images of `roots` with every `ifTraining` replaced by the branch of
 * `training`, rebuilt in the same context: a node that reads no switch is
 * interned to itself, so params, inputs and untouched nodes stay the same.
 *   y = ifTraining(dropout(x), x); z = y·W   →(false)   z' = x·W
 */
export function resolveTraining(roots: readonly Tensor[], training: boolean): Map<Tensor, Tensor> {
  const image = new Map<Tensor, Tensor>();
  const nodes = reachable(roots);
  const ctx = nodes[0]?.ctx;
  if (!ctx) return image;
  const saved = ctx.origin;
  try {
    for (const t of nodes) {
      if (t.op === "ifTraining") {
        image.set(t, image.get(t.inputs[training ? 0 : 1]!)!);
        continue;
      }
      const inputs = t.inputs.map((x) => image.get(x)!);
      if (inputs.every((x, i) => x === t.inputs[i])) {
        image.set(t, t);
        continue;
      }
      ctx.origin = t.origin ? { of: image.get(t.origin.of) ?? t.origin.of, input: t.origin.input } : undefined;
      image.set(t, ctx.apply(t.op, inputs, t.params, t.src ?? null));
    }
  } finally {
    ctx.origin = saved;
  }
  return image;
}

/**
 * The graph the compiler lowers: its loss and state updates as in the
 * training step and its outputs as in forward(), over one context (so params are shared nodes).
 * A graph without switches is returned as it is.
 */
export function trainingGraph(g: Graph): Graph {
  if (!hasTrainingSwitch(g)) return g;
  const train = resolveTraining([...(g.loss ? [g.loss] : []), ...Object.values(g.updates)], true);
  const infer = resolveTraining(Object.values(g.outputs), false);
  const images = (r: Readonly<Record<string, Tensor>>, m: Map<Tensor, Tensor>) => Object.fromEntries(Object.entries(r).map(([k, t]) => [k, m.get(t)!]));
  return g.with({
    loss: g.loss ? train.get(g.loss)! : undefined,
    outputs: images(g.outputs, infer),
    updates: images(g.updates, train),
  });
}
