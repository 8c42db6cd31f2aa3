// JSON round trips: a graph written by graphToJson and read by graphFromJson
// prints the same (source lines and gradient origins included), evaluates the
// same, verifies, and keeps interning; bad data and customGrad are refused.
import { describe, expect, it } from "vitest";
import xor from "../../../examples/xor/model.js";
import neuron from "../../../examples/neuron/model.js";
import chainRule from "../../../examples/chainRule/model.js";
import mnist from "../../../examples/mnist/model.js";
import { OPS } from "../../../compiler/ops/index.js";
import { graphFromJson, graphToJson } from "../../../compiler/ir/json.js";
import type { GraphJson } from "../../../compiler/ir/json.js";
import type { Graph } from "../../../compiler/ir/graph.js";
import { printGraph } from "../../../compiler/ir/printer.js";
import { verifyGraph } from "../../../compiler/ir/verify.js";
import { graph } from "../../../compiler/dsl/graph.js";
import * as nn from "../../../compiler/dsl/nn.js";
import { grad, hvp } from "../../../compiler/autodiff/grad.js";
import { interpret } from "../../../compiler/interp/interpret.js";
import { errorMessage, expectAllClose, randomArray } from "../../helpers.js";

/** Through JSON text and back. */
const roundTrip = (g: Graph): Graph => graphFromJson(JSON.stringify(graphToJson(g)), OPS);

const EXAMPLES = [xor, neuron, chainRule, mnist];

describe("round trip", () => {
  for (const g of EXAMPLES) {
    it(`${g.name}: forward and gradient graphs print the same, with and without comments`, () => {
      for (const h of [g, grad(g)]) {
        const back = roundTrip(h);
        expect(printGraph(back)).toBe(printGraph(h));
        expect(printGraph(back, { comments: false })).toBe(printGraph(h, { comments: false }));
        expect(() => verifyGraph(back)).not.toThrow();
      }
    });
  }

  it("a Hessian-vector graph (second-order nodes) prints the same", () => {
    const h = hvp(neuron);
    expect(printGraph(roundTrip(h))).toBe(printGraph(h));
  });

  it("differentiating the loaded graph gives the same gradient graph", () => {
    const back = roundTrip(xor);
    expect(printGraph(grad(back))).toBe(printGraph(grad(xor)));
  });

  it("is plain JSON data: stringify and parse give it back unchanged", () => {
    const j = graphToJson(grad(xor));
    expect(JSON.parse(JSON.stringify(j))).toEqual(j);
    expect(j.format).toBe("gradc.graph");
    expect(j.version).toBe(1);
    expect(j.name).toBe("xor");
    expect(j.inputs.map((i) => i.name)).toEqual(["x", "y"]);
    expect(Object.keys(j.grads)).toEqual(["W1", "b1", "W2", "b2"]);
    // nodes refer only to earlier nodes
    j.nodes.forEach((n, k) => n.inputs.forEach((i) => expect(i).toBeLessThan(k)));
  });

  it("keeps params' inits and trainable flags", () => {
    const g = graph("frozen", (b) => {
      const x = b.input("x", [2, 3]);
      const h = nn.dense(b, "enc", x, 4, { activation: "tanh", trainable: false });
      const y = nn.dense(b, "head", h, 1, { kernelInit: { name: "normal", stddev: 0.3 } });
      return { loss: y.square().mean() };
    });
    const back = roundTrip(g);
    expect(back.params.map((p) => [p.name, p.trainable, p.init])).toEqual(g.params.map((p) => [p.name, p.trainable, p.init]));
    expect(printGraph(back)).toBe(printGraph(g));
    expect(printGraph(back)).toMatch(/frozen\(enc\.W, enc\.b\)/);
  });

  it("evaluates to the same loss, outputs and gradients", () => {
    const feeds = { x: randomArray(8, 41), y: randomArray(4, 42) };
    const a = interpret(grad(xor), feeds);
    const b = interpret(roundTrip(grad(xor)), feeds);
    expect(b.loss).toBe(a.loss);
    expectAllClose(b.outputs.pred!, a.outputs.pred!, 0);
    for (const k of Object.keys(a.grads)) expectAllClose(b.grads[k]!, a.grads[k]!, 0);
  });

  it("keeps constants that JSON numbers cannot hold: NaN, ±Infinity, −0", () => {
    const g = graph("odd", (b) => {
      const x = b.input("x", [4], "f64");
      const c = b.const([NaN, Infinity, -Infinity, -0], [4], "f64");
      return { outputs: { y: x.maximum(c), z: x.add(-Infinity) } };
    });
    const back = roundTrip(g);
    expect(printGraph(back)).toBe(printGraph(g));
    const y = interpret(back, { x: [1, 2, 3, -1] }).outputs.y!;
    expectAllClose(y, [NaN, Infinity, 3, 0]);
    expect(Object.is(interpret(back, { x: [-1, -1, -1, -1] }).outputs.y!.data[3], -0)).toBe(true);
  });

  it("keeps a node with no source line without one, and origins whose forward node is no longer a root's input", () => {
    const base = graph("nosrc", (b) => ({ loss: b.param("w", [2]).exp().sum() }));
    const w = base.param("w")!.node;
    const bare = base.ctx.apply("neg", [w], {}, null);
    const g = base.with({ outputs: { bare } });
    expect(bare.src).toBeUndefined();
    const back = roundTrip(g);
    const again = back.outputs.bare!;
    expect(again.src).toBeUndefined();
    expect(printGraph(back)).toBe(printGraph(g));

    // only the gradient is kept: the exp node it came from is not reachable
    const onlyGrad = grad(base).with({ loss: undefined });
    const back2 = roundTrip(onlyGrad);
    expect(printGraph(back2)).toBe(printGraph(onlyGrad));
    expect(printGraph(back2)).toMatch(/grad of exp at /);
  });

  it("interning holds in the loaded graph", () => {
    const back = roundTrip(xor);
    const x = back.input("x")!.node;
    const W1 = back.param("W1")!.node;
    const first = back.nodes.find((t) => t.op === "matmul")!;
    expect(x.matmul(W1)).toBe(first);
    expect(back.ctx.nodes.length).toBe(graphToJson(xor).nodes.length);
  });
});

