// Checks shared by the indexing and conv op tests: an op's lowered kernel
// against its reference eval, and gradients / Hessian-vector products against
// central finite differences in float64.
import { expect } from "vitest";
import { graph } from "../../../compiler/dsl/graph.js";
import type { GraphBuilder } from "../../../compiler/dsl/graph.js";
import type { Tensor } from "../../../compiler/ir/node.js";
import { evaluate, interpret } from "../../../compiler/interp/interpret.js";
import type { Feeds } from "../../../compiler/interp/interpret.js";
import { OPS } from "../../../compiler/ops/index.js";
import type { NDArray, NodeOf, OpDef, OpKind } from "../../../compiler/ops/index.js";
import { kernelFunction } from "../../../compiler/backends/ts/jsExpr.js";
import { verifyKernel } from "../../../compiler/kernel/verify.js";
import { grad, hvp, tangentName } from "../../../compiler/autodiff/grad.js";
import { expectAllClose, randomArray } from "../../helpers.js";

/**
 * Builds one node in a throwaway graph, runs its `lower` kernel on the
 * values of its inputs (an output buffer pre-filled with NaN, so a cell the
 * kernel forgets fails) and compares with the op's `eval`. Returns eval's result.
 */
export function expectLoweringMatches(build: (g: GraphBuilder) => Tensor, feeds: Feeds = {}, tol = 1e-12): NDArray {
  let node: Tensor | undefined;
  graph("lowering", (g) => {
    node = build(g);
    return {};
  });
  const n = node!;
  const values = evaluate(n.inputs, feeds, { precision: "f64" });
  const ins = n.inputs.map((t) => values.get(t)!);
  const def = OPS[n.op] as OpDef<OpKind>;
  expect(def.lower, `${n.op} has a lowering`).toBeDefined();
  const want = def.eval(n as NodeOf<OpKind>, ins);
  const out = new Float64Array(n.size).fill(NaN);
  const body = def.lower!(n as NodeOf<OpKind>);
  verifyKernel(n.op, body, new Map([["out", n.size], ...n.inputs.map((t, k) => [`in${k}`, t.size] as const)]));
  kernelFunction(body, ins.length)(out, ...ins.map((a) => Float64Array.from(a.data)));
  expectAllClose(out, want, { rtol: tol, atol: tol });
  return { shape: n.shape, dtype: n.dtype, data: want };
}

export interface FdOptions {
  /** Values of the graph's inputs (params get seeded random values). */
  readonly feeds?: Feeds;
  /** Explicit values for some params (others are random). */
  readonly params?: Readonly<Record<string, Float64Array>>;
  readonly seed?: number;
  readonly directions?: number;
  /** Finite-difference step. */
  readonly h?: number;
  /** Allows every derivative to be zero (otherwise a vacuous check fails). */
  readonly allowZero?: boolean;
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};
const norm = (a: ArrayLike<number>): number => Math.sqrt(dot(a, a));
const axpy = (x: Float64Array, a: number, d: Float64Array): Float64Array => x.map((v, i) => v + a * d[i]!);
/** |a − b| relative to the larger magnitude, with a floor so that two tiny values compare absolutely. */
const relErr = (a: number, b: number): number => Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), 1e-3);

function setup(build: (g: GraphBuilder) => Tensor, opts: FdOptions) {
  const g0 = graph("fd", (g) => ({ loss: build(g) }));
  const seed = opts.seed ?? 7;
  const params: Record<string, Float64Array> = {};
  g0.params.forEach((p, i) => (params[p.name] = opts.params?.[p.name] ?? randomArray(p.shape, seed + 17 * i)));
  return { g0, seed, params, feeds: opts.feeds ?? {}, h: opts.h ?? 1e-5 };
}

/**
 * dL/dθ from `grad` + the f64 interpreter against (L(θ + h·d) − L(θ − h·d)) / 2h
 * along random directions d, for every param of the graph whose loss `build`
 * returns. Relative error < 1e-6. Returns the symbolic gradients.
 */
export function expectGradsMatchFD(build: (g: GraphBuilder) => Tensor, opts: FdOptions = {}): Record<string, NDArray> {
  const { g0, seed, params, feeds, h } = setup(build, opts);
  const lossAt = (ps: Record<string, Float64Array>) => interpret(g0, feeds, ps, { precision: "f64" }).loss!;
  const grads = interpret(grad(g0), feeds, params, { precision: "f64" }).grads;
  let largest = 0;
  for (const p of g0.params) {
    for (let k = 0; k < (opts.directions ?? 3); k++) {
      const d = randomArray(p.shape, seed * 31 + 1000 + k);
      const analytic = dot(grads[p.name]!.data, d);
      const plus = lossAt({ ...params, [p.name]: axpy(params[p.name]!, h, d) });
      const minus = lossAt({ ...params, [p.name]: axpy(params[p.name]!, -h, d) });
      const numeric = (plus - minus) / (2 * h);
      largest = Math.max(largest, Math.abs(numeric));
      expect(relErr(analytic, numeric), `d loss / d ${p.name} along direction ${k}: ${analytic} vs ${numeric}`).toBeLessThan(1e-6);
    }
  }
  if (!opts.allowZero) expect(largest, "some derivative is nonzero").toBeGreaterThan(1e-6);
  return grads;
}

/**
 * H·v from `hvp` (grad of grad) against the central difference of the
 * gradient, (∇L(θ + h·v) − ∇L(θ − h·v)) / 2h, with one random v over all params.
 */
export function expectHvpMatchesFD(build: (g: GraphBuilder) => Tensor, opts: FdOptions = {}): void {
  const { g0, seed, params, feeds, h } = setup(build, opts);
  const v = Object.fromEntries(g0.params.map((p, i) => [p.name, randomArray(p.shape, seed * 13 + 500 + i)]));
  const vFeeds = Object.fromEntries(g0.params.map((p) => [tangentName(p.name), v[p.name]!]));
  const hv = interpret(hvp(g0), { ...feeds, ...vFeeds }, params, { precision: "f64" }).grads;
  const g1 = grad(g0);
  const gradsAt = (sign: number) => {
    const moved = Object.fromEntries(g0.params.map((p) => [p.name, axpy(params[p.name]!, sign * h, v[p.name]!)]));
    return interpret(g1, feeds, moved, { precision: "f64" }).grads;
  };
  const plus = gradsAt(1);
  const minus = gradsAt(-1);
  let largest = 0;
  for (const p of g0.params) {
    const numeric = plus[p.name]!.data.map((a, i) => (a - minus[p.name]!.data[i]!) / (2 * h));
    const analytic = hv[p.name]!.data;
    const diff = norm(analytic.map((a, i) => a - numeric[i]!));
    largest = Math.max(largest, norm(numeric));
    const rel = diff / Math.max(norm(analytic), norm(numeric), 1e-3);
    expect(rel, `H·v for ${p.name}: |Δ| = ${diff}`).toBeLessThan(1e-6);
  }
  if (!opts.allowZero) expect(largest, "H·v is nonzero").toBeGreaterThan(1e-6);
}
