// Seeded random training graphs for the fusion tests: chains and DAGs of
// elementwise ops with broadcasting, row and column reductions feeding back
// into elementwise work (softmax- and norm-like patterns), matmuls with bias
// and activation epilogues, transposed operands, unit-axis reshapes, shared
// values and several outputs, ending in a scalar loss.
import { graph } from "../../../compiler/dsl/graph.js";
import type { GraphBuilder } from "../../../compiler/dsl/graph.js";
import * as nn from "../../../compiler/dsl/nn.js";
import type { Graph } from "../../../compiler/ir/graph.js";
import type { Tensor } from "../../../compiler/ir/node.js";
import { randomArray } from "../../helpers.js";
import { Dice } from "../../randomGraphs.js";

/** A random graph and values for its inputs. */
export interface RandomCase {
  readonly graph: Graph;
  readonly feeds: Record<string, Float64Array>;
}

const UNARY: readonly ((t: Tensor) => Tensor)[] = [
  (t) => t.tanh(),
  (t) => t.sigmoid(),
  (t) => t.mul(0.5).exp(),
  (t) => t.relu(),
  (t) => t.neg(),
  (t) => t.square(),
  (t) => t.softplus(),
  (t) => t.leakyRelu(0.1),
];

/**
 * A graph over rows × cols values: `steps` random ops, each on values already
 * made (so values are shared), then a loss that weights some of them.
 */
export function randomCase(seed: number, steps = 7): RandomCase {
  const d = new Dice(seed);
  const rows = d.pick([1, 2, 3, 5]);
  const cols = d.pick([1, 3, 4, 6]);
  const feeds: Record<string, Float64Array> = {};
  let params = 0;
  const g = graph(`random${seed}`, (b: GraphBuilder) => {
    const x = b.input("x", [rows, cols]);
    feeds["x"] = randomArray(rows * cols, seed * 7 + 1);
    const param = (shape: number[]) => b.param(`p${params++}`, shape, { init: Array.from(randomArray(shape, seed * 31 + params, -0.8, 0.8)) });
    // values of shape [rows, n] for some n, and row vectors [n]
    // a first scale, so every graph has a param to differentiate
    const mats: Tensor[] = [x.mul(param([cols]))];
    for (let s = 0; s < steps; s++) {
      const t = d.pick(mats);
      const [r, c] = t.shape as [number, number];
      let out: Tensor;
      switch (d.int(9)) {
        case 0:
          out = d.pick(UNARY)(t);
          break;
        case 1: // elementwise with a broadcast row vector or column
          out = d.chance(0.5) ? t.add(param([c])) : t.mul(param([r, 1]));
          break;
        case 2: { // two values of one shape
          const u = mats.filter((m) => m.shape[1] === c);
          out = d.pick([(a: Tensor, z: Tensor) => a.add(z), (a: Tensor, z: Tensor) => a.mul(z), (a: Tensor, z: Tensor) => a.sub(z).maximum(a)])(t, d.pick(u));
          break;
        }
        case 3: // a row reduction fed back into elementwise work
          out = d.chance(0.5) ? t.sub(t.max(-1, true)).exp() : t.div(t.square().sum(-1, true).add(1));
          break;
        case 4: // a dense layer with a bias and an activation, weights stored either way round
          {
            const n = d.pick([2, 4, 5]);
            const w = d.chance(0.5) ? t.matmul(param([c, n])) : t.matmul(param([n, c]).transpose());
            out = d.pick(UNARY)(w.add(param([n])));
          }
          break;
        case 5:
          out = d.chance(0.5) ? nn.softmax(t) : nn.logSoftmax(t);
          break;
        case 6: // a column reduction broadcast back
          out = t.sub(t.mean(0, true));
          break;
        case 7: // unit-axis reshapes around a reduction
          out = t.mul(t.sum(-1).expandDims(-1).tanh());
          break;
        default:
          out = t.greater(0).where(t, t.mul(0.3));
          break;
      }
      mats.push(out);
    }
    // the loss weights the last values and one other; the last two are outputs
    const last = mats.slice(-2);
    const chosen = [...new Set([...last, d.pick(mats.slice(1))])];
    const loss = chosen.map((t, i) => t.mul(b.const(Array.from(randomArray(t.size, seed * 13 + i, -1, 1)), [...t.shape])).sum()).reduce((a, z) => a.add(z));
    return { loss, outputs: { y0: last[0]!, y1: last[1]! } };
  });
  return { graph: g, feeds };
}
