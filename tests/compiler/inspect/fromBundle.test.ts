// inspect reads what the bundle recorded and computes nothing again: the
// graph autodiff built, the graph after each pass as compiled, and each
// kernel's emitted code come from graphs/*.json. Shown by changing the
// recorded files and the compiler's own modules' outputs apart: what inspect
// prints follows the files.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { grad } from "../../../compiler/autodiff/grad.js";
import { compile, lowerGraph } from "../../../compiler/compile.js";
import { printGraph } from "../../../compiler/ir/printer.js";
import { readBundle } from "../../../compiler/inspect/bundleData.js";
import type { KernelsJson, StagesJson } from "../../../compiler/inspect/bundleData.js";
import { kernelText } from "../../../compiler/inspect/kernel.js";
import { sliceText, stageGraph, stageNames } from "../../../compiler/inspect/slice.js";
import { inspectText } from "../../../compiler/inspect/command.js";
import { PIPELINE } from "../../../compiler/passes/pipeline.js";
import xor, { config as xorConfig } from "../../../examples/xor/model.js";

const root = mkdtempSync(path.join(tmpdir(), "gradc-frombundle-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A fresh copy of one compiled xor bundle. */
const compiled = path.join(root, "xor");
compile(xor, { ...xorConfig, outDir: compiled });
let copies = 0;
function copy(): string {
  const dir = path.join(root, `copy-${copies++}`);
  cpSync(compiled, dir, { recursive: true });
  return dir;
}
const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, "utf8")) as T;

describe("inspect reads the bundle", () => {
  it("records the graph after each pass the bundle was compiled with, and the graph autodiff built", () => {
    const view = readBundle(compiled);
    const { passes, differentiated } = lowerGraph(xor, xorConfig);
    expect(view.stages!.map((s) => s.pass)).toEqual(PIPELINE.map((p) => p.name));
    expect(stageNames(view)).toEqual(["forward", "input", ...PIPELINE.map((p) => p.name), "backward"]);
    passes.stages.forEach((st) => expect(printGraph(stageGraph(view, st.pass).graph)).toBe(printGraph(st.graph)));
    expect(printGraph(stageGraph(view, "input").graph)).toBe(printGraph(differentiated));
    expect(printGraph(differentiated)).toBe(printGraph(grad(xor)));
  });

  it("a pass's graph is the one in graphs/stages.json, not the pipeline run again", () => {
    const dir = copy();
    const file = path.join(dir, "graphs/stages.json");
    const stages = readJson<StagesJson>(file);
    // the bundle says foldConstants left the graph as autodiff built it
    const raw = readJson<StagesJson["passes"][number]["graph"]>(path.join(dir, "graphs/grad.json"));
    writeFileSync(file, JSON.stringify({ ...stages, passes: stages.passes.map((p) => (p.pass === "foldConstants" ? { ...p, graph: raw } : p)) }));
    const view = readBundle(dir);
    expect(printGraph(stageGraph(view, "foldConstants").graph)).toBe(printGraph(grad(xor)));
    expect(inspectText(dir, { grad: "W1", stage: "foldConstants" })).toMatch(/broadcastTo/);
    // a bundle compiled with other passes lists those
    writeFileSync(file, JSON.stringify({ ...stages, passes: stages.passes.slice(0, 2) }));
    expect(stageNames(readBundle(dir))).toEqual(["forward", "input", ...PIPELINE.slice(0, 2).map((p) => p.name), "backward"]);
    expect(() => stageGraph(readBundle(dir), "cleanup")).toThrow(/no stage "cleanup"; the stages are forward, input, foldConstants, movement, backward/);
  });

  it("the input stage is graphs/grad.json, not grad run again", () => {
    const dir = copy();
    // the bundle says autodiff built the graph after every pass
    writeFileSync(path.join(dir, "graphs/grad.json"), readFileSync(path.join(dir, "graphs/train.json")));
    expect(printGraph(stageGraph(readBundle(dir), "input").graph)).toBe(readFileSync(path.join(dir, "graphs/backward.txt"), "utf8").trimEnd());
  });

  it("a kernel's code is the one kernels.json recorded; step.ts is not read", () => {
    const dir = copy();
    const view = readBundle(dir);
    const name = view.manifest.kernels.find((k) => k.entry.includes("gradients") && k.gradOf?.includes("W1"))!.name;
    const recorded = view.kernels.get(name)!.source!;
    expect(recorded.file).toBe("step.ts");
    expect(readFileSync(path.join(dir, "step.ts"), "utf8")).toContain(recorded.text);
    expect(recorded.text).toMatch(new RegExp(`^/\\*\\*[\\s\\S]*\\*/\\nfunction ${name}\\(F: `));
    const before = kernelText(view, name);
    expect(before).toContain(recorded.text);
    rmSync(path.join(dir, "step.ts"));
    rmSync(path.join(dir, "forward.ts"));
    expect(kernelText(readBundle(dir), name)).toBe(before);
    expect(sliceText(readBundle(dir), "W1", { withForward: true })).toContain(recorded.text);
    // and what it prints follows the file
    const file = path.join(dir, "graphs/kernels.json");
    const json = readJson<KernelsJson>(file);
    writeFileSync(file, JSON.stringify({ ...json, kernels: json.kernels.map((k) => (k.name === name ? { ...k, source: { file: "step.ts", text: `function ${name}() {} // as recorded` } } : k)) }));
    expect(kernelText(readBundle(dir), name)).toContain("// as recorded");
  });

  it("a bundle whose kernels.json records no code is refused with a message to recompile it; step.ts is not parsed instead", () => {
    const dir = copy();
    const view = readBundle(dir);
    const name = view.manifest.kernels.find((k) => k.entry.includes("gradients") && k.gradOf?.includes("W1"))!.name;
    const file = path.join(dir, "graphs/kernels.json");
    const json = readJson<KernelsJson>(file);
    writeFileSync(file, JSON.stringify({ ...json, kernels: json.kernels.map(({ source: _, ...k }) => k) }));
    const old = readBundle(dir);
    const message = `${file} records no code for kernel ${name} (a bundle written by an older gradc, or edited): recompile it to inspect its kernels`;
    expect(() => kernelText(old, name)).toThrow(message);
    expect(() => sliceText(old, "W1")).toThrow(/records no code for kernel .*: recompile it to inspect its kernels/);
  });

  it("every kernel of the manifest has its code recorded, from the module that runs it", () => {
    const view = readBundle(compiled);
    const step = readFileSync(path.join(compiled, "step.ts"), "utf8");
    const forward = readFileSync(path.join(compiled, "forward.ts"), "utf8");
    for (const k of view.manifest.kernels) {
      const source = view.kernels.get(k.name)!.source!;
      const inStep = k.entry.includes("gradients") || k.entry.includes("update");
      expect(source.file, k.name).toBe(inStep ? "step.ts" : "forward.ts");
      expect(inStep ? step : forward).toContain(source.text);
    }
  });
});
