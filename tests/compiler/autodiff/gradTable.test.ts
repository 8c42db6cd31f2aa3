// One table of gradient tests: every differentiable primitive and composite,
// each with its input domain and several shapes, against finite differences.
import { describe, expect, it } from "vitest";
import { graph } from "../../../compiler/dsl/graph.js";
import type { GraphBuilder } from "../../../compiler/dsl/graph.js";
import * as nn from "../../../compiler/dsl/nn.js";
import type { Tensor } from "../../../compiler/ir/node.js";
import type { Graph } from "../../../compiler/ir/graph.js";
import type { DType, Shape } from "../../../compiler/ir/types.js";
import { broadcastShapes, sizeOf } from "../../../compiler/ir/types.js";
import { OPS } from "../../../compiler/ops/index.js";
import type { OpKind } from "../../../compiler/ops/index.js";
import type { Padding } from "../../../compiler/ir/kinds.js";
import { checkGrads, formatGradReport } from "../../../compiler/autodiff/checkGrads.js";
import { randomArray, seededRandom } from "../../helpers.js";

/** Composites: written in primitives by the DSL, checked as a whole. */
type Composite =
  | "gelu" | "mean" | "softmax" | "logSoftmax" | "logsumexp" | "mse"
  | "softmaxCrossEntropy" | "sigmoidCrossEntropy" | "hinge" | "layerNorm" | "dropout";

/**
 * Where an operand's values are drawn: "real" in [-2, 2), "positive" in
 * [0.3, 2), "nonzero" with |x| in [0.3, 2) (away from the kinks of abs, relu);
 * a lattice spaces values 0.5 apart around `offset` (±0.05), so ties and kinks
 * of max/min are farther than any finite-difference step.
 */
type Domain = "real" | "positive" | "nonzero" | { readonly lattice: number };

/** Window params of a conv or pool case; `image` is the input shape a backward primitive produces. */
interface Window {
  readonly padding: Padding;
  readonly strides: number;
  readonly size?: number;
  readonly image?: readonly number[];
}

/** One test case of a row: operand shapes (dtypes default f32; domain defaults to the row's). */
interface Case {
  readonly shapes: readonly Shape[];
  readonly dtypes?: readonly DType[];
  readonly domain?: Domain | readonly Domain[];
  readonly window?: Window;
}

/** One op: its cases, its operands' domains, and how to apply it to the operands. */
interface GradRow {
  readonly op: OpKind | Composite;
  readonly cases: readonly Case[];
  /** One domain for all operands, or one per operand (default "real"). */
  readonly domain?: Domain | readonly Domain[];
  readonly build: (xs: readonly Tensor[], g: GraphBuilder, cs: Case) => Tensor;
  /** Also check grad of grad (on the first case). */
  readonly second?: boolean;
}

const c = (...shapes: Shape[]): Case => ({ shapes });
/** A case with window params. */
const cw = (window: Window, ...shapes: Shape[]): Case => ({ shapes, window });
const pair = (v: number): [number, number] => [v, v];
/** The params of a window op's backward primitive. */
const windowParams = (w: Window) => ({ strides: pair(w.strides), padding: w.padding });
const unaryCases = [c([]), c([2, 3])];
const pairCases = [c([2, 3], [2, 3]), c([3, 1], [1, 4]), c([], [2, 3]), c([2, 3], [3])];

/** A fixed bool pattern of a shape (for `where`'s condition). */
function pattern(g: GraphBuilder, shape: Shape): Tensor {
  return g.const(Array.from({ length: sizeOf(shape) }, (_, i) => (i * 7) % 3 === 0 ? 1 : 0), [...shape], "bool");
}

