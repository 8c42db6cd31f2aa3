// Gradient checking: symbolic gradients (grad + the f64 interpreter) against
// central finite differences of the loss, per parameter, in float64.
import type { Graph } from "../ir/graph.js";
import type { Tensor } from "../ir/node.js";
import { GraphError, shapeStr, sizeOf } from "../ir/types.js";
import { evaluate, initialParams } from "../interp/interpret.js";
import type { Feeds } from "../interp/interpret.js";
import type { NDArray } from "../ops/def.js";
import { hashString, rng } from "../dsl/init.js";
import { grad } from "./grad.js";
import { checkDerivative, maxAbs, num, reportTable, sci } from "../../runtime/finiteDiff.js";
import { unravelIndex } from "../../runtime/numerics.js";

/** Options of `checkGrads`; every field has a default. */
export interface CheckGradsOptions {
  /** Parameter values by name; missing ones come from their initializers. */
  readonly params?: Feeds;
  /** Names to check (params or float inputs). Default: every trainable param. */
  readonly wrt?: readonly string[];
  /** Seeded random unit directions per tensor (default 3). */
  readonly directions?: number;
  /** Tensors of at most this many elements are also checked element by element (default 16; 0 = never). */
  readonly maxElements?: number;
  /** Finite-difference step h, scaled by max(1, max|θ|) (default 1e-3). */
  readonly step?: number;
  /** Largest relative error accepted (default 1e-6). */
  readonly tolerance?: number;
  /** Errors are measured relative to at least this fraction of the tensor's largest gradient component (default 1e-4). */
  readonly relativeFloor?: number;
  /** Seed of the random directions (default 0). */
  readonly seed?: number;
  /** 2 checks the gradient of the gradient (see `gradProbe`) instead of the gradient (default 1). */
  readonly order?: 1 | 2;
}

/** The result for one checked tensor: its worst comparison. */
export interface TensorGradCheck {
  readonly name: string;
  readonly shape: readonly number[];
  /** How many derivatives were compared (directions + elements). */
  readonly checks: number;
  /** The largest relative error over those comparisons (0 when there were none). */
  readonly error: number;
  /** Which comparison gave it: "direction #k" or "element [i,j]". */
  readonly where: string;
  /** The symbolic and the finite-difference derivative there. */
  readonly symbolic: number;
  readonly numeric: number;
  readonly ok: boolean;
}

/** What `checkGrads` returns: plain data, printable with `formatGradReport`. */
export interface GradReport {
  readonly graph: string;
  readonly order: 1 | 2;
  /** The (order-2: probe) loss at the checked point. */
  readonly loss: number;
  readonly step: number;
  readonly tolerance: number;
  readonly ok: boolean;
  readonly params: readonly TensorGradCheck[];
}

/**
 * A graph whose loss is Σθ ⟨∇θ L, cθ⟩ for seeded random constants cθ. Its
 * gradient is the Hessian applied to c, and finite differences of its loss
 * are finite differences of the first gradient: checking it checks grad of grad.
 */
export function gradProbe(g: Graph, options: { wrt?: readonly string[]; seed?: number } = {}): Graph {
  const first = grad(g, options.wrt ? { wrt: options.wrt } : {});
  const terms: Tensor[] = [];
  for (const [name, d] of Object.entries(first.grads)) {
    const next = rng((hashString(`probe:${name}`) ^ (options.seed ?? 0)) >>> 0);
    const c = Array.from({ length: sizeOf(d.shape) }, () => 2 * next() - 1);
    const cNode = d.ctx.apply("const", [], { value: c, shape: [...d.shape], dtype: d.dtype });
    terms.push(d.mul(cNode).sum());
  }
  if (!terms.length) throw new GraphError("gradProbe", `graph "${g.name}" has nothing to differentiate`);
  const loss = terms.reduce((a, b) => (a.dtype === b.dtype ? a.add(b) : a.add(b.cast(a.dtype))));
  return g.with({ loss, outputs: {}, grads: {}, name: `${g.name}.probe` });
}

function toFloat64(v: ArrayLike<number> | NDArray): Float64Array {
  return Float64Array.from("data" in v && "shape" in v ? (v as NDArray).data : (v as ArrayLike<number>));
}

/** A seeded direction of unit Euclidean norm. */
function randomDirection(n: number, seed: number): Float64Array {
  const next = rng(seed);
  const d = Float64Array.from({ length: n }, () => 2 * next() - 1);
  let sq = 0;
  for (const v of d) sq += v * v;
  const norm = Math.sqrt(sq);
  return norm > 0 ? d.map((v) => v / norm) : d;
}

