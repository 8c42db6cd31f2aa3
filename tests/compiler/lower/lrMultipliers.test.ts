// Per-scope learning-rate multipliers: each param's update uses lr × the
// multiplier of its longest matching scope, fused or not, checked against
// updates worked by hand; bad keys are refused by name.
import { describe, expect, it } from "vitest";
import { graph } from "../../../compiler/dsl/graph.js";
import { lrMultiplier } from "../../../compiler/lower/optimizer.js";
import type { OptimizerSpec } from "../../../runtime/manifest.js";
import { expectAllClose } from "../../helpers.js";
import { execute } from "../harness/harness.js";
import type { Executed } from "../harness/harness.js";

/** One update at learning rate LR, as the runtime drives it: hyper slots first. */
function stepOnce(run: Executed): void {
  run.input("x", X);
  run.hyper(LR, 1);
  run.step();
}

const X = [1, 2, 3];
const LR = 0.1;
/** loss = Σ x·(a + b.W + b.c.W + head): every gradient is x (or Σx for the scalar). */
const scoped = graph("scoped", (g) => {
  const x = g.input("x", [3]);
  const a = g.param("a", [3], { init: [1, 1, 1] });
  const bW = g.param("b.W", [3], { init: [2, 2, 2] });
  const bcW = g.param("b.c.W", [3], { init: [3, 3, 3] });
  const frozen = g.param("b.frozen", [3], { init: [4, 4, 4], trainable: false });
  const head = g.param("head", [1], { init: [5] });
  return { loss: x.mul(a.add(bW).add(bcW).add(frozen).add(head)).sum() };
});

const sgd = (lrMultipliers: Record<string, number>): OptimizerSpec => ({ name: "sgd", lr: LR, lrMultipliers });

describe("lrMultipliers", () => {
  it("picks the longest scope that is the name or a prefix ending at a dot", () => {
    const opt = sgd({ b: 0.5, "b.c": 0.25, he: 9 });
    expect(lrMultiplier(opt, "b.W")).toBe(0.5);
    expect(lrMultiplier(opt, "b.c.W")).toBe(0.25);
    expect(lrMultiplier(opt, "a")).toBe(1);
    // "he" is not a scope of "head"
    expect(lrMultiplier(opt, "head")).toBe(1);
  });

  for (const fusion of [true, false]) {
    it(`scales each param's SGD step (fusion ${fusion}); frozen params stay put`, () => {
      const run = execute(scoped, { dtype: "f64", fusion, optimizer: sgd({ b: 0.5, "b.c": 0.25, head: 2 }) });
      stepOnce(run);
      // p ← p − lr·m·g with g = x (Σx = 6 for the broadcast scalar)
      expectAllClose(run.param("a"), X.map((x) => 1 - LR * x));
      expectAllClose(run.param("b.W"), X.map((x) => 2 - LR * 0.5 * x));
      expectAllClose(run.param("b.c.W"), X.map((x) => 3 - LR * 0.25 * x));
      expectAllClose(run.param("head"), [5 - LR * 2 * 6]);
      expect([...run.param("b.frozen")]).toEqual([4, 4, 4]);
    });
  }

  it("applies the multiplier to Adam's step and AdamW's decay alike", () => {
    const opt: OptimizerSpec = { name: "adamw", lr: LR, weightDecay: 0.1, lrMultipliers: { b: 0.5 } };
    const run = execute(scoped, { dtype: "f64", optimizer: opt });
    stepOnce(run);
    // first Adam step: m̂ = g, v̂ = g², so the step is lr·m·g/(|g| + ε) ≈ lr·m
    const adamw = (p: number, m: number) => p * (1 - LR * m * 0.1) - LR * m * (1 / (1 + 1e-8));
    expectAllClose(run.param("a"), [1, 1, 1].map((p) => adamw(p, 1)), { rtol: 1e-6 });
    expectAllClose(run.param("b.W"), [2, 2, 2].map((p) => adamw(p, 0.5)), { rtol: 1e-6 });
  });

  it("refuses a key that matches no trainable param, and a bad multiplier", () => {
    expect(() => execute(scoped, { optimizer: sgd({ block9: 0.5 }) })).toThrow(/lrMultipliers\["block9"\] matches no trainable param/);
    expect(() => execute(scoped, { optimizer: sgd({ "b.frozen": 0.5 }) })).toThrow(/matches no trainable param/);
    expect(() => execute(scoped, { optimizer: sgd({ b: -1 }) })).toThrow(/lrMultipliers\["b"\] must be a finite number >= 0/);
  });
});
