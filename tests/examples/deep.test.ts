// The deep examples: a 16-layer sigmoid MLP whose first-layer gradient
// vanishes, beside the same depth with residual blocks and layer norm that
// trains; read from the gradient-norm log the trainer writes.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compile } from "../../compiler/compile.js";
import { main } from "../../runtime/trainer.js";
import type { TrainSummary } from "../../runtime/trainer.js";
import { readGradNorms } from "../../runtime/gradNorms.js";
import type { GradNormRow } from "../../runtime/gradNorms.js";
import * as sigmoid from "../../examples/deep/sigmoid.js";
import * as residual from "../../examples/deep/residual.js";
import { twoSpirals } from "../../examples/deep/spirals.js";
import { checkBalanced } from "../runtime/svg.js";

const root = mkdtempSync(join(tmpdir(), "gradc-deep-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Five epochs of the 2048 training examples in batches of 64. */
const STEPS = 160;

interface Run {
  readonly summary: TrainSummary;
  readonly lines: string[];
  /** Norms by step, then by param. */
  readonly norms: Map<number, Map<string, number>>;
  readonly rows: GradNormRow[];
}

async function train(model: typeof sigmoid | typeof residual, name: string): Promise<Run> {
  const outDir = join(root, name);
  compile(model.default, { ...model.config, outDir });
  const lines: string[] = [];
  const summary = (await main(outDir, ["--steps", String(STEPS)], { log: (l) => lines.push(l), progress: false }))!;
  const rows = readGradNorms(summary.gradNormLog!);
  const norms = new Map<number, Map<string, number>>();
  for (const r of rows) {
    if (!norms.has(r.step)) norms.set(r.step, new Map());
    norms.get(r.step)!.set(r.param, r.norm);
  }
  return { summary, lines, norms, rows };
}

/** first-layer norm / last-layer norm at every logged step. */
const ratios = (run: Run): number[] => [...run.norms.values()].map((m) => m.get("in.W")! / m.get("out.W")!);
/** The largest over the smallest weight-gradient norm at every logged step. */
const spreads = (run: Run): number[] =>
  [...run.norms.values()].map((m) => {
    const w = [...m].filter(([p]) => p.endsWith(".W")).map(([, v]) => v);
    return Math.max(...w) / Math.min(...w);
  });
const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe("deep sigmoid vs deep residual", () => {
  let sig: Run;
  let res: Run;
  beforeAll(async () => {
    sig = await train(sigmoid, "sigmoid");
    res = await train(residual, "residual");
  }, 600_000); // two compiles and 320 training steps: minutes on a loaded 2-core machine

  it("both are 16 layers deep on the same data, and log norms every 10 steps from the spec", () => {
    for (const run of [sig, res]) {
      expect([...run.norms.keys()]).toEqual([1, ...Array.from({ length: STEPS / 10 }, (_, i) => 10 * (i + 1))]);
      const weights = [...run.norms.get(1)!.keys()].filter((p) => p.endsWith(".W"));
      expect(weights.length).toBe(16);
      expect(weights[0]).toBe("in.W");
      expect(weights.at(-1)).toBe("out.W");
    }
    expect(sigmoid.config.training!.data).toEqual(residual.config.training!.data);
    expect(res.norms.get(1)!.has("h01.gamma")).toBe(true);
  });

  it("the sigmoid net's first-layer gradient is orders of magnitude below its last layer's", () => {
    const r = ratios(sig);
    expect(Math.max(...r)).toBeLessThan(1e-6);
    expect(Math.min(...spreads(sig))).toBeGreaterThan(1e6);
    // flagged in the log, and warned about once
    expect(sig.rows.find((row) => row.step === 1 && row.param === "in.W")!.flag).toBe("vanishing");
    const warnings = sig.lines.filter((l) => l.startsWith("warning: vanishing gradients"));
    expect(warnings.length).toBeGreaterThanOrEqual(1);
    expect(warnings[0]).toContain('"in.W"');
    expect(sig.lines.filter((l) => l.includes('"in.W" ')).length).toBe(1);
  });

  it("the residual net's first- and last-layer gradients are within a small factor", () => {
    const r = ratios(res);
    for (const x of r) {
      expect(x).toBeGreaterThan(1 / 20);
      expect(x).toBeLessThan(20);
    }
    expect(median(r)).toBeGreaterThan(0.1);
    expect(Math.max(...spreads(res))).toBeLessThan(100);
    expect(res.rows.every((row) => row.flag === "")).toBe(true);
    expect(res.lines.some((l) => l.startsWith("warning:"))).toBe(false);
  });

  it("the residual net's loss falls well below the sigmoid net's, which stays near chance", () => {
    expect(sig.summary.finalLoss).toBeGreaterThan(0.6);
    expect(res.summary.finalLoss).toBeLessThan(0.05);
    expect(res.summary.finalLoss).toBeLessThan(sig.summary.finalLoss / 10);
    expect(res.summary.accuracy!).toBeGreaterThan(0.95);
    expect(sig.summary.accuracy!).toBeLessThan(0.65);
  });

  it("writes both plots with one line per parameter", () => {
    for (const run of [sig, res]) {
      const [loss, norms] = run.summary.plots.map((p) => readFileSync(p, "utf8"));
      checkBalanced(loss!);
      checkBalanced(norms!);
      expect(norms!.match(/<path /g)?.length).toBe(run.norms.get(1)!.size);
      expect(norms).toContain("(log scale)");
    }
  });
});

describe("the spirals", () => {
  it("are deterministic, balanced and inside the unit disk (give or take the jitter)", () => {
    const a = twoSpirals(200);
    expect(twoSpirals(200)).toEqual(a);
    expect(a.x.length).toBe(400);
    expect(a.y.filter((v) => v === 1).length).toBe(100);
    for (let i = 0; i < 200; i++) expect(Math.hypot(a.x[2 * i]!, a.x[2 * i + 1]!)).toBeLessThan(1.1);
    // the two classes are the same spiral turned by half a circle
    for (let i = 0; i < 200; i += 2) {
      expect(Math.abs(a.x[2 * i + 2]! + a.x[2 * i]!)).toBeLessThan(0.13);
      expect(Math.abs(a.x[2 * i + 3]! + a.x[2 * i + 1]!)).toBeLessThan(0.13);
    }
  });
});
