// Worked examples: the chain rule and one sigmoid neuron, checked against
// derivatives worked by hand; golden files of the printed backward graphs.
import { describe, expect, it } from "vitest";
import { grad } from "../../../compiler/autodiff/grad.js";
import { checkGrads, formatGradReport } from "../../../compiler/autodiff/checkGrads.js";
import { interpret } from "../../../compiler/interp/interpret.js";
import { printGraph } from "../../../compiler/ir/printer.js";
import chainRule from "../../../examples/chainRule/model.js";
import neuron from "../../../examples/neuron/model.js";
import xor from "../../../examples/xor/model.js";

const f64 = { precision: "f64" } as const;

describe("chain rule: a = 2x, b = a + 3, c = b²", () => {
  it("at x = 1 gives a = 2, b = 5, c = 25 and dc/dx = dc/db · db/da · da/dx = 2b · 1 · 2 = 20", () => {
    const v = interpret(grad(chainRule), {}, undefined, f64);
    expect([v.outputs.a!.data[0], v.outputs.b!.data[0], v.outputs.c!.data[0]]).toEqual([2, 5, 25]);
    expect(v.loss).toBe(25);
    expect(v.grads.x!.data[0]).toBe(20);
  });

  it("elsewhere: dc/dx = 4(2x + 3)", () => {
    for (const x of [-2, 0.5, 3]) {
      const v = interpret(grad(chainRule), {}, { x: [x] }, f64);
      expect(v.grads.x!.data[0]).toBeCloseTo(4 * (2 * x + 3), 12);
    }
  });
});

describe("one sigmoid neuron: x = 2, y = 1, w = 0.5, b = 0, L = (ŷ − y)²", () => {
  const feeds = { x: [2], y: [1] };
  // by hand: z = w·x + b = 1, ŷ = σ(1)
  const yHat = 1 / (1 + Math.exp(-1));
  const dLdyHat = 2 * (yHat - 1);
  const dyHatdz = yHat * (1 - yHat);
  const dLdw = dLdyHat * dyHatdz * 2; // dz/dw = x = 2
  const dLdb = dLdyHat * dyHatdz * 1; // dz/db = 1

  it("has ŷ = σ(1) = 0.7310585786", () => {
    expect(yHat).toBeCloseTo(0.7310585786, 10);
    const v = interpret(neuron, feeds, undefined, f64);
    expect(v.outputs.yHat!.data[0]).toBeCloseTo(yHat, 12);
    expect(v.loss).toBeCloseTo((yHat - 1) ** 2, 12);
  });

  it("gives dL/dw = −0.2115083… and dL/db = −0.1057541…", () => {
    const v = interpret(grad(neuron), feeds, undefined, f64);
    const gw = v.grads.w!.data[0]!;
    const gb = v.grads.b!.data[0]!;
    expect(Math.abs(gw - dLdw)).toBeLessThan(1e-7);
    expect(Math.abs(gb - dLdb)).toBeLessThan(1e-7);
    expect(Math.abs(gw - -0.2115083)).toBeLessThan(1e-7);
    expect(Math.abs(gb - -0.1057541)).toBeLessThan(1e-7);
    // the f32 interpreter agrees to f32 precision
    const v32 = interpret(grad(neuron), feeds);
    expect(v32.grads.w!.data[0]).toBeCloseTo(dLdw, 6);
  });

  it("one SGD step with lr 0.1 gives w = 0.5211508…, b = 0.0105754… and a lower loss", () => {
    const before = interpret(grad(neuron), feeds, undefined, f64);
    const w = 0.5 - 0.1 * before.grads.w!.data[0]!;
    const b = 0 - 0.1 * before.grads.b!.data[0]!;
    expect(Math.abs(w - 0.5211508)).toBeLessThan(1e-7);
    expect(Math.abs(b - 0.0105754)).toBeLessThan(1e-7);
    const after = interpret(neuron, feeds, { w: [w], b: [b] }, f64);
    expect(after.loss!).toBeLessThan(before.loss!);
  });

  it("passes checkGrads (gradient and grad of grad)", () => {
    const first = checkGrads(neuron, feeds);
    expect(first.ok, formatGradReport(first)).toBe(true);
    const second = checkGrads(neuron, feeds, { order: 2 });
    expect(second.ok, formatGradReport(second)).toBe(true);
  });
});

describe("XOR", () => {
  const feeds = { x: [0, 0, 0, 1, 1, 0, 1, 1], y: [0, 1, 1, 0] };

  it("passes checkGrads away from relu's kink", () => {
    // b1 = 0 puts the input (0, 0) exactly on relu's kink; move the biases off it
    const b1 = [0.11, -0.12, 0.13, -0.14, 0.15, -0.16, 0.17, -0.18];
    const report = checkGrads(xor, feeds, { params: { b1 } });
    expect(report.ok, formatGradReport(report)).toBe(true);
    expect(report.params.map((p) => p.name)).toEqual(["W1", "b1", "W2", "b2"]);
  });
});

describe("printed backward graphs (golden files)", () => {
  it("neuron", async () => {
    const g = grad(neuron);
    const text = printGraph(g, { comments: true });
    // every binding names its line; each backward one, the forward op it differentiates
    const bindings = text.split("\n").filter((l) => / = /.test(l));
    for (const line of bindings) expect(line).toMatch(/# (grad of \w+( wrt input \d)? at )?examples\/neuron\/model\.ts:\d+$/);
    const backward = g.nodes.filter((n) => n.origin && !(n.op === "const" && n.size === 1));
    expect(bindings.filter((l) => l.includes("# grad of")).length).toBe(backward.length);
    await expect(text + "\n").toMatchFileSnapshot("./__snapshots__/neuron.backward.txt");
  });

  it("xor", async () => {
    const text = printGraph(grad(xor), { comments: true });
    expect(text).toMatch(/in \(loss=\w+, pred=\w+, dW1=\w+, db1=\w+, dW2=\w+, db2=\w+\) }$/);
    await expect(text + "\n").toMatchFileSnapshot("./__snapshots__/xor.backward.txt");
  });
});