/**
 * Compares symbolic gradients with finite differences, in float64.
 *
 * For each checked tensor θ (default: every trainable param), the directional
 * derivative ⟨∇θ L, d⟩ from `grad` is compared with a finite difference of L
 * along `directions` seeded random unit vectors d, and along every basis
 * vector when θ has at most `maxElements` elements.
 *
 * Finite differences: central differences D(h) = (L(θ+hd) − L(θ−hd)) / 2h,
 * combined by one Richardson step R = (4·D(h/2) − D(h)) / 3, whose error is
 * O(h⁴); h = step · max(1, max|θ|), step 1e-3 by default. Inputs must stay
 * more than h away from kinks (relu at 0, ties of max).
 *
 * Relative error of a symbolic a against a numeric b:
 *   max(0, |a − b| − η) / max(|a|, |b|, relativeFloor · max|∇θ L|)
 * where η = 32·ε·max|L| / h is the rounding noise of the difference
 * quotient: zero gradients are not failed on noise, and components far
 * smaller than the tensor's largest are not failed on truncation error.
 * (runtime/finiteDiff.ts holds this arithmetic, shared with `gradc check`.)
 */
export function checkGrads(g: Graph, feeds: Feeds, options: CheckGradsOptions = {}): GradReport {
  const order = options.order ?? 1;
  const step = options.step ?? 1e-3;
  const tolerance = options.tolerance ?? 1e-6;
  const floor = options.relativeFloor ?? 1e-4;
  const nDirections = options.directions ?? 3;
  const maxElements = options.maxElements ?? 16;
  const seed = options.seed ?? 0;

  const target = order === 2 ? gradProbe(g, { ...(options.wrt ? { wrt: options.wrt } : {}), seed }) : g;
  const withGrads = grad(target, options.wrt ? { wrt: options.wrt } : {});
  const loss = withGrads.loss!;

  const values: Record<string, Float64Array> = {};
  for (const [k, v] of Object.entries({ ...initialParams(g), ...(options.params ?? {}), ...feeds })) values[k] = toFloat64(v);
  const lossAt = (vals: Record<string, Float64Array>): number => evaluate([loss], vals, { precision: "f64" }).get(loss)!.data[0]!;

  const all = evaluate([loss, ...Object.values(withGrads.grads)], values, { precision: "f64" });
  const loss0 = all.get(loss)!.data[0]!;

  const params: TensorGradCheck[] = [];
  for (const [name, node] of Object.entries(withGrads.grads)) {
    const gval = all.get(node)!.data;
    const theta = values[name]!;
    const shape = target.param(name)?.shape ?? target.input(name)!.shape;
    const h = step * Math.max(1, maxAbs(theta));
    const gmax = maxAbs(gval);

    // L moved by t along d (a basis vector when d is an index)
    const lossAlong = (d: Float64Array | number) => (t: number): number => {
      const moved = Float64Array.from(theta);
      if (typeof d === "number") moved[d] = moved[d]! + t;
      else for (let i = 0; i < moved.length; i++) moved[i] = moved[i]! + t * d[i]!;
      return lossAt({ ...values, [name]: moved });
    };

    let worst = { error: 0, where: "-", symbolic: 0, numeric: 0 };
    let checks = 0;
    const compare = (where: string, a: number, d: Float64Array | number) => {
      const { numeric, error } = checkDerivative(a, lossAlong(d), { h, loss0, scale: floor * gmax });
      checks++;
      // NaN counts as the worst error
      if (checks === 1 || !(error <= worst.error)) worst = { error, where, symbolic: a, numeric };
    };

    if (theta.length > 0) {
      for (let k = 0; k < nDirections; k++) {
        const d = randomDirection(theta.length, (hashString(`dir:${name}:${k}`) ^ seed) >>> 0);
        let a = 0;
        for (let i = 0; i < d.length; i++) a += gval[i]! * d[i]!;
        compare(`direction #${k}`, a, d);
      }
      if (theta.length <= maxElements) {
        for (let i = 0; i < theta.length; i++) compare(`element ${unravelIndex(i, shape)}`, gval[i]!, i);
      }
    }
    params.push({ name, shape: [...shape], checks, ...worst, ok: worst.error <= tolerance });
  }
  return { graph: g.name, order, loss: loss0, step, tolerance, ok: params.every((p) => p.ok), params };
}

/** A text table of a report: one row per tensor, worst error and where. */
export function formatGradReport(report: GradReport): string {
  const head = `gradient check of "${report.graph}"${report.order === 2 ? " (order 2)" : ""}: ${report.ok ? "ok" : "FAILED"}` +
    ` (loss ${num(report.loss)}, step ${report.step}, tolerance ${sci(report.tolerance)})`;
  const rows = [
    ["param", "shape", "checks", "rel. error", "at", "symbolic", "numeric", ""],
    ...report.params.map((p) => [p.name, shapeStr(p.shape), String(p.checks), sci(p.error), p.where, num(p.symbolic), num(p.numeric), p.ok ? "ok" : "FAIL"]),
  ];
  return [head, ...reportTable(rows)].join("\n");
}