const GRAD_TABLE: readonly GradRow[] = [
  // unary elementwise
  { op: "neg", cases: unaryCases, build: ([x]) => x!.neg() },
  { op: "exp", cases: unaryCases, build: ([x]) => x!.exp(), second: true },
  { op: "log", cases: unaryCases, domain: "positive", build: ([x]) => x!.log(), second: true },
  { op: "sqrt", cases: unaryCases, domain: "positive", build: ([x]) => x!.sqrt() },
  { op: "rsqrt", cases: unaryCases, domain: "positive", build: ([x]) => x!.rsqrt() },
  { op: "abs", cases: unaryCases, domain: "nonzero", build: ([x]) => x!.abs() },
  { op: "sign", cases: unaryCases, domain: "nonzero", build: ([x]) => x!.sign() },
  { op: "sin", cases: unaryCases, build: ([x]) => x!.sin() },
  { op: "cos", cases: unaryCases, build: ([x]) => x!.cos() },
  { op: "tanh", cases: unaryCases, build: ([x]) => x!.tanh(), second: true },
  { op: "sigmoid", cases: unaryCases, build: ([x]) => x!.sigmoid(), second: true },
  { op: "relu", cases: unaryCases, domain: "nonzero", build: ([x]) => x!.relu() },
  // an identity that marks a saved value: the gradient passes through (checkpoint(x)² to see it move)
  { op: "checkpoint", cases: unaryCases, build: ([x], g) => g.checkpoint(x!.tanh()).square(), second: true },
  { op: "softplus", cases: unaryCases, build: ([x]) => x!.softplus() },
  // checked in the training step: the gradient is the first branch's
  { op: "ifTraining", cases: unaryCases, build: ([x]) => x!.ctx.apply("ifTraining", [x!.sin(), x!.cos()], {}), second: true },
  // exponent 3 on reals; 1/2 and -3/2 need positive bases
  {
    op: "pow",
    cases: [c([2, 3]), { shapes: [[3]], domain: "positive" }],
    build: ([x]) => (x!.rank === 2 ? x!.pow(3) : x!.pow(0.5).add(x!.pow(-1.5))),
  },
  { op: "leakyRelu", cases: unaryCases, domain: "nonzero", build: ([x]) => x!.leakyRelu(0.1) },
  {
    op: "cast",
    cases: [{ shapes: [[2, 3]], dtypes: ["f32"] }, { shapes: [[2, 3]], dtypes: ["f64"] }],
    build: ([x]) => (x!.dtype === "f32" ? x!.cast("f64") : x!.cast("f32")).sin(),
  },
  // binary elementwise, with broadcasting
  { op: "add", cases: pairCases, build: ([a, b]) => a!.add(b!) },
  { op: "sub", cases: pairCases, build: ([a, b]) => a!.sub(b!) },
  { op: "mul", cases: pairCases, build: ([a, b]) => a!.mul(b!), second: true },
  { op: "div", cases: pairCases, domain: ["real", "positive"], build: ([a, b]) => a!.div(b!), second: true },
  { op: "maximum", cases: pairCases, domain: [{ lattice: 0 }, { lattice: 0.25 }], build: ([a, b]) => a!.maximum(b!) },
  { op: "minimum", cases: pairCases, domain: [{ lattice: 0 }, { lattice: 0.25 }], build: ([a, b]) => a!.minimum(b!) },
  {
    op: "where",
    cases: [c([2, 3], [2, 3]), c([2, 1], [3]), c([], [2, 3])],
    build: ([a, b], g) => pattern(g, broadcastShapes(a!.shape, b!.shape)).where(a!, b!),
  },
  // reductions
  { op: "sum", cases: [c([4]), c([3, 4])], build: ([x]) => x!.sum(1 % x!.rank) },
  { op: "max", cases: [c([5]), c([3, 4]), c([2, 3, 4])], domain: { lattice: 0 }, build: ([x]) => x!.max(x!.rank === 3 ? [0, 2] : -1, x!.rank === 3) },
  { op: "min", cases: [c([5]), c([3, 4])], domain: { lattice: 0 }, build: ([x]) => x!.min(0, true) },
  // movement
  { op: "reshape", cases: [c([2, 3]), c([2, 3, 2])], build: ([x]) => x!.reshape([3, -1]).sin() },
  { op: "transpose", cases: [c([2, 3]), c([2, 3, 4])], build: ([x]) => x!.transpose(x!.rank === 3 ? [2, 0, 1] : undefined).sin() },
  { op: "broadcastTo", cases: [c([3, 1]), c([]), c([4])], build: ([x]) => x!.broadcastTo([2, 3, 4]).sin() },
  // indexing
  { op: "slice", cases: [c([4, 5]), c([3, 2, 4])], build: ([x]) => x!.slice(x!.shape.map((d) => (d > 2 ? 1 : 0)), x!.shape.map((d) => (d > 2 ? d - 2 : -1))) },
  {
    op: "concat",
    cases: [c([2, 3], [2, 2]), c([1, 3], [2, 3], [3, 3])],
    // along the axis where the operands' sizes differ
    build: (xs) => {
      const axis = xs[0]!.shape.findIndex((d, ax) => xs.some((t) => t.shape[ax] !== d));
      return xs[0]!.ctx.apply("concat", xs, { axis }).sin();
    },
  },
  { op: "pad", cases: [c([2, 3]), c([4])], build: ([x]) => x!.pad(x!.shape.map((_, ax) => [ax, 2] as const), 0.5).sin() },
  {
    op: "gather",
    cases: [c([5, 3]), c([4])],
    // repeated rows must add their cotangents
    build: ([t], g) => t!.gather(g.const(t!.rank === 2 ? [0, 2, 2, 4] : [3, 1, 3, 3, 0, 1], t!.rank === 2 ? [4] : [2, 3], "i32")).sin(),
  },
  {
    op: "scatterAdd",
    cases: [c([4, 3]), c([2, 3])],
    build: ([v], g) => {
      const idx = g.const(v!.rank === 2 && v!.shape[0] === 4 ? [1, 0, 1, 4] : [2, 2], [v!.shape[0]!], "i32");
      return v!.ctx.apply("scatterAdd", [v!, idx], { rows: 5 }).sin();
    },
  },
  // contraction: 2-D, batched with a broadcast batch, broadcast on both sides
  {
    op: "matmul",
    cases: [c([3, 4], [4, 2]), c([2, 3, 4], [4, 5]), c([2, 1, 3, 4], [3, 4, 2])],
    build: ([a, b]) => a!.matmul(b!),
    second: true,
  },
  // convolution and pooling (NHWC), and their backward primitives
  {
    op: "conv2d",
    cases: [cw({ padding: "valid", strides: 1 }, [1, 5, 5, 2], [3, 3, 2, 3]), cw({ padding: "same", strides: 2 }, [2, 4, 5, 1], [2, 3, 1, 2])],
    build: ([x, f], _g, cs) => x!.conv2d(f!, cs.window!.strides, cs.window!.padding),
    second: true,
  },
  {
    op: "conv2dBackpropInput",
    cases: [
      cw({ padding: "valid", strides: 1, image: [1, 5, 5, 2] }, [1, 3, 3, 3], [3, 3, 2, 3]),
      cw({ padding: "same", strides: 2, image: [2, 4, 5, 1] }, [2, 2, 3, 2], [2, 3, 1, 2]),
    ],
    build: ([dy, f], _g, cs) => dy!.ctx.apply("conv2dBackpropInput", [dy!, f!], { inputShape: [...cs.window!.image!], ...windowParams(cs.window!) }),
  },
  {
    op: "conv2dBackpropFilter",
    cases: [
      cw({ padding: "valid", strides: 1, image: [3, 3, 2, 3] }, [1, 5, 5, 2], [1, 3, 3, 3]),
      cw({ padding: "same", strides: 2, image: [2, 3, 1, 2] }, [2, 4, 5, 1], [2, 2, 3, 2]),
    ],
    build: ([x, dy], _g, cs) => x!.ctx.apply("conv2dBackpropFilter", [x!, dy!], { filterShape: [...cs.window!.image!], ...windowParams(cs.window!) }),
  },
  {
    op: "maxPool2d",
    cases: [cw({ padding: "valid", strides: 2, size: 2 }, [1, 4, 4, 2]), cw({ padding: "same", strides: 2, size: 3 }, [2, 5, 5, 1])],
    domain: { lattice: 0 },
    build: ([x], _g, cs) => x!.maxPool2d(cs.window!.size!, cs.window!.strides, cs.window!.padding),
  },
  {
    op: "maxPool2dGrad",
    cases: [cw({ padding: "valid", strides: 2, size: 2 }, [1, 4, 4, 2], [1, 2, 2, 2]), cw({ padding: "same", strides: 2, size: 3 }, [2, 5, 5, 1], [2, 3, 3, 1])],
    // x only picks where dy goes: piecewise constant in x, linear in dy
    domain: [{ lattice: 0 }, "real"],
    build: ([x, dy], _g, cs) => x!.ctx.apply("maxPool2dGrad", [x!, dy!], { size: pair(cs.window!.size!), ...windowParams(cs.window!) }),
  },
  {
    op: "avgPool2d",
    cases: [cw({ padding: "valid", strides: 2, size: 2 }, [1, 4, 4, 2]), cw({ padding: "same", strides: 2, size: 3 }, [2, 5, 5, 1])],
    build: ([x], _g, cs) => x!.avgPool2d(cs.window!.size!, cs.window!.strides, cs.window!.padding),
  },
  {
    op: "avgPool2dGrad",
    cases: [
      cw({ padding: "valid", strides: 2, size: 2, image: [1, 4, 4, 2] }, [1, 2, 2, 2]),
      cw({ padding: "same", strides: 2, size: 3, image: [2, 5, 5, 1] }, [2, 3, 3, 1]),
    ],
    build: ([dy], _g, cs) => dy!.ctx.apply("avgPool2dGrad", [dy!], { inputShape: [...cs.window!.image!], size: pair(cs.window!.size!), ...windowParams(cs.window!) }),
  },
  // composites
  { op: "gelu", cases: unaryCases, build: ([x]) => x!.gelu() },
  { op: "mean", cases: [c([2, 3]), c([2, 3, 4])], build: ([x]) => x!.mean(-1).add(x!.mean()) },
  { op: "softmax", cases: [c([5]), c([3, 4])], build: ([x]) => nn.softmax(x!) },
  { op: "logSoftmax", cases: [c([5]), c([3, 4])], build: ([x]) => nn.logSoftmax(x!, 0) },
  { op: "logsumexp", cases: [c([5]), c([3, 4])], build: ([x]) => nn.logsumexp(x!) },
  { op: "mse", cases: [c([4], [4]), c([3, 2], [3, 2])], build: ([p, t]) => nn.mse(p!, t!) },
  {
    op: "softmaxCrossEntropy",
    cases: [c([4, 3]), c([2, 2, 5])],
    build: ([x], g) => {
      const batch = x!.shape.slice(0, -1);
      const labels = Array.from({ length: sizeOf(batch) }, (_, i) => (i * 2) % x!.shape.at(-1)!);
      return nn.softmaxCrossEntropy(x!, g.const(labels, batch, "i32"));
    },
    second: true,
  },
  {
    op: "sigmoidCrossEntropy",
    cases: [c([4]), c([2, 3])],
    domain: "nonzero",
    build: ([x], g) => nn.sigmoidCrossEntropy(x!, g.const(randomArray(x!.size, 5, 0, 1), [...x!.shape])),
  },
  {
    op: "hinge",
    cases: [c([6]), c([2, 3])],
    domain: { lattice: 0.25 },
    build: ([x], g) => nn.hinge(x!, g.const(Array.from({ length: x!.size }, (_, i) => (i % 2 ? 1 : -1)), [...x!.shape])),
  },
  {
    op: "layerNorm",
    cases: [c([2, 5], [5], [5]), c([3, 4])],
    build: ([x, gamma, beta]) => nn.layerNorm(x!, gamma, beta),
    second: true,
  },
  // the mask of step 1 (checkGrads evaluates the training step): dropped elements get no gradient
  { op: "dropout", cases: [c([4, 5]), c([3, 2, 4])], build: ([x]) => nn.dropout(x!.tanh(), 0.4), second: true },
];

