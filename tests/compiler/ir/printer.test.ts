// Printer snapshots of the examples' forward graphs, and checks that the
// printed comments point at the model's own lines and that names never clash.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import xor from "../../../examples/xor/model.js";
import neuron from "../../../examples/neuron/model.js";
import chainRule from "../../../examples/chainRule/model.js";
import { letterName, printGraph, printedName } from "../../../compiler/ir/printer.js";
import { graph } from "../../../compiler/dsl/graph.js";
import * as nn from "../../../compiler/dsl/nn.js";
import { grad } from "../../../compiler/autodiff/grad.js";

describe("forward graphs of the examples", () => {
  it("xor", () => {
    expect(printGraph(xor, { comments: false })).toMatchInlineSnapshot(`
      "{ lambda xor (x:f32[4,2], y:f32[4,1]; W1:f32[2,8], b1:f32[8], W2:f32[8,1], b2:f32[1]) .
        a:f32[4,8] = matmul x W1
        b:f32[4,8] = add a b1
        c:f32[4,8] = relu b
        d:f32[4,1] = matmul c W2
        e:f32[4,1] = add d b2
        f:f32[4,1] = sub e y
        g:f32[4,1] = mul f f
        h:f32[] = sum[axes=null keepDims=false] g
        i:f32[] = div h 4.0
        in (loss=i, pred=e) }"
    `);
  });

  it("neuron", () => {
    expect(printGraph(neuron, { comments: false })).toMatchInlineSnapshot(`
      "{ lambda neuron (x:f32[1,1], y:f32[1,1]; w:f32[1,1], b:f32[1]) .
        a:f32[1,1] = matmul x w
        c:f32[1,1] = add a b
        d:f32[1,1] = sigmoid c
        e:f32[1,1] = sub d y
        f:f32[1,1] = mul e e
        g:f32[] = sum[axes=null keepDims=false] f
        in (loss=g, yHat=d) }"
    `);
  });

  it("chainRule", () => {
    expect(printGraph(chainRule, { comments: false })).toMatchInlineSnapshot(`
      "{ lambda chainRule (; x:f32[]) .
        a:f32[] = mul x 2.0
        b:f32[] = add a 3.0
        c:f32[] = mul b b
        in (loss=c, a=a, b=b, c=c) }"
    `);
  });
});

describe("comments", () => {
  it("point at the model file's line that called the op", () => {
    const text = printGraph(xor);
    const source = readFileSync("examples/xor/model.ts", "utf8").split("\n");
    const bindings = text.split("\n").filter((l) => l.includes(" = "));
    expect(bindings.length).toBeGreaterThan(5);
    for (const line of bindings) {
      const m = /= (\w+).*# examples\/xor\/model\.ts:(\d+)$/.exec(line);
      expect(m, line).not.toBeNull();
      const [, op, n] = m!;
      const code = source[Number(n) - 1]!;
      // the op is called on that line, or it comes from the nn.mse composite there
      const ops: Record<string, string[]> = { matmul: [".matmul("], add: [".add("], relu: [".relu()"] };
      expect(code, `${line}\n  vs line ${n}: ${code}`).toSatisfy((c: string) => (ops[op!] ?? ["nn.mse("]).some((s) => c.includes(s)));
    }
  });

  it("name the forward op a backward node differentiates", () => {
    const text = printGraph(grad(chainRule));
    expect(text).toMatch(/= mul \S+ 2\.0 +# grad of mul at examples\/chainRule\/model\.ts:6$/m);
    expect(text).toMatch(/# grad of add at examples\/chainRule\/model\.ts:7$/m);
  });

  it("comments: false prints no comments", () => {
    expect(printGraph(grad(xor), { comments: false })).not.toContain("#");
  });
});

describe("names", () => {
  it("letters run a..z, ba, bb, ...", () => {
    expect([0, 1, 25, 26, 27, 52].map(letterName)).toEqual(["a", "b", "z", "ba", "bb", "ca"]);
  });

  it("bindings never reuse an input or param name", () => {
    for (const g of [xor, neuron, chainRule, grad(xor), grad(neuron)]) {
      const text = printGraph(g, { comments: false });
      const lhs = text
        .split("\n")
        .slice(1, -1)
        .map((l) => l.trim().split(":")[0]!);
      const sources = [...g.inputs, ...g.params].map((s) => printedName(s.name));
      for (const n of lhs) expect(sources, `${g.name}: binding ${n}`).not.toContain(n);
      expect(new Set(lhs).size, `${g.name}: bindings are unique`).toBe(lhs.length);
    }
  });

  it("quotes names that are not identifiers and marks frozen params", () => {
    const g = graph("names", (b) => {
      const x = b.input("my x", [2, 3]);
      const h = nn.dense(b, "enc", x, 2, { trainable: false });
      return { loss: h.sum(), outputs: { "the out": h } };
    });
    const text = printGraph(g, { comments: false });
    expect(text.split("\n")[0]).toBe(`{ lambda names ("my x":f32[2,3]; enc.W:f32[3,2], enc.b:f32[2]) frozen(enc.W, enc.b) .`);
    expect(text).toMatch(/= matmul "my x" enc\.W$/m);
    expect(text).toMatch(/"the out"=/);
  });

  it("prints scalar constants inline and shows params of ops", () => {
    const g = graph("lits", (b) => {
      const x = b.input("x", [2, 3]);
      const n = b.input("n", [2], "i32");
      return { outputs: { y: x.mul(3).sum(1, true), m: n.add(2), t: x.transpose() } };
    });
    const text = printGraph(g, { comments: false });
    expect(text).toMatch(/f32\[2,3\] = mul x 3\.0$/m);
    expect(text).toMatch(/i32\[2\] = add n 2$/m);
    expect(text).toMatch(/f32\[2,1\] = sum\[axes=\[1\] keepDims=true\] \w+$/m);
    expect(text).toMatch(/f32\[3,2\] = transpose\[perm=\[1,0\]\] x$/m);
  });
});
