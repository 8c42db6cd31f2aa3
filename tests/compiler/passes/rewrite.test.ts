// The rewrite engine: patterns, replay through a fresh Context (CSE, DCE,
// sources, src and origins kept), fixpoints, and the errors of bad rule sets.
import { describe, expect, it } from "vitest";
import { graph } from "../../../compiler/dsl/graph.js";
import { grad } from "../../../compiler/autodiff/grad.js";
import { printGraph } from "../../../compiler/ir/printer.js";
import { verifyGraph } from "../../../compiler/ir/verify.js";
import { any, lit, match, op } from "../../../compiler/passes/pattern.js";
import type { Rule } from "../../../compiler/passes/rewrite.js";
import { rewrite, rewriteCounted } from "../../../compiler/passes/rewrite.js";
import { ALGEBRA, MOVEMENT } from "../../../compiler/passes/rules.js";
import xor from "../../../examples/xor/model.js";
import { errorMessage, randomArray } from "../../helpers.js";
import { expectSameResults, outputsGraph, text } from "./util.js";

describe("patterns", () => {
  const g = outputsGraph((b) => {
    const x = b.input("x", [3]);
    return { p: x.mul(x), q: x.mul(b.const(2, [3])), r: x.add(1) };
  });
  const [p, q, r] = [g.outputs.p!, g.outputs.q!, g.outputs.r!];

  it("bind names to nodes; a name bound twice must bind one node", () => {
    expect(match(op("mul", [any("a"), any("b")]), p)).toEqual({ a: p.inputs[0], b: p.inputs[0] });
    expect(match(op("mul", [any("a"), any("a")]), p)).toEqual({ a: p.inputs[0] });
    expect(match(op("mul", [any("a"), any("a")]), q)).toBeUndefined();
    expect(match(op(["add", "mul"], [any(), any()], { name: "n" }), r)).toEqual({ n: r });
  });

  it("literals match constants of one value, of any shape; ops filter by op, arity and `where`", () => {
    expect(match(op("mul", [any("x"), lit(2, "c")]), q)).toEqual({ x: q.inputs[0], c: q.inputs[1] });
    expect(match(op("mul", [any(), lit(3)]), q)).toBeUndefined();
    expect(match(op("mul", [any(), lit()]), p)).toBeUndefined();
    expect(match(op("add", [any(), lit(1)]), r)).toEqual({});
    expect(match(op("add", [any()]), r)).toBeUndefined();
    expect(match(op("add", undefined, { where: (t) => t.rank === 2 }), r)).toBeUndefined();
  });
});