/** Ops with a VJP that finite differences cannot check, and where they are tested instead. */
const NOT_IN_TABLE: Partial<Record<OpKind, string>> = {
  stopGradient: "its gradient is zero by definition, though its value moves (frozen.test.ts)",
  customGrad: "its gradient is whatever the user says (customGrad.test.ts)",
};

function domainValues(domain: Domain, n: number, seed: number): number[] {
  const r = seededRandom(seed);
  if (domain === "real") return Array.from({ length: n }, () => 4 * r() - 2);
  if (domain === "positive") return Array.from({ length: n }, () => 0.3 + 1.7 * r());
  if (domain === "nonzero") return Array.from({ length: n }, () => (r() < 0.5 ? -1 : 1) * (0.3 + 1.7 * r()));
  // a shuffled lattice: distinct values 0.5 apart, jittered by less than 0.05
  const slots = Array.from({ length: n }, (_, i) => i - Math.floor(n / 2));
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [slots[i], slots[j]] = [slots[j]!, slots[i]!];
  }
  return slots.map((k) => 0.5 * k + domain.lattice + 0.1 * r() - 0.05);
}

/** The graph of one case: operands as params `a`, `b`, ...; loss = Σ op(...) · w for random w. */
function caseGraph(row: GradRow, cs: Case, index: number): Graph {
  const seed = index * 101 + row.op.length;
  return graph(`${row.op}#${index}`, (g) => {
    const xs = cs.shapes.map((shape, i) => {
      const d = cs.domain ?? row.domain ?? "real";
      const domain = Array.isArray(d) ? (d as readonly Domain[])[i]! : (d as Domain);
      const values = domainValues(domain, sizeOf(shape), seed + i);
      return g.param(String.fromCharCode(97 + i), shape, { init: values, dtype: cs.dtypes?.[i] ?? "f32" });
    });
    const out = row.build(xs, g, cs);
    const w = g.const(randomArray(out.size, seed + 50, -1.5, 1.5), [...out.shape], out.dtype);
    return { loss: out.mul(w).sum() };
  });
}

