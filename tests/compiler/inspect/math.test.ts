// inspect --math: chain-rule expressions read off the backward graph (goldens
// for the XOR, neuron and MNIST examples), and the term printer's rules.
import { afterAll, describe, expect, it } from "vitest";
import { grad } from "../../../compiler/autodiff/grad.js";
import { graph } from "../../../compiler/dsl/graph.js";
import { runPipeline } from "../../../compiler/passes/pipeline.js";
import { gradMath, mathText } from "../../../compiler/inspect/math.js";
import { inspectText } from "../../../compiler/inspect/command.js";
import { readBundle } from "../../../compiler/inspect/bundleData.js";
import { T, add, call, cmp, dot, had, mask, name, neg, not, num, pow, render, scale, sub, subscript } from "../../../compiler/inspect/terms.js";
import { exampleBundle, removeBundles } from "./bundles.js";

afterAll(removeBundles);

describe("terms", () => {
  const [x, y, z] = [name("x"), name("y"), name("z")];

  it("tidies as it builds: x + x, double negation, nested scales", () => {
    expect(render(add(x, x))).toBe("2·x");
    expect(render(neg(neg(x)))).toBe("x");
    expect(render(scale(2, scale(0.25, x)))).toBe("0.5·x");
    expect(render(scale(-1, x))).toBe("−x");
    expect(render(neg(scale(0.5, x)))).toBe("−0.5·x");
    expect(render(had(num(3), x))).toBe("3·x");
    expect(render(T(T(x)))).toBe("x");
    expect(render(not(cmp(">", x, num(0))))).toBe("x ≤ 0");
    expect(render(pow(x, 2))).toBe("x²");
    expect(render(pow(x, 0.5))).toBe("x^0.5");
    expect(subscript([0, 12])).toBe("₀,₁₂");
  });

  it("parenthesizes only where binding needs it", () => {
    expect(render(dot(T(x), mask(dot(y, T(z)), cmp(">", name("b"), num(0)))))).toBe("xᵀ · ((y · zᵀ) ⊙ [b > 0])");
    expect(render(had(had(x, y), z))).toBe("x ⊙ y ⊙ z");
    expect(render(had(add(x, y), z))).toBe("(x + y) ⊙ z");
    expect(render(sub(x, add(y, z)))).toBe("x − (y + z)");
    expect(render(add(x, neg(y)))).toBe("x − y");
    expect(render(add(x, scale(-2, y)))).toBe("x − 2·y");
    expect(render(T(add(x, y)))).toBe("(x + y)ᵀ");
    expect(render(dot(dot(x, y), z))).toBe("x · y · z");
    expect(render(dot(x, dot(y, z)))).toBe("x · (y · z)");
    expect(render(call("Σ₁", neg(x)))).toBe("Σ₁(−x)");
    expect(render(scale(0.5, add(x, y)))).toBe("0.5·(x + y)");
    expect(render(num(-0.03125))).toBe("−0.03125");
    expect(render(num(1 / 3))).toBe("0.333333");
  });
});

describe("gradient maths", () => {
  it("reads XOR's dL/dW1 as the chain rule, with the top cotangent named", async () => {
    const { dir } = await exampleBundle("xor");
    const text = inspectText(dir, { grad: "W1", math: true });
    const lines = text.split("\n");
    expect(lines[0]).toBe("dL/dW1 = xᵀ · ((δf · W2ᵀ) ⊙ [b > 0])");
    expect(lines[1]).toMatch(/^ {2}δf = 0\.5·f +# dL\/df: grad of sub at examples\/xor\/model\.ts:14$/);
    // the forward values it names are defined below, with their lines
    expect(text).toMatch(/^where\n {2}x:f32\[4,2\] input, W2:f32\[8,1\] param\n {2}b:f32\[4,8\] = add a b1 +# examples\/xor\/model\.ts:10/m);
  });

  it("neuron: the sigmoid's derivative appears as d ⊙ (1 − d)", () => {
    // built fresh, so the test does not depend on another's compile
    const g = graph("n", (b) => {
      const x = b.input("x", [1, 1]);
      const w = b.param("w", [1, 1]);
      const yHat = x.matmul(w).sigmoid();
      return { loss: yHat.sub(b.input("y", [1, 1])).square().sum() };
    });
    const train = runPipeline(grad(g)).graph;
    expect(gradMath(train, "w").equation).toBe("dL/dw = xᵀ · ((2·c) ⊙ b ⊙ (1 − b))");
  });

  it("works on the graph before the pipeline too (--stage input)", async () => {
    const { dir } = await exampleBundle("xor");
    const text = inspectText(dir, { grad: "W1", math: true, stage: "input" });
    expect(text.split("\n")[0]).toMatch(/^dL\/dW1 = /);
    expect(text).toContain("⊙ [");
    expect(() => inspectText(dir, { grad: "W1", math: true, stage: "forward" })).toThrow(/--math reads the backward graph/);
  });

  it("shares a value read twice under one δ name, defined once", async () => {
    const { dir } = await exampleBundle("mnist");
    const m = inspectText(dir, { grad: "W3", math: true });
    expect(m.split("\n")[0]).toBe("dL/dW3 = fᵀ · (δq + (Σ₁(−δq) / n) ⊙ m)");
    expect(m.match(/^ {2}δq = /gm)).toHaveLength(1);
  });

  for (const example of ["xor", "neuron", "mnist", "chainRule"] as const) {
    it(`golden: --math for every param of ${example}`, async () => {
      const { dir } = await exampleBundle(example);
      const params = readBundle(dir).manifest.params;
      const text = params.map((p) => `# --grad ${p.name} --math\n${inspectText(dir, { grad: p.name, math: true })}\n`).join("\n");
      await expect(text).toMatchFileSnapshot(`./__snapshots__/${example}.math.txt`);
    });
  }

  it("names a shared value by its own letter when its origin names no single forward value", () => {
    // W is used twice (tied), so its gradient reads k = δf ⊙ e along both uses;
    // k is the cotangent of one of mul's two operands of the same shape: ambiguous
    const g = graph("tied", (b) => {
      const x = b.input("x", [2, 2]);
      const W = b.param("W", [2, 2]);
      const V = b.param("V", [2, 2]);
      const z = x.matmul(b.param("U", [2, 2])).matmul(W).tanh();
      return { loss: z.matmul(W).mul(z.matmul(V)).tanh().sum() };
    });
    const lines = mathText(runPipeline(grad(g)).graph, "W").split("\n");
    expect(lines[0]).toBe("dL/dW = cᵀ · k + aᵀ · δb");
    expect(lines[1]).toMatch(/^ {2}δb = \(\(δf ⊙ d\) · Vᵀ \+ k · Wᵀ\) ⊙ \(1 − c ⊙ c\) +# dL\/db: grad of tanh at /);
    expect(lines[2]).toMatch(/^ {2}k = δf ⊙ e +# grad of mul at /);
    expect(lines[3]).toMatch(/^ {2}δf = 1 − g ⊙ g +# dL\/df: grad of tanh at /);
  });
});
