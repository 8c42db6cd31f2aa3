// Nodes: interning (same op + params + inputs = same node), ids in creation
// order, immutability, source lines, and the interpreter's f32 rounding.
import { describe, expect, it } from "vitest";
import { Context } from "../../../compiler/ir/node.js";
import { OPS } from "../../../compiler/ops/index.js";
import type { Tensor } from "../../../compiler/ir/node.js";
import { graph } from "../../../compiler/dsl/graph.js";
import { interpret, evaluate } from "../../../compiler/interp/interpret.js";
import { evalOutputs } from "../../helpers.js";

/** Runs `build` inside a throwaway graph and returns what it returned. */
function inGraph<T>(build: (x: Tensor, y: Tensor) => T): T {
  let out!: T;
  graph("interning", (g) => {
    out = build(g.input("x", [2, 3]), g.input("y", [3]));
    return {};
  });
  return out;
}

describe("interning", () => {
  it("the same op, params and inputs give the same node", () => {
    inGraph((x, y) => {
      expect(x.add(y)).toBe(x.add(y));
      expect(x.exp().log()).toBe(x.exp().log());
      expect(x.leakyRelu(0.1)).toBe(x.leakyRelu(0.1));
      expect(x.transpose([1, 0])).toBe(x.transpose());
      expect(x.reshape([3, 2])).toBe(x.reshape([-1, 2]));
      // the scalar constant is interned too, so the adds are one node
      expect(x.add(1)).toBe(x.add(1));
      expect(x.lift(1)).toBe(x.lift(1));
    });
  });

  it("equal reductions intern whatever way the axes are written", () => {
    inGraph((x) => {
      expect(x.sum(1)).toBe(x.sum([1]));
      expect(x.sum(-1)).toBe(x.sum(1));
      expect(x.max([1, 0])).toBe(x.max([0, 1]));
    });
  });

  it("param key order does not matter", () => {
    inGraph((x) => {
      const a = x.ctx.apply("sum", [x], { axes: [0], keepDims: true });
      const b = x.ctx.apply("sum", [x], { keepDims: true, axes: [0] });
      expect(a).toBe(b);
    });
  });

  it("different params, inputs, ops or dtypes give different nodes", () => {
    inGraph((x, y) => {
      expect(x.leakyRelu(0.1)).not.toBe(x.leakyRelu(0.2));
      expect(x.sum(0)).not.toBe(x.sum(1));
      expect(x.sum(0, true)).not.toBe(x.sum(0, false));
      expect(x.add(1)).not.toBe(x.add(2));
      expect(x.add(y)).not.toBe(x.sub(y));
      expect(x.exp()).not.toBe(y.exp());
      expect(x.lift(1, "f32")).not.toBe(x.lift(1, "f64"));
      expect(x.pow(2)).not.toBe(x.pow(3));
      // signed zeros and non-finite constants stay apart (1 / -0 is -Infinity)
      expect(x.lift(-0)).not.toBe(x.lift(0));
      expect(x.lift(Infinity)).not.toBe(x.lift(-Infinity));
      expect(x.lift(NaN)).not.toBe(x.lift(Infinity));
    });
  });

  it("a node found again keeps the source line where it was first made", () => {
    inGraph((x) => {
      const first = x.neg();
      const again = x.neg();
      expect(again.src).toEqual(first.src);
    });
  });
});

describe("nodes", () => {
  it("ids are creation order and index the context's table", () => {
    const ctx = new Context("ids", OPS);
    const a = ctx.apply("input", [], { name: "a", shape: [2], dtype: "f32" });
    const b = a.exp();
    const c = b.add(a);
    expect([a.id, b.id, c.id]).toEqual([0, 1, 2]);
    for (const t of [a, b, c]) expect(ctx.nodes[t.id]).toBe(t);
    expect(a.exp().id).toBe(1);
    expect(ctx.nodes.length).toBe(3);
  });

  it("are frozen", () => {
    inGraph((x) => {
      const t = x.exp();
      expect(Object.isFrozen(t)).toBe(true);
      expect(() => {
        (t as unknown as { op: string }).op = "log";
      }).toThrow(TypeError);
    });
  });

  it("carry this test file's line as their source", () => {
    const line = Number(new Error().stack!.split("\n")[1]!.match(/:(\d+):\d+\)?$/)![1]) + 1;
    const t = inGraph((x) => x.exp()); // the line just after the one measured above
    expect(t.src?.file).toBe("tests/compiler/ir/node.test.ts");
    expect(t.src?.line).toBe(line);
  });

  it("have rank, size and a short description", () => {
    inGraph((x) => {
      expect(x.rank).toBe(2);
      expect(x.size).toBe(6);
      expect(x.sum().rank).toBe(0);
      expect(x.sum().size).toBe(1);
      expect(String(x.exp())).toMatch(/^%\d+:f32\[2,3\] = exp$/);
    });
  });
});

describe("f32 rounding in the interpreter", () => {
  it("f32 nodes round every result; f64 precision does not", () => {
    const g = graph("round", (b) => {
      const x = b.input("x", []);
      // 1e8 + 1 is not an f32: it rounds back to 1e8, so the difference is 0
      return { outputs: { third: x.div(3), diff: x.add(1).sub(x) } };
    });
    const f32 = interpret(g, { x: [1e8] }, {}, { precision: "f32" }).outputs;
    const f64 = interpret(g, { x: [1e8] }, {}, { precision: "f64" }).outputs;
    expect(f32.diff!.data[0]).toBe(0);
    expect(f64.diff!.data[0]).toBe(1);
    expect(f32.third!.data[0]).toBe(Math.fround(1e8 / 3));
    expect(f64.third!.data[0]).toBe(1e8 / 3);
  });

  it("fed f32 values are rounded, f64 values are not", () => {
    const f32 = evalOutputs((g) => ({ a: g.input("a", [1]).neg(), b: g.input("b", [1], "f64").neg() }), { a: [0.1], b: [0.1] }, "f32");
    expect(f32.a!.data[0]).toBe(-Math.fround(0.1));
    expect(f32.a!.data[0]).not.toBe(-0.1);
    expect(f32.b!.data[0]).toBe(-0.1);
  });

  it("i32 results are truncated in either precision", () => {
    for (const precision of ["f32", "f64"] as const) {
      const out = evalOutputs((g) => ({ q: g.input("n", [3], "i32").mul(3) }), { n: [1, -2, 5] }, precision);
      expect(Array.from(out.q!.data)).toEqual([3, -6, 15]);
    }
  });

  it("evaluate computes only what the roots need", () => {
    let unused!: Tensor;
    const g = graph("lazy", (b) => {
      const x = b.input("x", [2]);
      unused = b.input("other", [2]).exp();
      return { outputs: { y: x.neg() } };
    });
    const values = evaluate([g.outputs.y!], { x: [1, 2] });
    expect(Array.from(values.get(g.outputs.y!)!.data)).toEqual([-1, -2]);
    expect(values.has(unused)).toBe(false);
  });
});

describe("interpreter feeds", () => {
  it("a missing or short feed names the input, its shape and the line that declared it", () => {
    const g = graph("feeds", (g) => ({ outputs: { y: g.input("x", [2, 3]).exp() } }));
    expect(() => interpret(g, {})).toThrow(/no value for input "x" \[2,3\] \(declared at tests\/compiler\/ir\/node\.test\.ts:\d+\)/);
    expect(() => interpret(g, { x: [1, 2] })).toThrow(/input "x" needs 6 values for shape \[2,3\], got 2 \(declared at .*node\.test\.ts:\d+\)/);
  });
});