const caseName = (cs: Case): string => cs.shapes.map((s, i) => `${cs.dtypes?.[i] ?? ""}[${s.join(",")}]`).join(" × ");

describe("gradient table: symbolic gradients against central finite differences (f64)", () => {
  for (const row of GRAD_TABLE) {
    row.cases.forEach((cs, k) => {
      it(`${row.op} ${caseName(cs)}`, () => {
        const g = caseGraph(row, cs, k);
        const report = checkGrads(g, {}, { maxElements: 64 });
        expect(report.params.map((p) => p.name)).toEqual(g.params.map((p) => p.name));
        // every element and direction was compared
        for (const p of report.params) expect(p.checks).toBe(3 + sizeOf(p.shape));
        expect(report.ok, formatGradReport(report)).toBe(true);
      });
    });
  }
});

describe("gradient table, second order: grad of grad against finite differences of the gradient", () => {
  for (const row of GRAD_TABLE.filter((r) => r.second)) {
    it(`${row.op} ${caseName(row.cases[0]!)}`, () => {
      const report = checkGrads(caseGraph(row, row.cases[0]!, 0), {}, { order: 2, maxElements: 64 });
      expect(report.order).toBe(2);
      expect(report.ok, formatGradReport(report)).toBe(true);
    });
  }
});

