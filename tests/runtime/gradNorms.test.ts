// Gradient norms: the flags, the CSV log (hostile names included), warnings
// once per param, and the trainer's --grad-norms with its plots.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { EXPLODING, GradNormLog, csvField, flagOf, gradNormSeries, parseCsv, readGradNorms } from "../../runtime/gradNorms.js";
import { main } from "../../runtime/trainer.js";
import { writeReport } from "../../runtime/report.js";
import { load } from "../../runtime/load.js";
import { Batcher } from "../../runtime/data.js";
import { loadTrainingData } from "../../runtime/sources.js";
import type { TrainingSpec } from "../../runtime/manifest.js";
import { writeFixture } from "./fixture.js";
import { checkBalanced } from "./svg.js";

const root = mkdtempSync(join(tmpdir(), "gradc-gradnorms-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

describe("flags", () => {
  it("flags vanishing against the step's largest norm and an absolute floor, exploding above 1e3", () => {
    expect(flagOf(1, 1)).toBe("");
    expect(flagOf(1e-8, 1)).toBe("vanishing");
    expect(flagOf(2e-7, 1)).toBe("");
    expect(flagOf(1e-9, 1e-3)).toBe("");
    expect(flagOf(5e-11, 1e-3)).toBe("vanishing");
    expect(flagOf(0, 0)).toBe("vanishing");
    expect(flagOf(EXPLODING * 2, EXPLODING * 2)).toBe("exploding");
    expect(flagOf(NaN, 1)).toBe("exploding");
    expect(flagOf(Infinity, 1)).toBe("exploding");
  });
});

describe("GradNormLog", () => {
  it("writes step,param,norm,flag rows, quotes hostile names and warns once per param and flag", () => {
    const file = join(root, `norms${n++}.csv`);
    const names = ["layer1.W", 'odd,"name"\nwith a break', "out.W"];
    const warnings: string[] = [];
    const log = new GradNormLog(file, names, false, (l) => warnings.push(l));
    const norms: Record<string, number>[] = [
      { "layer1.W": 1e-12, [names[1]!]: 0.5, "out.W": 2 },
      { "layer1.W": 1e-13, [names[1]!]: 0.25, "out.W": 4e3 },
      { "layer1.W": 0.1, [names[1]!]: 0.25, "out.W": 1 },
    ];
    norms.forEach((row, i) => log.record(10 * (i + 1), { gradNorm: (name) => row[name]! }));
    log.close();
    const rows = readGradNorms(file);
    expect(rows.length).toBe(9);
    expect(rows.map((r) => r.param).slice(0, 3)).toEqual(names);
    expect(rows[0]).toEqual({ step: 10, param: "layer1.W", norm: 1e-12, flag: "vanishing" });
    expect(rows[5]).toEqual({ step: 20, param: "out.W", norm: 4e3, flag: "exploding" });
    // against the largest finite norm of the step: 1e-13 / 0.25 is still vanishing
    expect(rows[3]!.flag).toBe("vanishing");
    expect(rows.slice(6).every((r) => r.flag === "")).toBe(true);
    // each (param, flag) is warned about once: layer1.W vanishing at step 10, out.W exploding at step 20
    expect(warnings.length).toBe(2);
    expect(warnings[0]).toBe(`warning: vanishing gradient at step 10 (norm < 1e-7 × the largest, 2.00e+0 for "out.W", or < 1e-10): "layer1.W" 1.00e-12; see ${file}`);
    expect(warnings[1]).toMatch(/^warning: exploding gradient at step 20 \(norm > 1000 or not finite\): "out.W" 4.00e\+3; see /);
    const series = gradNormSeries(rows);
    expect(series.map((s) => s.name)).toEqual(names);
    expect(series[2]!.points).toEqual([[10, 2], [20, 4e3], [30, 1]]);
  });

  it("appends to an existing log (a resumed run) without a second header", () => {
    const file = join(root, `norms${n++}.csv`);
    for (const [step, append] of [[1, false], [2, true]] as const) {
      const log = new GradNormLog(file, ["w"], append, () => {});
      log.record(step, { gradNorm: () => step });
      log.close();
    }
    expect(readFileSync(file, "utf8")).toBe("step,param,norm,flag\n1,w,1,\n2,w,2,\n");
  });

  it("names many newly flagged params in one line", () => {
    const names = Array.from({ length: 10 }, (_, i) => `p${i}`);
    const warnings: string[] = [];
    const log = new GradNormLog(join(root, `norms${n++}.csv`), [...names, "top"], false, (l) => warnings.push(l));
    log.record(1, { gradNorm: (name) => (name === "top" ? 1 : 1e-12) });
    log.record(2, { gradNorm: (name) => (name === "top" ? 1 : 1e-12) });
    log.close();
    expect(warnings).toEqual([expect.stringMatching(/^warning: vanishing gradients at step 1 .*: "p0" 1.00e-12, .*"p5" 1.00e-12 and 4 more; see /)]);
  });

  it("round-trips CSV fields", () => {
    const fields = ["plain", "a,b", 'say "hi"', "two\nlines", ""];
    const text = `${fields.map(csvField).join(",")}\nx,y\n`;
    expect(parseCsv(text)).toEqual([fields, ["x", "y"]]);
  });
});

describe("trainer --grad-norms and plots", () => {
  const spec: TrainingSpec = { data: { kind: "arrays", file: "data.safetensors" }, epochs: 2, seed: 1, logEvery: 5 };
  const bundle = (training: TrainingSpec = spec) => writeFixture(join(root, `t${n++}`), { examples: 64, batch: 8, optimizer: { name: "adam", lr: 0.05 }, training }).dir;
  const quiet = (lines: string[] = []) => ({ log: (l: string) => lines.push(l), progress: false });

  it("logs every N steps (and step 1), reads the norms of the step's gradient, and plots loss and norms", async () => {
    const dir = bundle();
    const lines: string[] = [];
    const summary = (await main(dir, ["--grad-norms", "4"], quiet(lines)))!;
    expect(summary.steps).toBe(16);
    expect(summary.gradNormLog).toBe(join(dir, "logs", "grad_norms.csv"));
    const rows = readGradNorms(summary.gradNormLog!);
    expect([...new Set(rows.map((r) => r.step))]).toEqual([1, 4, 8, 12, 16]);
    expect(rows.filter((r) => r.step === 4).map((r) => r.param)).toEqual(["W", "b"]);
    for (const r of rows) expect(r.norm).toBeGreaterThan(0);
    // step 1's rows hold the norms of the first batch's gradient at the initial weights
    const t = await load(dir);
    const data = loadTrainingData(spec.data, dir, t.manifest.inputs);
    const batcher = new Batcher(data.train, t.manifest.inputs, 8);
    batcher.fill(batcher.order(0, true, 1), 0);
    const { grads } = t.gradients(batcher.batch);
    for (const r of rows.filter((q) => q.step === 1)) {
      const g = Array.from(grads[r.param]!);
      expect(r.norm).toBeCloseTo(Math.hypot(...g), 5);
      expect(t.gradNorm(r.param)).toBeCloseTo(r.norm, 5);
    }
    expect(summary.plots).toEqual([join(dir, "logs", "loss.svg"), join(dir, "logs", "grad_norms.svg")]);
    const lossSvg = readFileSync(summary.plots[0]!, "utf8");
    checkBalanced(lossSvg);
    expect(lossSvg.match(/<path /g)?.length).toBe(1);
    // every step's loss: 16 points, 15 segments
    expect(/<path d="([^"]*)"/.exec(lossSvg)![1]!.match(/L/g)?.length).toBe(15);
    const normSvg = readFileSync(summary.plots[1]!, "utf8");
    checkBalanced(normSvg);
    expect(normSvg.match(/<path /g)?.length).toBe(2);
    expect(normSvg).toContain(">W</text>");
    expect(lines.some((l) => l.startsWith("plots: "))).toBe(true);
    // the HTML report shows both plots inline, the results, and nothing that could run
    expect(summary.report).toBe(join(dir, "logs", "report.html"));
    const page = readFileSync(summary.report, "utf8");
    expect(page.match(/<svg[\s>]/g)?.length).toBe(2);
    expect(page).toContain("<li>16 steps in ");
    expect(page).toMatch(/Content-Security-Policy" content="default-src 'none'/);
    expect(page).not.toMatch(/<script/i);
  });

  it("escapes the model name and the compile report in the HTML report", () => {
    const dir = mkdtempSync(join(root, "rep-"));
    writeFileSync(join(dir, "report.json"), JSON.stringify({ text: "kernels: <b>3</b> & more" }));
    const file = writeReport(dir, dir, { model: '<script>alert("x")</script>', results: ["final loss 0.1"], plots: [] });
    const page = readFileSync(file, "utf8");
    expect(page).not.toContain("<script>");
    expect(page).toContain("&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62;");
    expect(page).toContain("kernels: &#60;b&#62;3&#60;/b&#62; &#38; more");
  });

  it("takes N from the training spec, and is off without it", async () => {
    const fromSpec = (await main(bundle({ ...spec, gradNormEvery: 8 }), [], quiet()))!;
    expect([...new Set(readGradNorms(fromSpec.gradNormLog!).map((r) => r.step))]).toEqual([1, 8, 16]);
    const off = (await main(bundle(), [], quiet()))!;
    expect(off.gradNormLog).toBeUndefined();
    expect(off.plots).toEqual([join(off.lossLog, "..", "loss.svg")]);
    expect(existsSync(join(off.lossLog, "..", "grad_norms.csv"))).toBe(false);
    const zero = (await main(bundle({ ...spec, gradNormEvery: 8 }), ["--grad-norms", "0"], quiet()))!;
    expect(zero.gradNormLog).toBeUndefined();
  });

  it("a resumed run appends to the norm log and plots the whole history", async () => {
    const dir = bundle();
    await main(dir, ["--steps", "6", "--grad-norms", "2"], quiet());
    const summary = (await main(dir, ["--resume", "--steps", "12", "--grad-norms", "2"], quiet()))!;
    const steps = readGradNorms(summary.gradNormLog!).map((r) => r.step);
    expect([...new Set(steps)]).toEqual([1, 2, 4, 6, 8, 10, 12]);
    const lossSvg = readFileSync(summary.plots[0]!, "utf8");
    // the first run's logged losses (step 5, then its last step 6) and the 6 steps of this one
    expect(/<path d="([^"]*)"/.exec(lossSvg)![1]!.match(/[ML]/g)?.length).toBe(8);
  });
});
