// Random graphs (elementwise families, broadcasting, reductions, reshapes,
// transposes, matmuls, softmax; f32 and f64) compiled into real bundles on
// every backend and run through load(): every kernel passes the kernel IR
// verifier after lowering and after each backend pass, and loss, gradients
// and outputs agree with the reference interpreter. Shrunk counterexamples
// become fixed seeds below.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, it } from "vitest";
import { compile, lowerGraph } from "../../compiler/compile.js";
import { grad } from "../../compiler/autodiff/grad.js";
import { interpret } from "../../compiler/interp/interpret.js";
import type { Graph } from "../../compiler/ir/graph.js";
import { load } from "../../runtime/load.js";
import { expectAllClose, randomArray } from "../helpers.js";
import { randomCase } from "../compiler/harness/randomGraphs.js";
import { verifySchedule } from "../compiler/harness/harness.js";
import { randomGraph } from "../compiler/passes/randomGraph.js";
import { BACKENDS, budget, fuzz } from "./settings.js";

const root = mkdtempSync(join(tmpdir(), "gradc-fuzz-backends-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A random graph with feeds, from one of the two generators. */
function randomModel(generator: "fusion" | "passes", seed: number): { graph: Graph; feeds: Record<string, Float64Array> } {
  if (generator === "fusion") return randomCase(seed, 3 + (seed % 8));
  const g = randomGraph(seed);
  const feeds = Object.fromEntries(g.inputs.map((i, k) => [i.name, randomArray(i.shape.reduce((a, b) => a * b, 1), seed * 13 + k)]));
  return { graph: g, feeds };
}

let n = 0;
async function agrees(generator: "fusion" | "passes", seed: number, backend: (typeof BACKENDS)[number], dtype: "f32" | "f64"): Promise<void> {
  const { graph, feeds } = randomModel(generator, seed);
  const dir = join(root, `g${n++}`);
  // every kernel verified after lowering and after each backend pass
  lowerGraph(graph, { dtype, ...backend.options }, (_, after) => verifySchedule(after));
  compile(graph, { outDir: dir, dtype, ...backend.options });
  const t = await load(dir);
  const got = await t.gradientsAsync(feeds);
  const want = interpret(grad(graph), feeds, undefined, { precision: dtype });
  const tol = dtype === "f64" ? { rtol: 1e-9, atol: 1e-11 } : { rtol: 3e-4, atol: 3e-5 };
  expectAllClose([got.loss], [want.loss!], tol);
  for (const [p, g] of Object.entries(want.grads)) expectAllClose(got.grads[p]!, g.data, tol);
  const forward = Object.fromEntries(t.manifest.inputs.filter((i) => i.usedBy.includes("forward")).map((i) => [i.name, feeds[i.name]!]));
  const outputs = await t.predictAsync(forward);
  for (const [o, v] of Object.entries(want.outputs)) expectAllClose(outputs[o]!, v.data, tol);
  rmSync(dir, { recursive: true, force: true });
}

describe.each(BACKENDS)("random graphs on the $name backend agree with the interpreter", (backend) => {
  it("loss, gradients and outputs of random graphs", async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom("fusion" as const, "passes" as const), fc.integer({ min: 1, max: 100_000 }), fc.constantFrom(...backend.dtypes), async (generator, seed, dtype) => {
        await agrees(generator, seed, backend, dtype);
      }),
      fuzz(4),
    );
  }, budget(180_000));

  // counterexamples fast-check found and shrank, kept as regression cases
  const KEPT: readonly [generator: "fusion" | "passes", seed: number, dtype: "f32" | "f64"][] = [
    // max's gradient compared a recomputed, unrounded a with the stored f32 max: no element matched, 0/0
    ["fusion", 10, "f32"],
  ];
  for (const [generator, seed, dtype] of KEPT) {
    it(`kept counterexample: ${generator} #${seed} ${dtype}`, () => agrees(generator, seed, backend, dtype));
  }
});