describe("the gradient table is complete", () => {
  it("lists every op that has a VJP (or says why not)", () => {
    const listed = new Set(GRAD_TABLE.map((r) => r.op));
    const withVjp = (Object.keys(OPS) as OpKind[]).filter((k) => OPS[k].vjp !== undefined);
    const missing = withVjp.filter((k) => !listed.has(k) && !(k in NOT_IN_TABLE));
    expect(missing, "ops with a VJP but no row in GRAD_TABLE").toEqual([]);
    for (const k of Object.keys(NOT_IN_TABLE) as OpKind[]) expect(OPS[k].vjp, `${k} is exempt but has no VJP`).toBeDefined();
  });

  it("each primitive row's graph really contains its op", () => {
    for (const row of GRAD_TABLE) {
      if (!(row.op in OPS)) continue;
      row.cases.forEach((cs, k) => {
        const ops = new Set(caseGraph(row, cs, k).nodes.map((n) => n.op));
        expect(ops.has(row.op as OpKind), `${row.op} ${caseName(cs)}`).toBe(true);
      });
    }
  });

  it("lists each primitive in one place and covers the composites", () => {
    const rows = GRAD_TABLE.map((r) => r.op).filter((op) => op in OPS);
    const repeated = rows.filter((op, i) => rows.indexOf(op) !== i);
    expect(repeated).toEqual([]);
    const composites: Composite[] = ["gelu", "mean", "softmax", "logSoftmax", "logsumexp", "mse", "softmaxCrossEntropy", "sigmoidCrossEntropy", "hinge", "layerNorm"];
    for (const name of composites) expect(GRAD_TABLE.some((r) => r.op === name), name).toBe(true);
  });
});
