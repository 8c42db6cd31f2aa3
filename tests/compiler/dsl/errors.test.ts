// Errors raised while a graph is built: each names the op, the shapes or
// dtypes involved, and this test file's line that made the bad call.
import { describe, expect, it } from "vitest";
import { graph } from "../../../compiler/dsl/graph.js";
import * as nn from "../../../compiler/dsl/nn.js";
import type { Tensor } from "../../../compiler/ir/node.js";
import { GraphError } from "../../../compiler/ir/types.js";
import type { DType } from "../../../compiler/ir/types.js";
import { errorMessage } from "../../helpers.js";

/** The line of the code that calls this function. */
function thisLine(): number {
  const frame = new Error().stack!.split("\n")[2]!;
  return Number(/:(\d+):\d+\)?$/.exec(frame)![1]);
}

/** The message must point at this file and exactly `line`. */
function expectAt(msg: string, line: number): void {
  expect(msg).toMatch(/dsl\/errors\.test\.ts:\d+/);
  expect(msg).toContain(`dsl/errors.test.ts:${line})`);
}

describe("shape errors name the op, the shapes and the line", () => {
  it("add of shapes that do not broadcast", () => {
    const [msg, line] = [errorMessage(() => graph("e", (g) => ({ outputs: { y: g.input("a", [4, 2]).add(g.input("b", [3])) } }))), thisLine()];
    expect(msg).toMatch(/^add: /);
    expect(msg).toMatch(/\[4,2\]/);
    expect(msg).toMatch(/\[3\]/);
    expectAt(msg, line);
  });

  it("matmul of mismatched inner sizes", () => {
    const [msg, line] = [errorMessage(() => graph("e", (g) => ({ outputs: { y: g.input("a", [4, 2]).matmul(g.input("b", [3, 5])) } }))), thisLine()];
    expect(msg).toMatch(/matmul/);
    expect(msg).toMatch(/\[4,2\]/);
    expect(msg).toMatch(/\[3,5\]/);
    expect(msg).toMatch(/2 vs 3/);
    expectAt(msg, line);
  });

  it("a bad axis for sum, argmax and expandDims", () => {
    const [sum, l1] = [errorMessage(() => graph("e", (g) => ({ outputs: { y: g.input("x", [2, 3]).sum(5) } }))), thisLine()];
    expect(sum).toMatch(/^sum: axis 5 is out of range for rank 2/);
    expect(sum).toMatch(/\[2,3\]/);
    expectAt(sum, l1);
    const [arg, l2] = [errorMessage(() => graph("e", (g) => ({ outputs: { y: g.input("x", [2, 3]).argmax(-3) } }))), thisLine()];
    expect(arg).toMatch(/^argmax: axis -3 is out of range for rank 2/);
    expect(arg).toMatch(/\[2,3\]/);
    expectAt(arg, l2);
    const [exp, l3] = [errorMessage(() => graph("e", (g) => ({ outputs: { y: g.input("x", [2, 3]).expandDims(-4) } }))), thisLine()];
    expect(exp).toMatch(/^expandDims: axis -4/);
    expectAt(exp, l3);
  });

  it("reshape to the wrong number of elements", () => {
    const [msg, line] = [errorMessage(() => graph("e", (g) => ({ outputs: { y: g.input("x", [2, 3]).reshape([4, 2]) } }))), thisLine()];
    expect(msg).toMatch(/^reshape: /);
    expect(msg).toMatch(/\[2,3\]/);
    expect(msg).toMatch(/\[4,2\]/);
    expectAt(msg, line);
  });

  it("operands of different dtypes", () => {
    const [msg, line] = [errorMessage(() => graph("e", (g) => ({ outputs: { y: g.input("a", [2]).mul(g.input("n", [2], "i32")) } }))), thisLine()];
    expect(msg).toMatch(/^mul: dtypes f32 and i32 differ/);
    expectAt(msg, line);
  });

  it("a loss helper given predictions and targets of different shapes", () => {
    const [msg, line] = [errorMessage(() => graph("e", (g) => ({ loss: nn.mse(g.input("p", [4, 1]), g.input("t", [4])) }))), thisLine()];
    expect(msg).toMatch(/^mse: /);
    expect(msg).toMatch(/\[4,1\]/);
    expect(msg).toMatch(/\[4\]/);
    expectAt(msg, line);
  });
});

