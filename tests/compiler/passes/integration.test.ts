// The pipeline inside compile: the scheduled training graph is the pipeline's
// result, compile reports pass stats, `dumpPasses` and `gradc compile
// --dump-passes` write graphs/passes/NN-<pass>.txt into the bundle.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { compile, lowerGraph } from "../../../compiler/compile.js";
import { run } from "../../../compiler/cli.js";
import { grad } from "../../../compiler/autodiff/grad.js";
import { printGraph } from "../../../compiler/ir/printer.js";
import { PIPELINE, runPipeline } from "../../../compiler/passes/pipeline.js";
import xor from "../../../examples/xor/model.js";

const root = mkdtempSync(path.join(tmpdir(), "gradc-passes-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const repo = path.resolve(import.meta.dirname, "../../..");
const dumpNames = ["00-input.txt", ...PIPELINE.map((p, i) => `${String(i + 1).padStart(2, "0")}-${p.name}.txt`)];

describe("compile runs the pipeline", () => {
  it("schedules the pipeline's training graph, and the forward graph over the same nodes", () => {
    const { schedule, passes } = lowerGraph(xor, {});
    expect(printGraph(schedule.train)).toBe(printGraph(runPipeline(grad(xor)).graph));
    expect(schedule.graph.ctx).toBe(schedule.train.ctx);
    expect(schedule.graph.outputs).toEqual(schedule.train.outputs);
    expect(passes.stats.map((s) => s.pass)).toEqual(PIPELINE.map((p) => p.name));
    // no kernel transposes anything: the backward's matmuls read their operands in place
    expect(schedule.kernels.filter((k) => k.node?.op === "transpose")).toEqual([]);
    // (the training step's kernels: forward() fuses on its own and has matmul kernels of its own)
    expect(schedule.kernels.filter((k) => k.entry.includes("gradients") && k.node?.op === "matmul").map((k) => k.node!.params)).toEqual([
      {},
      {},
      { transposeB: true },
      { transposeA: true },
      { transposeA: true },
    ]);
  });

  it("reports pass stats, and writes no dumps unless asked", () => {
    const out = path.join(root, "plain");
    const r = compile(xor, { outDir: out });
    expect(r.passes.map((s) => s.pass)).toEqual(PIPELINE.map((p) => p.name));
    expect(r.passes[0]!.nodesBefore).toBeGreaterThan(r.passes.at(-1)!.nodesAfter);
    expect(r.files.filter((f) => f.startsWith("graphs/passes/"))).toEqual([]);
    expect(existsSync(path.join(out, "graphs/passes"))).toBe(false);
  });

  it("dumpPasses writes the input and the graph after each pass; the last is the scheduled graph", () => {
    const out = path.join(root, "dumped");
    const r = compile(xor, { outDir: out, dumpPasses: true });
    expect(readdirSync(path.join(out, "graphs/passes")).sort()).toEqual(dumpNames);
    expect(r.files).toEqual(expect.arrayContaining(dumpNames.map((n) => `graphs/passes/${n}`)));
    const read = (n: string) => readFileSync(path.join(out, "graphs/passes", n), "utf8");
    expect(read("00-input.txt")).toBe(printGraph(grad(xor)) + "\n");
    expect(read(dumpNames.at(-1)!)).toBe(readFileSync(path.join(out, "graphs/backward.txt"), "utf8"));
    expect(read("01-foldConstants.txt")).not.toBe(read("00-input.txt"));
  });

  it("gradc compile --dump-passes sets it", async () => {
    const out = path.join(root, "cli");
    const lines: string[] = [];
    const io = { out: (t: string) => lines.push(t), err: (t: string) => lines.push(t) };
    expect(await run(["compile", path.join(repo, "examples/xor/model.ts"), "-o", out, "--dump-passes"], io)).toBe(0);
    expect(readdirSync(path.join(out, "graphs/passes")).sort()).toEqual(dumpNames);
    lines.length = 0;
    await run(["compile", "--help"], io);
    expect(lines.join("\n")).toMatch(/--dump-passes\s+write the graph after each graph pass/);
  });
});
