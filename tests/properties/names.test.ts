// Names are data: random hostile names (prototype keys, paths, terminal
// escapes, spreadsheet formulas, quotes, line breaks, any unicode) for the
// graph, its inputs, params and outputs go through compile, load, train,
// checkpoints, the gradient-norm log, inspect and the graph drawing, and come
// out as the same names: never a lost key, a path outside build/, raw escape
// bytes on a terminal or a formula in a CSV cell.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { compile } from "../../compiler/compile.js";
import { folderName, run } from "../../compiler/cli.js";
import type { CliIO } from "../../compiler/cli.js";
import { graph } from "../../compiler/dsl/graph.js";
import * as nn from "../../compiler/dsl/nn.js";
import { inspectText } from "../../compiler/inspect/command.js";
import { writeDrawing } from "../../compiler/viz/draw.js";
import { GradNormLog, readGradNorms } from "../../runtime/gradNorms.js";
import { load } from "../../runtime/load.js";
import { errorText } from "../../runtime/trainer.js";
import { csvCell, objectOf, terminalText } from "../../runtime/names.js";
import { encodeSafetensors } from "../../runtime/safetensors.js";
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
// what a terminal acts on in printed output: the same, but a line feed ends a line
const RAW_ON_SCREEN = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

/** Everything the CLI and the trainer print, in order. */
function screen(): { printed: string[]; io: CliIO; trainIO: { log: (l: string) => void; progress: false } } {
  const printed: string[] = [];
  const keep = (t: string): void => void printed.push(t);
  return { printed, io: { out: keep, err: keep }, trainIO: { log: keep, progress: false } };
}

/** The XOR-like model of these tests, every name chosen by the caller. */
function namedModel([x, y, W, b, out]: readonly string[], graphName: string) {
  return graph(graphName, (g) => {
    const xi = g.input(x!, [2, 2]);
    const yi = g.input(y!, [2, 1]);
    const pred = xi.matmul(g.param(W!, [2, 1], { init: 0.5 })).add(g.param(b!, [1]));
    return { loss: nn.mse(pred, yi), outputs: objectOf([[out!, pred]]) };
  });
}

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

  it("reach no terminal raw: train, inspect, graph and their errors print them escaped", async () => {
    await fc.assert(
      fc.asyncProperty(names, name, async (list, graphName) => {
        const [x, y, W, b] = list as [string, string, string, string, string];
        const dir = join(root, `s${n++}`);
        const inputs = objectOf([
          [x, [1, 2, 3, 4, 5, 6, 7, 8]],
          [y, [1, 0, 1, 0]],
        ]);
        compile(namedModel(list, graphName), { outDir: dir, backend: "ts", optimizer: { name: "sgd", lr: 0.1 }, training: { data: { kind: "arrays", inputs }, steps: 2 } });
        // a params file whose tensor is no param of the bundle
        let stranger = `${W}\u001b[2J\u009b0m\u202e`;
        while (stranger === b) stranger += "!";
        const params = join(dir, "stranger.safetensors");
        writeFileSync(params, encodeSafetensors(objectOf([[stranger, { shape: [2, 1], data: Float32Array.from([1, 2]) }]])));
        const { printed, io, trainIO } = screen();
        const codes = [
          await run(["train", dir, "--steps", "2", "--grad-norms", "1", "--log-every", "1"], io, trainIO),
          await run(["inspect", dir, "--grad", W], io),
          await run(["inspect", dir, "--grad", b, "--math"], io),
          await run(["graph", dir, "--stage", "backward"], io),
          await run(["graph", dir, "--stage", "kernels"], io),
          await run(["graph", dir], io),
          // errors that repeat what they were given
          await run(["inspect", dir, "--grad", stranger], io),
          await run(["graph", dir, "--stage", `\u001b]0;${graphName}\u0007`], io),
          await run(["train", dir, "--steps", "1", "--init-from", params], io, trainIO),
          await run(["train", dir, "--steps", "1", `--\u001b[8m${x}`], io, trainIO),
        ];
        expect(codes).toEqual([0, 0, 0, 0, 0, 0, 1, 1, 1, 1]);
        const text = printed.join("\n");
        expect(text).toContain("final loss");
        for (const line of printed) expect(line).not.toMatch(RAW_ON_SCREEN);
        // escaped, not dropped: the stranger is named in its error
        expect(text).toContain("\\u001b[2J\\u009b0m\\u202e");
        rmSync(dir, { recursive: true, force: true });
      }),
      { ...fuzz<[string[], string]>(2), examples: [[["\u001b[31mred", "\r\u001b[2Kgone", "bidi\u202Eevil", "\u009b1;1H", "__proto__"], "\u001b]0;title\u0007"]] },
    );
  }, budget(240_000));

  it("reach no terminal raw from gradc compile, nor from its errors", async () => {
    const dir = join(root, `c${n++}`);
    const dsl = JSON.stringify(fileURLToPath(new URL("../../compiler/dsl/graph.ts", import.meta.url)));
    const nn = JSON.stringify(fileURLToPath(new URL("../../compiler/dsl/nn.ts", import.meta.url)));
    const hostile = ["\u001b[31mx", "\u0007y", "\u009bW", "b\u202e", "\u001b]8;;http://x\u0007out"];
    const model = (twice: boolean) => [
      `import { graph } from ${dsl};`,
      `import * as nn from ${nn};`,
      `const [x, y, W, b, out] = ${JSON.stringify(hostile)};`,
      `export default graph(${JSON.stringify("\u001b[2J\r\u001b]0;g\u0007")}, (g) => {`,
      "  const xi = g.input(x, [2, 2]);",
      `  const p = g.param(W, [2, 1]);${twice ? " g.param(W, [2, 1]);" : ""}`,
      "  const pred = xi.matmul(p).add(g.param(b, [1]));",
      "  return { loss: nn.mse(pred, g.input(y, [2, 1])), outputs: { [out]: pred } };",
      "});",
      "",
    ].join("\n");
    const good = join(root, `model${n}.ts`);
    const bad = join(root, `twice${n}.ts`);
    writeFileSync(good, model(false));
    writeFileSync(bad, model(true));
    const { printed, io } = screen();
    expect(await run(["compile", good, "-o", dir, "--backend", "ts"], io)).toBe(0);
    expect(await run(["compile", bad, "-o", dir], io)).toBe(1);
    expect(printed[0]).toMatch(/^compiled /);
    expect(printed.at(-1)).toMatch(/^gradc: .*\\u009bW/);
    for (const line of printed) expect(line).not.toMatch(RAW_ON_SCREEN);
    // node train.js prints its errors the same way
    expect(errorText(new Error(`unknown param "\u001b[2J\r"`), false)).toBe('train: unknown param "\\u001b[2J\\u000d"');
  }, budget(120_000));
});
