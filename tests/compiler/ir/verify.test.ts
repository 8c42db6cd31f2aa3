// The verifier accepts every graph the DSL and autodiff build, and rejects
// graphs broken by hand (forged nodes, wrong specs, bad loss or grads),
// naming the node as the printer prints it.
import { describe, expect, it } from "vitest";
import xor from "../../../examples/xor/model.js";
import neuron from "../../../examples/neuron/model.js";
import chainRule from "../../../examples/chainRule/model.js";
import mnist from "../../../examples/mnist/model.js";
import { Tensor } from "../../../compiler/ir/node.js";
import type { Context } from "../../../compiler/ir/node.js";
import { Graph } from "../../../compiler/ir/graph.js";
import { GraphError, formatLoc } from "../../../compiler/ir/types.js";
import type { DType } from "../../../compiler/ir/types.js";
import { verifyGraph } from "../../../compiler/ir/verify.js";
import { printGraph } from "../../../compiler/ir/printer.js";
import { graph } from "../../../compiler/dsl/graph.js";
import { grad, hvp, vjp } from "../../../compiler/autodiff/grad.js";
import type { OpKind } from "../../../compiler/ir/kinds.js";
import { errorMessage } from "../../helpers.js";

const here = { file: "tests/compiler/ir/verify.test.ts", line: 1, column: 1 };

/** A node made without the Context's checks, optionally entered in its table. */
function forge(ctx: Context, op: OpKind, inputs: Tensor[], shape: number[], dtype: DType, opts: { id?: number; intern?: boolean } = {}): Tensor {
  const id = opts.id ?? ctx.nodes.length;
  const t = new Tensor(ctx, id, op, inputs, {} as never, shape, dtype, here, undefined);
  if (opts.intern ?? true) ctx.nodes[id] = t;
  return t;
}

/** A small graph to break: x [4,3], W [3,2], y = x·W, loss = sum(y). */
function small() {
  return graph("small", (g) => {
    const x = g.input("x", [4, 3]);
    const W = g.param("W", [3, 2]);
    const y = x.matmul(W);
    return { loss: y.sum(), outputs: { y } };
  });
}

/** The printed binding line of the graph's one node with `op`. */
function bindingLine(g: Graph, op: string): string {
  const line = printGraph(g, { comments: false })
    .split("\n")
    .find((l) => l.includes(`= ${op} `));
  if (!line) throw new Error(`no ${op} line`);
  return line.trim();
}

describe("verifyGraph accepts built graphs", () => {
  for (const g of [xor, neuron, chainRule, mnist]) {
    it(`${g.name}: forward, gradient and Hessian-vector graphs`, () => {
      expect(verifyGraph(g)).toBe(g);
      expect(() => verifyGraph(grad(g))).not.toThrow();
      expect(() => verifyGraph(hvp(g))).not.toThrow();
    });
  }

  it("a vjp graph with cotangent inputs and input gradients", () => {
    expect(() => verifyGraph(vjp(xor, ["pred"], { wrt: ["x", "W1"] }))).not.toThrow();
  });

  it("a graph with frozen params, f64 and integer inputs", () => {
    const g = graph("mixed", (b) => {
      const x = b.input("x", [2, 3], "f64");
      const n = b.input("n", [2], "i32");
      const W = b.param("W", [3, 3], { dtype: "f64", trainable: false });
      const y = x.matmul(W).sum(-1).add(n.cast("f64"));
      return { loss: y.sum(), outputs: { y, best: x.argmax() } };
    });
    expect(() => verifyGraph(g)).not.toThrow();
  });
});

