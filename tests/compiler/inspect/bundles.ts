// Example bundles for the inspection tests: each example compiled once per
// test file into a temporary folder (removed by `removeBundles`).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { compile } from "../../../compiler/compile.js";
import type { ModelConfig } from "../../../compiler/config.js";
import type { Graph } from "../../../compiler/ir/graph.js";
import * as chainRule from "../../../examples/chainRule/model.js";
import * as mnist from "../../../examples/mnist/model.js";
import * as neuron from "../../../examples/neuron/model.js";
import * as xor from "../../../examples/xor/model.js";

const EXAMPLES: Record<string, { default: Graph; config?: ModelConfig }> = { xor, neuron, mnist, chainRule };

export type ExampleName = "xor" | "neuron" | "mnist" | "chainRule";

const root = mkdtempSync(path.join(tmpdir(), "gradc-inspect-"));
const made = new Map<string, Promise<{ dir: string; graph: Graph }>>();

/** The example's graph, compiled as `gradc compile` would (its config under the options). */
export function exampleBundle(name: ExampleName): Promise<{ dir: string; graph: Graph }> {
  let p = made.get(name);
  if (!p) {
    p = (async () => {
      const mod = EXAMPLES[name]!;
      const dir = path.join(root, name);
      compile(mod.default, { ...(mod.config ?? {}), outDir: dir });
      return { dir, graph: mod.default };
    })();
    made.set(name, p);
  }
  return p;
}

/** Compiles any graph into a folder of its own (default options). */
export function compileGraph(name: string, graph: Graph): string {
  const dir = path.join(root, `g-${name}`);
  compile(graph, { outDir: dir });
  return dir;
}

/** Text with the temporary folder written as <bundle>, so goldens do not depend on it. */
export function normalize(text: string, dir: string): string {
  return text.split(dir).join("<bundle>");
}

/** Removes every bundle made by this file's tests. */
export function removeBundles(): void {
  rmSync(root, { recursive: true, force: true });
}
