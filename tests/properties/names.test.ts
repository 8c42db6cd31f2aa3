// Names are data: random hostile names (prototype keys, paths, terminal
// escapes, spreadsheet formulas, quotes, line breaks, any unicode) for the
// graph, its inputs, params and outputs go through compile, load, train,
// checkpoints, the gradient-norm log, inspect and the graph drawing, and come
// out as the same names: never a lost key, a path outside build/, raw escape
// bytes on a terminal or a formula in a CSV cell.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, sep } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { compile } from "../../compiler/compile.js";
import { folderName } from "../../compiler/cli.js";
import { graph } from "../../compiler/dsl/graph.js";
import * as nn from "../../compiler/dsl/nn.js";
import { inspectText } from "../../compiler/inspect/command.js";
import { writeDrawing } from "../../compiler/viz/draw.js";
import { GradNormLog, readGradNorms } from "../../runtime/gradNorms.js";
import { load } from "../../runtime/load.js";
import { csvCell, terminalText } from "../../runtime/names.js";
import { budget, fuzz } from "./settings.js";

const root = mkdtempSync(join(tmpdir(), "gradc-fuzz-names-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const NASTY = [
  "__proto__",
  "constructor",
  "toString",
  "hasOwnProperty",
  "../../x",
  "/etc/passwd",
  "=HYPERLINK(\"http://x\")",
  "+1",
  "-2",
  "@SUM(A1)",
  "\u001b[31mred\u001b[0m",
  "\r\u001b[2Kgone",
  "a,b\"c\nd",
  "bidi\u202Eevil",
  "名前",
  "x'; //",
  "`${1}`",
  "*/",
];
/** A name: a nasty one, or any string of any code points (never empty, never the reserved state/ prefix). */
const name = fc.oneof(fc.constantFrom(...NASTY), fc.string({ unit: "binary", minLength: 1, maxLength: 12 })).filter((s) => !s.startsWith("state/"));
const names = fc.uniqueArray(name, { minLength: 5, maxLength: 5 });
// any of the C0/C1 controls, or the bidi overrides, raw
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

let n = 0;

describe("hostile names", () => {
  it("a graph name never chooses a folder outside build/", () => {
    fc.assert(
      fc.property(name, (g) => {
        const dir = resolve("build", folderName(g));
        expect(dir.startsWith(resolve("build") + sep)).toBe(true);
        expect(folderName(g)).not.toMatch(/[/\\]/);
      }),
      fuzz(200),
    );
  });

  it("terminal text has no control characters left; CSV cells read back and never start a formula", () => {
    fc.assert(
      fc.property(name, (s) => {
        expect(terminalText(s)).not.toMatch(CONTROL);
        expect(csvCell(s)).not.toMatch(/^[=+\-@\t\r]/);
      }),
      fuzz(500),
    );
  });

  it("go through compile, train, checkpoints, the gradient-norm log, inspect and drawings unchanged", async () => {
    await fc.assert(
      fc.asyncProperty(names, name, async ([x, y, W, b, out], graphName) => {
        const model = graph(graphName, (g) => {
          const xi = g.input(x!, [2, 2]);
          const yi = g.input(y!, [2, 1]);
          const pred = xi.matmul(g.param(W!, [2, 1], { init: 0.5 })).add(g.param(b!, [1]));
          const outputs: Record<string, typeof pred> = {};
          Object.defineProperty(outputs, out!, { value: pred, enumerable: true });
          return { loss: nn.mse(pred, yi), outputs };
        });
        const dir = join(root, `n${n++}`);
        compile(model, { outDir: dir, backend: "ts", optimizer: { name: "sgd", lr: 0.1 } });
        const t = await load(dir);
        expect(t.params.names()).toEqual([W, b]);
        const feeds: Record<string, number[]> = {};
        Object.defineProperty(feeds, x!, { value: [1, 2, 3, 4], enumerable: true });
        Object.defineProperty(feeds, y!, { value: [1, 0], enumerable: true });
        const loss = t.step(feeds);
        // pred = x·0.5 + 0 = [1.5, 3.5]; mse against [1, 0]
        expect(loss).toBeCloseTo((0.25 + 12.25) / 2, 5);
        const predicted = t.predict(feeds);
        expect(Object.keys(predicted)).toEqual([out]);
        expect(Object.hasOwn(predicted, out!)).toBe(true);
        expect(Object.keys(t.gradients(feeds).grads)).toEqual([W, b]);
        t.save(join(dir, "checkpoints", "latest.safetensors"));
        const again = await load(dir);
        again.restore(join(dir, "checkpoints", "latest.safetensors"));
        expect(Array.from(again.params.get(W!))).toEqual(Array.from(t.params.get(W!)));
        // the gradient-norm log: names read back exactly, no cell starts a formula, warnings are terminal-safe
        const warnings: string[] = [];
        const log = new GradNormLog(join(dir, "logs.csv"), [W!, b!], false, (l) => warnings.push(l));
        log.record(1, t);
        log.close();
        expect(readGradNorms(join(dir, "logs.csv")).map((r) => r.param)).toEqual([W, b]);
        for (const line of warnings) expect(line).not.toMatch(CONTROL);
        // inspect and the drawings take the names as data
        expect(inspectText(dir, { grad: W! })).toContain("function");
        const dot = await writeDrawing(dir, { format: "dot", stage: "backward", highlightGrad: b! });
        expect(dot).toMatch(/^digraph/);
        rmSync(dir, { recursive: true, force: true });
      }),
      // the worst names always run first, then random ones
      { ...fuzz<[string[], string]>(6), examples: [[["__proto__", "constructor", "=HYPERLINK(\"x\")", "\u001b[31mred", "toString"], "../../x"]] },
    );
  }, budget(180_000));
});
