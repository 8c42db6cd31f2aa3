// gradc check: float64 bundles compare their gradients with finite
// differences of their own loss; a wrong gradient fails with its position.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { compile } from "../../compiler/compile.js";
import { graph } from "../../compiler/dsl/graph.js";
import type { Graph } from "../../compiler/ir/graph.js";
import type { ModelConfig } from "../../compiler/config.js";
import { run } from "../../compiler/cli.js";
import { checkBundle, formatCheckReport } from "../../runtime/check.js";
import * as neuron from "../../examples/neuron/model.js";
import * as xor from "../../examples/xor/model.js";
import { writeFixture } from "./fixture.js";

const root = mkdtempSync(join(tmpdir(), "gradc-check-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

function build(g: Graph, config: ModelConfig = {}, dtype: "f32" | "f64" = "f64"): string {
  const outDir = join(root, `${g.name}-${n++}`);
  compile(g, { ...config, dtype, outDir });
  return outDir;
}

/** Runs the gradc CLI in-process and keeps what it printed. */
async function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

describe("gradc check", () => {
  it("passes the XOR and neuron examples compiled for f64, on their first training batch", async () => {
    for (const [model, params] of [[xor, ["W1", "b1", "W2", "b2"]], [neuron, ["w", "b"]]] as const) {
      const dir = build(model.default, model.config);
      const report = await checkBundle(dir);
      expect(report.ok).toBe(true);
      expect(report.batch).toMatch(/first training batch/);
      expect(report.params.map((p) => p.name)).toEqual(params);
      for (const p of report.params) {
        expect(p.checked).toBe(p.size);
        expect(p.error).toBeLessThanOrEqual(1e-6);
        expect(Math.abs(p.symbolic - p.numeric)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(p.symbolic)));
      }
      const { code, out } = await cli("check", dir);
      expect(code).toBe(0);
      expect(out).toMatch(new RegExp(`gradient check of "${model.default.name}": ok`));
      for (const name of params) expect(out).toMatch(new RegExp(`^  ${name} `, "m"));
    }
  });

  it("refuses an f32 bundle and says how to compile one for checking", async () => {
    const dir = build(neuron.default, neuron.config, "f32");
    const { code, err } = await cli("check", dir);
    expect(code).toBe(1);
    expect(err).toContain("is an f32 bundle; finite differences need float64");
    expect(err).toContain(`gradc compile examples/neuron/model.ts -o ${dir}-f64 --dtype f64`);
  });

  it("fails on a wrong gradient, naming the param and the element", async () => {
    const options = { dtype: "f64", examples: 24, batch: 8, training: { data: { kind: "arrays", file: "data.safetensors" }, shuffle: false } } as const;
    expect((await checkBundle(writeFixture(join(root, "fixture-ok"), options).dir)).ok).toBe(true);
    // the same bundle (in its own folder: modules are cached by path), whose bias gradient of class 1 comes out 1% too large
    const { dir } = writeFixture(join(root, "fixture-broken"), options);
    const step = join(dir, "step.js");
    const text = readFileSync(step, "utf8");
    const broken = text.replace("F[DB + j] = s;", "F[DB + j] = j === 1 ? 1.01 * s : s;");
    expect(broken).not.toBe(text);
    writeFileSync(step, broken);
    const report = await checkBundle(dir);
    expect(report.ok).toBe(false);
    const b = report.params.find((p) => p.name === "b")!;
    expect(b.ok).toBe(false);
    expect(b.index).toBe("[1]");
    expect(b.error).toBeGreaterThan(5e-3);
    expect(b.symbolic / b.numeric).toBeCloseTo(1.01, 6);
    expect(report.params.find((p) => p.name === "W")!.ok).toBe(true);
    expect(formatCheckReport(report)).toMatch(/^ {2}b +\[3\] +3\/3 +\S+ +\[1\] .*FAIL$/m);
    const { code, out } = await cli("check", dir);
    expect(code).toBe(1);
    expect(out).toContain("FAILED");
  });

  it("accepts a subgradient at a kink, and uses random inputs when the bundle has no data", async () => {
    // relu(x·w + b) with b = 0 and a zero row: that row sits exactly on relu's kink
    const kinked = graph("kinked", (g) => {
      const x = g.input("x", [2, 2]);
      const w = g.param("w", [2, 3], { init: "glorotUniform" });
      const b = g.param("b", [3]);
      return { loss: x.matmul(w).add(b).relu().sum() };
    });
    const dir = build(kinked, { training: { data: { kind: "arrays", inputs: { x: [0, 0, 1, 2] } }, shuffle: false } });
    const report = await checkBundle(dir);
    expect(report.ok).toBe(true);
    expect(report.params.find((p) => p.name === "b")!.kinks).toBe(3);
    expect(formatCheckReport(report)).toMatch(/b .* ok \(3 at kinks\)/);

    const bare = build(kinked);
    const random = await checkBundle(bare, { seed: 3 });
    expect(random.batch).toMatch(/random inputs/);
    expect(random.ok).toBe(true);
    expect(random.params.every((p) => p.kinks === 0)).toBe(true);
  });

  it("samples large params: the largest gradients and seeded others", async () => {
    const wide = graph("wide", (g) => {
      const x = g.input("x", [4, 16]);
      const W = g.param("W", [16, 8], { init: "glorotUniform" });
      return { loss: x.matmul(W).tanh().square().sum() };
    });
    const dir = build(wide);
    const report = await checkBundle(dir, { samples: 10 });
    expect(report.params[0]!.checked).toBe(10);
    expect(report.params[0]!.size).toBe(128);
    expect(report.ok).toBe(true);
    const usage = await cli("check", dir, "--samples", "5", "--tol", "1e-8");
    expect(usage.code).toBe(0);
    expect(usage.out).toContain("5/128");
    expect((await cli("check")).err).toMatch(/gradc check takes one bundle folder/);
  });
});
