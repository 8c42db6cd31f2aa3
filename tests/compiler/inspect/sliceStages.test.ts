// inspect --stage: the training graph before the pipeline, after each pass and
// after all of them, rebuilt from a bundle's graph data; the IR slice of one
// gradient at a stage lists exactly the bindings it depends on.
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { grad } from "../../../compiler/autodiff/grad.js";
import { reachable } from "../../../compiler/ir/graph.js";
import { printGraph } from "../../../compiler/ir/printer.js";
import { PIPELINE, runPipeline } from "../../../compiler/passes/pipeline.js";
import { readBundle } from "../../../compiler/inspect/bundleData.js";
import { irSliceText, stageGraph, stageNames } from "../../../compiler/inspect/slice.js";
import { inspectText } from "../../../compiler/inspect/command.js";
import { exampleBundle, removeBundles } from "./bundles.js";

afterAll(removeBundles);

/** The binding names (letters) of printed IR lines. */
const boundNames = (text: string): string[] => [...text.matchAll(/^ {2}([a-z]+):/gm)].map((m) => m[1]!);

describe("stages from graph data", () => {
  it("input is autodiff's graph; the pipeline run again from it gives the bundle's backward graph", async () => {
    const { dir, graph } = await exampleBundle("mnist");
    const view = readBundle(dir);
    expect(printGraph(stageGraph(view, "input").graph)).toBe(printGraph(grad(graph.with({ grads: {} }))));
    const backward = readFileSync(path.join(dir, "graphs", "backward.txt"), "utf8").trimEnd();
    expect(printGraph(stageGraph(view, "backward").graph)).toBe(backward);
    const last = PIPELINE[PIPELINE.length - 1]!.name;
    expect(printGraph(stageGraph(view, last).graph)).toBe(backward);
    // each pass name gives the graph after exactly the passes up to it
    const raw = grad(graph.with({ grads: {} }));
    PIPELINE.forEach((p, i) => {
      expect(printGraph(stageGraph(view, p.name).graph)).toBe(printGraph(runPipeline(raw, { passes: PIPELINE.slice(0, i + 1) }).graph));
    });
    expect(stageNames()).toEqual(["forward", "input", ...PIPELINE.map((p) => p.name), "backward"]);
  });

  it("the slice at a stage lists exactly the bindings dW1 depends on", async () => {
    const { dir } = await exampleBundle("xor");
    const view = readBundle(dir);
    for (const stage of stageNames()) {
      const st = stageGraph(view, stage);
      const text = irSliceText(st, "W1");
      const g = st.graph;
      // the expected names, from the full printed graph at that stage
      const full = printGraph(g, { comments: false }).split("\n");
      const needed = new Set(reachable([g.grads["W1"]!]));
      const bound = g.nodes.filter((t) => t.op !== "input" && t.op !== "param" && !(t.op === "const" && t.p("const").value.length === 1));
      const lines = full.slice(full.length - 1 - bound.length, full.length - 1);
      const expected = bound
        .map((t, i) => [t, /^ {2}([a-z]+):/.exec(lines[i]!)![1]!] as const)
        .filter(([t]) => needed.has(t) && (stage !== "forward" || !t.origin))
        .map(([, n]) => n);
      expect(boundNames(text), stage).toEqual(expected);
      expect(text.split("\n")[0]).toMatch(new RegExp(`^# dLoss/dW1 at stage .*: ${expected.length} (forward )?bindings, reading x:f32\\[4,2\\]`));
      if (stage === "forward") expect(text).not.toContain("grad of");
      else expect(text.split("\n").at(-1)).toMatch(/^ {2}in \(dW1=[a-z]+\)$/);
    }
  });

  it("shows what the passes change: the raw graph's ones broadcast, folded after foldConstants", async () => {
    const { dir } = await exampleBundle("xor");
    const input = inspectText(dir, { grad: "W1", stage: "input" });
    const folded = inspectText(dir, { grad: "W1", stage: "foldConstants" });
    expect(input).toMatch(/= broadcastTo\[shape=\[4,1\]\] \w+ +# grad of sum at examples\/xor\/model\.ts:14/);
    expect(folded).not.toContain("broadcastTo");
    expect(boundNames(folded).length).toBeLessThan(boundNames(input).length);
  });

  it("rejects unknown stages, listing the known ones", async () => {
    const { dir } = await exampleBundle("xor");
    expect(() => inspectText(dir, { grad: "W1", stage: "fused" })).toThrow(`--stage must be one of ${stageNames().join(", ")} (got "fused")`);
    expect(() => stageGraph(readBundle(dir), "nope")).toThrow(/no stage "nope"; the stages are forward, input, foldConstants/);
  });
});