describe("builder errors", () => {
  it("an input and a param of the same name", () => {
    const msg = errorMessage(() =>
      graph("e", (g) => {
        g.input("x", [2]);
        g.param("x", [2]); // line checked below
        return {};
      }),
    );
    const line = thisLine() - 4;
    expect(msg).toMatch(/^param: the name "x" is already used by an input/);
    expectAt(msg, line);
  });

  it("two inputs of the same name", () => {
    const [msg, line] = [errorMessage(() => graph("e", (g) => (g.input("a", [1]), g.input("a", [1]), {}))), thisLine()];
    expect(msg).toMatch(/^input: the name "a" is already used by an input/);
    expectAt(msg, line);
  });

  it("a name in the prefix checkpoints reserve for optimizer state", () => {
    const [msg, line] = [errorMessage(() => graph("e", (g) => (g.param("state/W/m", [1]), {}))), thisLine()];
    expect(msg).toMatch(/^param: the name "state\/W\/m" starts with "state\/"/);
    expectAt(msg, line);
    // a slash elsewhere is fine ("dense/kernel")
    expect(() => graph("ok", (g) => (g.param("dense/kernel", [1]), {}))).not.toThrow();
  });

  it("an unknown dtype", () => {
    const [msg, line] = [errorMessage(() => graph("e", (g) => (g.input("x", [2], "f16" as DType), {}))), thisLine()];
    expect(msg).toMatch(/^input: "x" has unknown dtype "f16"/);
    expectAt(msg, line);
  });

  it("an integer param and an invalid shape", () => {
    const [intParam, l1] = [errorMessage(() => graph("e", (g) => (g.param("w", [2], { dtype: "i32" }), {}))), thisLine()];
    expect(intParam).toMatch(/^param: "w" must be a float/);
    expectAt(intParam, l1);
    const [bad, l2] = [errorMessage(() => graph("e", (g) => (g.input("x", [2, -1]), {}))), thisLine()];
    expect(bad).toMatch(/^input: "x" has an invalid shape \[2,-1\]/);
    expectAt(bad, l2);
  });

  it("a constant whose values do not fill its shape, or ragged arrays", () => {
    const [fill, l1] = [errorMessage(() => graph("e", (g) => ({ outputs: { c: g.const([1, 2, 3], [2, 2]) } }))), thisLine()];
    expect(fill).toMatch(/^const: 3 values do not fill shape \[2,2\]/);
    expectAt(fill, l1);
    const [ragged, l2] = [errorMessage(() => graph("e", (g) => ({ outputs: { c: g.const([[1, 2], [3]]) } }))), thisLine()];
    expect(ragged).toMatch(/^const: nested arrays are ragged/);
    expectAt(ragged, l2);
  });

  it("a tensor of another graph", () => {
    let stray!: Tensor;
    graph("first", (g) => {
      stray = g.input("x", [2]).exp();
      return {};
    });
    const [msg, line] = [errorMessage(() => graph("second", (g) => ({ outputs: { y: g.input("x", [2]).add(stray) } }))), thisLine()];
    expect(msg).toMatch(/^add: /);
    expect(msg).toMatch(/another graph \("first", not "second"\)/);
    expectAt(msg, line);
  });
});

describe("loss errors point at the line that made the loss", () => {
  it("a non-scalar loss", () => {
    const msg = errorMessage(() =>
      graph("e", (g) => {
        const pred = g.input("x", [4, 2]).matmul(g.param("W", [2, 1]));
        return { loss: pred };
      }),
    );
    const line = thisLine() - 4;
    expect(msg).toMatch(/^graph: "e": the loss must be a scalar, got shape \[4,1\]/);
    expectAt(msg, line);
  });

  it("an integer loss", () => {
    const msg = errorMessage(() =>
      graph("e", (g) => {
        const n = g.input("n", [3], "i32").sum();
        return { loss: n };
      }),
    );
    const line = thisLine() - 4;
    expect(msg).toMatch(/^graph: "e": the loss must be a float, got i32/);
    expectAt(msg, line);
  });

  it("a build that returns no object, or an output that is no tensor", () => {
    expect(errorMessage(() => graph("e", () => undefined as never))).toMatch(/^graph: "e": build must return/);
    expect(errorMessage(() => graph("e", () => ({ outputs: { y: 3 as never } })))).toMatch(/output "y" is not a tensor/);
  });

  it("all of these are GraphErrors carrying the op and the source", () => {
    try {
      graph("e", (g) => ({ outputs: { y: g.input("a", [2]).add(g.input("b", [3])) } }));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(GraphError);
      const ge = e as GraphError;
      expect(ge.op).toBe("add");
      expect(ge.src?.file).toBe("tests/compiler/dsl/errors.test.ts");
      expect(ge.src?.line).toBe(thisLine() - 7);
    }
  });
});