describe("verifyGraph rejects broken graphs", () => {
  it("a node whose shape disagrees with its op's rule, named as printed", () => {
    const g = small();
    const y = g.outputs.y!;
    const bad = forge(g.ctx, "add", [y, y], [9], "f32");
    const broken = g.with({ outputs: { bad } });
    const msg = errorMessage(() => verifyGraph(broken));
    expect(msg).toMatch(/^add: /);
    expect(msg).toContain(bindingLine(broken, "add"));
    expect(msg).toMatch(/shape \[9\].*gives \[4,2\]/);
    expect(msg).toMatch(/verify\.test\.ts:1/);
  });

  it("a node whose dtype disagrees", () => {
    const g = small();
    const bad = forge(g.ctx, "exp", [g.outputs.y!], [4, 2], "f64");
    expect(errorMessage(() => verifyGraph(g.with({ outputs: { bad } })))).toMatch(/dtype f64 but exp gives f32/);
  });

  it("a node the op's rule rejects outright, with its inputs' shapes", () => {
    const g = small();
    const x = g.input("x")!.node;
    const W = g.param("W")!.node;
    const bad = forge(g.ctx, "add", [x, W], [4, 3], "f32");
    const msg = errorMessage(() => verifyGraph(g.with({ outputs: { bad } })));
    expect(msg).toMatch(/shape rule rejects/);
    expect(msg).toMatch(/\[4,3\]/);
    expect(msg).toMatch(/\[3,2\]/);
  });

  it("a node missing from its context's table (not interned)", () => {
    const g = small();
    const bad = forge(g.ctx, "neg", [g.outputs.y!], [4, 2], "f32", { intern: false });
    expect(errorMessage(() => verifyGraph(g.with({ outputs: { bad } })))).toMatch(/not interned/);
  });

  it("an input that does not precede its user", () => {
    const g = graph("order", (b) => {
      const x = b.input("x", [2]);
      b.const(1, [2]); // id 1: replaced below
      return { outputs: { e: x.exp() } }; // id 2
    });
    const e = g.outputs.e!;
    const bad = forge(g.ctx, "neg", [e], [2], "f32", { id: 1 });
    const msg = errorMessage(() => verifyGraph(g.with({ outputs: { bad } })));
    expect(msg).toMatch(/^neg: /);
    expect(msg).toMatch(/input 0 \(%2\) does not precede the node \(%1\)/);
  });

  it("a node of another graph", () => {
    const g = small();
    const other = small();
    const msg = errorMessage(() => verifyGraph(g.with({ outputs: { y: other.outputs.y! } })));
    expect(msg).toMatch(/belongs to another graph \("small"\)/);
  });

  it("an input spec that disagrees with its node, or names a param node", () => {
    const g = small();
    const spec = g.inputs[0]!;
    const wrongShape = new Graph(g.name, g.ctx, [{ ...spec, shape: [4, 4] }], g.params, g.loss, g.outputs);
    expect(errorMessage(() => verifyGraph(wrongShape))).toMatch(/listed as input "x" of shape \[4,4\]/);
    const wrongKind = new Graph(g.name, g.ctx, [{ ...spec, node: g.params[0]!.node }], g.params, g.loss, g.outputs);
    expect(errorMessage(() => verifyGraph(wrongKind))).toMatch(/listed as input "x" but is a param node/);
  });

  it("a source node that is not listed, and duplicate names", () => {
    const g = small();
    const unlisted = new Graph(g.name, g.ctx, [], g.params, g.loss, g.outputs);
    const msg = errorMessage(() => verifyGraph(unlisted));
    expect(msg).toMatch(/^input: node x:f32\[4,3\] = input/);
    expect(msg).toMatch(/not listed/);
    const dup = new Graph(g.name, g.ctx, [g.inputs[0]!, g.inputs[0]!], g.params, g.loss, g.outputs);
    expect(errorMessage(() => verifyGraph(dup))).toMatch(/name "x" is used by two/);
  });

  it("a loss that is not a float scalar", () => {
    const g = small();
    const y = g.outputs.y!;
    const nonScalar = g.with({ loss: y });
    const msg = errorMessage(() => verifyGraph(nonScalar));
    expect(msg).toContain(bindingLine(nonScalar, "matmul"));
    expect(msg).toMatch(/loss but is not a scalar/);
    expect(msg).toContain(formatLoc(y.src));
    const intLoss = g.with({ loss: y.sum().cast("i32") });
    expect(errorMessage(() => verifyGraph(intLoss))).toMatch(/loss but is not a float/);
  });

  it("a gradient of the wrong shape or of no param", () => {
    const g = grad(small());
    const dW = g.grads.W!;
    const wrong = g.with({ grads: { W: dW.transpose() } });
    const msg = errorMessage(() => verifyGraph(wrong));
    expect(msg).toMatch(/^transpose: /);
    expect(msg).toMatch(/gradient of "W" \[3,2\] but has shape \[2,3\]/);
    expect(errorMessage(() => verifyGraph(g.with({ grads: { V: dW } })))).toMatch(/"V", which is no param or input/);
  });

  it("throws GraphError", () => {
    const g = small();
    expect(() => verifyGraph(g.with({ loss: g.outputs.y! }))).toThrow(GraphError);
  });
});
