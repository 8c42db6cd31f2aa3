// compile() as a pipeline of named stages: with dumpPasses every stage writes
// its dump to graphs/stages/NN-<stage>.txt, in the order the stages run.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { grad } from "../../compiler/autodiff/grad.js";
import { compile, lowerGraph } from "../../compiler/compile.js";
import { printGraph } from "../../compiler/ir/printer.js";
import xor, { config as xorConfig } from "../../examples/xor/model.js";

const root = mkdtempSync(path.join(tmpdir(), "gradc-stages-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const STAGES = ["build", "grad", "passes", "remat", "fusion", "lowering", "backend", "memory", "emit"];

describe("compile's stages", () => {
  it("dumpPasses writes every stage's dump, in order", () => {
    const out = path.join(root, "dumped");
    compile(xor, { ...xorConfig, outDir: out, dumpPasses: true });
    const dir = path.join(out, "graphs/stages");
    expect(readdirSync(dir).sort()).toEqual(STAGES.map((s, i) => `${String(i).padStart(2, "0")}-${s}.txt`));
    const read = (i: number) => readFileSync(path.join(dir, `${String(i).padStart(2, "0")}-${STAGES[i]}.txt`), "utf8");
    expect(read(0)).toBe(printGraph(xor) + "\n");
    expect(read(1)).toBe(printGraph(grad(xor)) + "\n");
    expect(read(2)).toContain(readFileSync(path.join(out, "graphs/backward.txt"), "utf8").trimEnd());
    expect(read(3)).toMatch(/^remat: off/);
    expect(read(4)).toMatch(/^forward\(\): \d+ kernels/);
    expect(read(7)).toBe(readFileSync(path.join(out, "graphs/kernels.txt"), "utf8"));
    expect(read(8)).toContain("step.js");
  });

  it("writes no stage dumps unless asked, and lowerGraph returns each stage's result", () => {
    const out = path.join(root, "plain");
    const r = compile(xor, { ...xorConfig, outDir: out });
    expect(r.files.filter((f) => f.startsWith("graphs/stages/"))).toEqual([]);
    // the manifest names the backend the kernels were emitted for (the default, wasm), whose device runs them
    expect(r.manifest.backend).toBe("wasm");
    const lowered = lowerGraph(xor, xorConfig);
    expect(lowered.dumps).toEqual([]);
    expect(printGraph(lowered.differentiated)).toBe(printGraph(grad(xor)));
    expect(lowered.schedule.train).toBe(lowered.passes.graph);
    expect(lowered.passes.stages.at(-1)!.graph).toBe(lowered.passes.graph);
  });
});