describe("replay", () => {
  it("with no rules reprints the same graph, comments included, in a fresh compact context", () => {
    const train = grad(xor);
    const again = rewrite(train, []);
    expect(again.ctx).not.toBe(train.ctx);
    expect(printGraph(again)).toBe(printGraph(train));
    // only what the roots need (and the listed sources) is left in the context
    expect(again.ctx.nodes.length).toBe(again.nodes.length);
    expect(train.ctx.nodes.length).toBeGreaterThan(train.nodes.length);
    verifyGraph(again);
  });

  it("drops dead nodes but keeps unused inputs and params listed", () => {
    const g = graph("dead", (b) => {
      const x = b.input("x", [2]);
      b.input("unused", [3]);
      b.param("frozen", [1], { trainable: false });
      x.exp().mul(3); // dead
      return { outputs: { y: x.sin() } };
    });
    const r = rewrite(g, []);
    expect(r.inputs.map((i) => i.name)).toEqual(["x", "unused"]);
    expect(r.params.map((p) => [p.name, p.trainable])).toEqual([["frozen", false]]);
    expect(r.ctx.nodes.map((t) => t.op)).toEqual(["input", "input", "param", "sin"]);
  });

  it("merges nodes that a rewrite makes equal (CSE through interning)", () => {
    const r = rewriteCounted(
      outputsGraph((b) => {
        const [x, y] = [b.input("x", [3]), b.input("y", [3])];
        return { a: x.mul(1).add(y).tanh(), b: x.add(y).tanh() };
      }),
      ALGEBRA,
    );
    expect(r.graph.outputs.a).toBe(r.graph.outputs.b);
    expect(text(r.graph)).toMatchInlineSnapshot(`
      "{ lambda t (x:f32[3], y:f32[3]; ) .
        a:f32[3] = add x y
        b:f32[3] = tanh a
        in (a=b, b=b) }"
    `);
  });

  it("keeps each node's source line and gradient origin; nodes a rule builds take the rewritten node's", () => {
    const g = graph("src", (b) => {
      const W = b.param("W", [2, 3]);
      const x = b.input("x", [4, 2]);
      const v = b.input("v", [2, 3, 4]);
      return {
        loss: x.transpose().transpose().matmul(W).tanh().sum(),
        outputs: { t: W.transpose([1, 0]).transpose([1, 0]).mul(1), u: v.transpose([1, 2, 0]).transpose([1, 2, 0]) },
      };
    });
    const train = grad(g);
    const r = rewrite(train, [...ALGEBRA, ...MOVEMENT]);
    const byOp = (gr: typeof r, o: string) => gr.nodes.filter((t) => t.op === o);
    // the forward matmul keeps its line; backward matmuls keep "grad of matmul at <that line>"
    const [fwd] = byOp(train, "matmul").filter((t) => !t.origin);
    const [fwd2] = byOp(r, "matmul").filter((t) => !t.origin);
    expect(fwd2!.src).toEqual(fwd!.src);
    const back = byOp(r, "matmul").filter((t) => t.origin);
    expect(back.length).toBeGreaterThan(0);
    for (const t of back) {
      expect(t.origin!.of).toBe(fwd2);
      expect(t.origin!.of.ctx).toBe(r.ctx);
    }
    // the composed transpose is built by a rule: it has the line of the transpose it replaces
    const composed = r.outputs.u!;
    expect([composed.op, composed.p("transpose").perm, composed.src]).toEqual(["transpose", [2, 0, 1], g.outputs.u!.src]);
    expect(composed.src).toBeDefined();
    // the transpose∘transpose and x·1 that vanished took nothing of the rules' own files with them
    expect(r.nodes.filter((t) => t.src && t.src.file !== fwd!.src!.file)).toEqual([]);
    verifyGraph(r);
  });

  it("carries custom gradients over, so the rebuilt graph differentiates as before", () => {
    const g = graph("custom", (b) => {
      const x = b.param("x", [3]);
      const clip = b.customGrad("clip", (v) => v.mul(1), (ct) => [ct.mul(0.5)]);
      return { loss: clip(x).square().sum() };
    });
    const r = rewrite(g, ALGEBRA);
    expect(r.ctx.customVjps).toEqual(g.ctx.customVjps);
    expectSameResults(grad(g), grad(r), { x: randomArray(3, 5) }, 0);
  });

  it("reaches a fixpoint across nodes: a replacement's new inner node is rewritten on the next replay", () => {
    // sumBroadcast builds reshape(v) of v = reshape(...): reshapeReshape only sees it one replay later
    const g = outputsGraph((b) => ({ y: b.input("x", [6]).reshape([2, 3]).reshape([1, 6]).broadcastTo([4, 6]).sum(0) }));
    const r = rewriteCounted(g, [...ALGEBRA, ...MOVEMENT]);
    expect(r.fired).toEqual({ reshapeReshape: 1, broadcastReshape: 1, sumBroadcast: 1 });
    expect(text(r.graph)).toMatchInlineSnapshot(`
      "{ lambda t (x:f32[6]; ) .
        a:f32[6] = mul x 4.0
        in (y=a) }"
    `);
  });
});

describe("bad rule sets", () => {
  const g = outputsGraph((b) => ({ y: b.input("x", [2, 3]).neg() }));

  it("a rule whose replacement has another shape or dtype is named in the error", () => {
    const bad: Rule = { name: "shrink", match: op("neg", [any("x")]), replace: ({ bind, build }) => build.apply("sum", [bind.x!], { axes: [0], keepDims: false }) };
    expect(errorMessage(() => rewrite(g, [bad]))).toMatch(/^rewrite: rule "shrink" replaced f32\[2,3\] = neg with f32\[3\]/);
    const other: Rule = { name: "foreign", match: op("neg"), replace: () => outputsGraph((b) => ({ z: b.input("z", [2, 3]) })).outputs.z };
    expect(errorMessage(() => rewrite(g, [other]))).toMatch(/rule "foreign" replaced .* with a node of another graph/);
  });

  it("rules that undo each other are reported instead of looping", () => {
    const there: Rule = { name: "there", match: op("neg", [any("x")]), replace: ({ bind, build }) => build.apply("mul", [bind.x!, build.constant(-1, [], "f32")], {}) };
    const back: Rule = { name: "back", match: op("mul", [any("x"), lit(-1)]), replace: ({ bind, build }) => build.apply("neg", [bind.x!], {}) };
    expect(errorMessage(() => rewrite(g, [there, back]))).toMatch(/do not reach a fixpoint/);
  });
});
