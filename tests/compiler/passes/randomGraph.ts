// Seeded random graphs for the semantic tests of the pass pipeline: DAGs of
// elementwise ops, literals the rules rewrite, reductions, reshapes, transposes,
// broadcasts and (flagged) matmuls over small shapes, with a scalar loss.
import { graph } from "../../../compiler/dsl/graph.js";
import type { GraphBuilder } from "../../../compiler/dsl/graph.js";
import type { Graph } from "../../../compiler/ir/graph.js";
import type { Tensor } from "../../../compiler/ir/node.js";
import { broadcastShapes } from "../../../compiler/ir/types.js";
import { matmulT } from "../../../compiler/ops/matmul.js";
import { Dice } from "../../randomGraphs.js";

/** A random shape of rank 0 to 3 with sizes 1 to 3 (size 1 often, to exercise broadcasting). */
function randomShape(d: Dice): number[] {
  return Array.from({ length: d.int(4) }, () => d.pick([1, 2, 3, 1, 2]));
}

/** A shape that `s` broadcasts to: leading axes added, some size-1 axes grown. */
function widened(d: Dice, s: readonly number[]): number[] {
  const lead = s.length < 3 && d.chance(0.5) ? [d.pick([2, 3])] : [];
  return [...lead, ...s.map((x) => (x === 1 && d.chance(0.5) ? d.pick([2, 3]) : x))];
}

type Step = (d: Dice, g: GraphBuilder, pool: Tensor[], fresh: () => string) => Tensor | undefined;

const unary: Step = (d, _g, pool) => {
  const x = d.pick(pool);
  switch (d.int(7)) {
    case 0: return x.tanh();
    case 1: return x.sigmoid();
    case 2: return x.sin();
    case 3: return x.relu();
    case 4: return x.neg();
    case 5: return x.square();
    default: return x.tanh().exp();
  }
};

/** Identities and constants the rules rewrite (x·1, x + 0, −(−x), 1·x, folded constants, ...). */
const literal: Step = (d, g, pool) => {
  const x = d.pick(pool);
  switch (d.int(9)) {
    case 0: return x.mul(1);
    case 1: return g.const(1).mul(x);
    case 2: return x.add(0);
    case 3: return x.sub(g.const(0, [...x.shape]));
    case 4: return x.div(1);
    case 5: return x.neg().neg();
    case 6: return x.add(x.neg());
    case 7: return x.mul(g.const(1).div(4).mul(g.const(2, [1])));
    default: return x.mul(-1);
  }
};

const binary: Step = (d, g, pool) => {
  const a = d.pick(pool);
  const partners = pool.filter((b) => {
    try {
      broadcastShapes(a.shape, b.shape);
      return true;
    } catch {
      return false;
    }
  });
  const b = partners.length && d.chance(0.8) ? d.pick(partners) : g.const(d.pick([0.5, 2, -1.5]), d.chance(0.5) ? [] : [1]);
  const [x, y] = d.chance(0.5) ? [a, b] : [b, a];
  return d.pick([() => x.add(y), () => x.sub(y), () => x.mul(y), () => x.maximum(y), () => x.mul(y.sigmoid())])();
};

const reduce: Step = (d, _g, pool) => {
  const x = d.pick(pool);
  if (x.rank === 0) return x.sum();
  const axes = d.shuffle(x.shape.map((_, i) => i)).slice(0, 1 + d.int(x.rank));
  const keep = d.chance(0.5);
  return d.chance(0.75) ? x.sum(axes, keep) : x.max(axes, keep);
};

const movement: Step = (d, _g, pool) => {
  const x = d.pick(pool);
  switch (d.int(5)) {
    case 0: {
      const perm = d.shuffle(x.shape.map((_, i) => i));
      const t = x.transpose(perm);
      return d.chance(0.4) ? t.transpose(d.shuffle(perm.map((_, i) => i))) : t;
    }
    case 1: return x.reshape([x.size]).reshape(d.chance(0.5) ? [1, x.size] : [x.size, 1]);
    case 2: return x.reshape([...x.shape, 1]).reshape(x.shape.length ? [...x.shape] : [1]);
    case 3: return x.broadcastTo(widened(d, x.shape));
    default: return x.reshape([1, ...x.shape]).broadcastTo(widened(d, [1, ...x.shape]));
  }
};

/** A matmul with a new param: a flag, an explicit transpose (the layout rule's work) or an operand stored transposed. */
const matmul: Step = (d, g, pool, fresh) => {
  const cands = pool.filter((t) => t.rank >= 2);
  const a = cands.length ? d.pick(cands) : d.pick(pool).reshape([1, -1]);
  const k = a.shape.at(-1)!;
  const n = d.pick([1, 2, 3]);
  const batch = a.rank > 2 && d.chance(0.5) ? [...a.shape.slice(0, -2)] : [];
  const tB = d.chance(0.4);
  const W = g.param(fresh(), tB ? [...batch, n, k] : [...batch, k, n]);
  const swap = (t: Tensor) => t.transpose([...t.shape.slice(0, -2).map((_, i) => i), t.rank - 1, t.rank - 2]);
  switch (d.int(3)) {
    case 0: return matmulT(a, W, false, tB);
    case 1: return a.matmul(tB ? swap(W) : W);
    default: return matmulT(swap(a), W, true, tB);
  }
};

const STEPS: readonly [Step, number][] = [
  [unary, 3],
  [literal, 2],
  [binary, 3],
  [reduce, 2],
  [movement, 2],
  [matmul, 2],
];

/** A random graph: 1–2 inputs, 1–2 params, `ops` steps, outputs, and a scalar loss over the tensors left unused. */
export function randomGraph(seed: number, ops = 8 + (seed % 7)): Graph {
  const d = new Dice(seed * 7919 + 13);
  const weights = STEPS.flatMap(([s, w]) => Array<Step>(w).fill(s));
  return graph(`random${seed}`, (g) => {
    let names = 0;
    const fresh = () => `p${names++}`;
    const pool: Tensor[] = [];
    for (let i = 0, n = 1 + d.int(2); i < n; i++) pool.push(g.input(`x${i}`, randomShape(d)));
    for (let i = 0, n = 1 + d.int(2); i < n; i++) pool.push(g.param(fresh(), randomShape(d)));
    const used = new Set<Tensor>();
    for (let i = 0; i < ops; i++) {
      const t = d.pick(weights)(d, g, pool, fresh);
      if (!t) continue;
      for (const x of t.inputs) used.add(x);
      pool.push(t);
    }
    // the loss reads every tensor no step used, each weighted, so every param gets a gradient through something
    const leaves = pool.filter((t) => !used.has(t));
    const loss = leaves.map((t, i) => t.mul(0.5 + 0.25 * i).sum()).reduce((a, b) => a.add(b));
    const outputs = Object.fromEntries(d.shuffle(pool.slice(-3)).slice(0, 2).map((t, i) => [`out${i}`, t]));
    return { loss, outputs };
  });
}
