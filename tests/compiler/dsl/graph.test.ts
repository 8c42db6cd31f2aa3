// The graph builder: inputs, params and constants become source nodes with
// the right specs; the result's loss and outputs become the graph's roots.
import { describe, expect, it } from "vitest";
import { graph } from "../../../compiler/dsl/graph.js";
import { Graph } from "../../../compiler/ir/graph.js";
import { verifyGraph } from "../../../compiler/ir/verify.js";
import { interpret } from "../../../compiler/interp/interpret.js";
import { evalOutputs } from "../../helpers.js";

describe("graph()", () => {
  const g = graph("spec", (b) => {
    const x = b.input("x", [3, 2]);
    const n = b.input("n", [3], "i32");
    const W = b.param("W", [2, 4], { init: "heUniform" });
    const s = b.param("s", [], { init: 2, trainable: false, dtype: "f64" });
    const h = x.matmul(W).relu();
    return { loss: h.mean().cast("f64").mul(s), outputs: { h, n2: n.mul(2) } };
  });

  it("records inputs and params with their specs, in order", () => {
    expect(g).toBeInstanceOf(Graph);
    expect(g.name).toBe("spec");
    expect(g.inputs.map((i) => [i.name, i.shape, i.dtype, i.node.op])).toEqual([
      ["x", [3, 2], "f32", "input"],
      ["n", [3], "i32", "input"],
    ]);
    expect(g.params.map((p) => [p.name, p.shape, p.dtype, p.trainable, p.init.name, p.node.op])).toEqual([
      ["W", [2, 4], "f32", true, "heUniform", "param"],
      ["s", [], "f64", false, "constant", "param"],
    ]);
    expect(g.input("n")?.dtype).toBe("i32");
    expect(g.param("W")?.shape).toEqual([2, 4]);
    expect(g.input("W")).toBeUndefined();
  });

  it("has the loss, the outputs and no grads, and verifies", () => {
    expect(g.loss?.shape).toEqual([]);
    expect(g.loss?.dtype).toBe("f64");
    expect(Object.keys(g.outputs)).toEqual(["h", "n2"]);
    expect(g.grads).toEqual({});
    expect(g.roots()).toEqual([g.loss, g.outputs.h, g.outputs.n2]);
    expect(() => verifyGraph(g)).not.toThrow();
  });

  it("lists the needed nodes in id order", () => {
    const ids = g.nodes.map((t) => t.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(g.nodes).size).toBe(g.nodes.length);
    expect(g.nodes.at(-1)).toBe(g.ctx.nodes.at(-1));
  });

  it("a graph needs no loss", () => {
    const fwd = graph("fwd", (b) => ({ outputs: { y: b.input("x", [2]).exp() } }));
    expect(fwd.loss).toBeUndefined();
    expect(fwd.roots().length).toBe(1);
  });

  it("with() swaps roots over the same nodes", () => {
    const only = g.with({ loss: undefined, outputs: { h: g.outputs.h! } });
    expect(only.loss).toBeUndefined();
    expect(only.ctx).toBe(g.ctx);
    expect(only.params).toBe(g.params);
    expect(only.nodes.every((t) => g.ctx.nodes[t.id] === t)).toBe(true);
    expect(g.with({ name: "renamed" }).name).toBe("renamed");
  });
});

describe("g.const", () => {
  it("takes scalars, flat and nested arrays, typed arrays and a reshape", () => {
    const out = evalOutputs((b) => ({
      s: b.const(3),
      v: b.const([1, 2, 3]),
      m: b.const([[1, 2], [3, 4], [5, 6]]),
      t: b.const([[[1], [2]], [[3], [4]]]),
      typed: b.const(new Float32Array([0.5, 1.5])),
      r: b.const([1, 2, 3, 4, 5, 6], [2, 3]),
      fill: b.const(7, [2, 2]),
    }));
    expect(out.s!.shape).toEqual([]);
    expect(out.v!.shape).toEqual([3]);
    expect(out.m!.shape).toEqual([3, 2]);
    expect(Array.from(out.m!.data)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(out.t!.shape).toEqual([2, 2, 1]);
    expect(Array.from(out.typed!.data)).toEqual([0.5, 1.5]);
    expect(out.r!.shape).toEqual([2, 3]);
    expect(Array.from(out.fill!.data)).toEqual([7, 7, 7, 7]);
  });

  it("takes a dtype", () => {
    const out = evalOutputs((b) => ({ i: b.const([1, 2], [2], "i32"), d: b.const(0.1, [], "f64") }), {}, "f32");
    expect(out.i!.dtype).toBe("i32");
    expect(out.d!.dtype).toBe("f64");
    expect(out.d!.data[0]).toBe(0.1);
  });
});

describe("customGrad", () => {
  it("is the identity forward and keeps the inputs it was given", () => {
    const g = graph("cg", (b) => {
      const x = b.param("x", [3], { init: [-1.5, 0.2, 2] });
      const ste = b.customGrad("ste", (t) => t.sign(), (ct) => [ct]);
      return { loss: ste(x).sum(), outputs: { y: ste(x) } };
    });
    const y = g.outputs.y!;
    expect(y.op).toBe("customGrad");
    expect(y.inputs[0]!.op).toBe("sign");
    expect(y.inputs[1]).toBe(g.param("x")!.node);
    expect(Array.from(interpret(g, {}).outputs.y!.data)).toEqual([-1, 1, 1]);
  });
});