describe("refusals", () => {
  it("customGrad nodes cannot be written", () => {
    const g = graph("custom", (b) => {
      const x = b.param("x", [3]);
      const clip = b.customGrad("straightThrough", (t) => t.sign(), (ct) => [ct]);
      return { loss: clip(x).sum() };
    });
    const msg = errorMessage(() => graphToJson(g));
    expect(msg).toMatch(/customGrad/);
    expect(msg).toMatch(/straightThrough/);
    expect(msg).toMatch(/function/);
  });

  const good = (): GraphJson => graphToJson(xor);
  const edit = (f: (j: { -readonly [K in keyof GraphJson]: unknown }) => void): GraphJson => {
    const j = JSON.parse(JSON.stringify(good()));
    f(j);
    return j;
  };

  it("another format or version", () => {
    expect(errorMessage(() => graphFromJson(edit((j) => (j.format = "onnx")), OPS))).toMatch(/not a gradc graph/);
    expect(errorMessage(() => graphFromJson(edit((j) => (j.version = 99)), OPS))).toMatch(/version 99/);
  });

  it("a node that refers to a later node, or an unknown op", () => {
    const later = edit((j) => {
      (j.nodes as { inputs: number[] }[])[2]!.inputs = [5, 0];
    });
    expect(errorMessage(() => graphFromJson(later, OPS))).toMatch(/node 2 refers to node 5/);
    const unknown = edit((j) => {
      (j.nodes as { op: string }[])[2]!.op = "frobnicate";
    });
    expect(errorMessage(() => graphFromJson(unknown, OPS))).toMatch(/unknown op "frobnicate"/);
  });

  it("a recorded shape its op's rule disagrees with", () => {
    const j = edit((d) => {
      const nodes = d.nodes as { op: string; shape: number[] }[];
      nodes.find((n) => n.op === "relu")!.shape = [8, 4];
    });
    expect(errorMessage(() => graphFromJson(j, OPS))).toMatch(/relu\) is recorded as f32\[8,4\] but its shape rule gives f32\[4,8\]/);
  });

  it("a param that points at an input node", () => {
    const j = edit((d) => {
      (d.params as { node: number }[])[0]!.node = (d.inputs as { node: number }[])[0]!.node;
    });
    expect(errorMessage(() => graphFromJson(j, OPS))).toMatch(/param "W1" refers to node \d+, which is not that param/);
  });
});
