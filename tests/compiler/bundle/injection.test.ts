// Generated code is a boundary: user names (inputs, params, outputs, the graph
// name, source paths) full of quotes, comment ends, newlines, template syntax
// and unicode must leave the emitted modules parseable, correct, and free of
// user text outside comments and string literals.
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ts } from "ts-morph";
import { graph } from "../../../compiler/dsl/graph.js";
import { grad } from "../../../compiler/autodiff/grad.js";
import { initialParams, interpret } from "../../../compiler/interp/interpret.js";
import { expectAllClose, randomArray } from "../../helpers.js";
import { cleanupBundles, compileAndLoad } from "../harness/harness.js";
import type { Loaded } from "../harness/harness.js";

afterAll(cleanupBundles);

const NAMES = {
  x: 'x"; globalThis.pwned = 1; //',
  y: "line\nbreak\r\nagain",
  W: "w*/ globalThis.pwned = 2; /*",
  b: "sep\u2028par\u2029end",
  c: "ω ünïcödé 名前 \u202Ebidi",
  d: "a b",
  e: "a_b",
  out: "tick`${globalThis.pwned = 3}`",
  z: "create",
};
const GRAPH_NAME = 'g"*/`${globalThis.pwned = 4}`\n\u2028// x';
const FILE = "evil*/ globalThis.pwned = 5; /*\n\u2029dir/model's \"file\".ts";

const evil = graph(GRAPH_NAME, (g) => {
  const x = g.input(NAMES.x, [2, 3]);
  const y = g.input(NAMES.y, [2, 3]);
  const W = g.param(NAMES.W, [3, 3]);
  const b = g.param(NAMES.b, [3], { init: 0.1 });
  const c = g.param(NAMES.c, [3], { init: 1 });
  const d = g.param(NAMES.d, [3], { init: 0.2 });
  const e = g.param(NAMES.e, [3], { init: -0.3 });
  // nodes created "at" a hostile source path: their kernels' comments carry it
  const src = { file: FILE, line: 7, column: 3 };
  const h = x.ctx.apply("matmul", [x, W], {}, src);
  const z = x.ctx.apply("tanh", [h.add(b)], {}, src);
  const pred = z.mul(c).add(d).sub(e);
  return { loss: pred.sub(y).square().mean(), outputs: { [NAMES.out]: pred, [NAMES.z]: z } };
});

const FEEDS = { [NAMES.x]: randomArray(6, 21), [NAMES.y]: randomArray(6, 22) };

/** The text of every token of `source` that is not a comment or a string. */
function codeOutsideCommentsAndStrings(source: string): string {
  const scanner = ts.createScanner(ts.ScriptTarget.Latest, false, ts.LanguageVariant.Standard, source);
  const code: string[] = [];
  const skip = new Set([
    ts.SyntaxKind.SingleLineCommentTrivia,
    ts.SyntaxKind.MultiLineCommentTrivia,
    ts.SyntaxKind.StringLiteral,
    ts.SyntaxKind.NoSubstitutionTemplateLiteral,
    ts.SyntaxKind.WhitespaceTrivia,
    ts.SyntaxKind.NewLineTrivia,
  ]);
  for (let kind = scanner.scan(); kind !== ts.SyntaxKind.EndOfFileToken; kind = scanner.scan()) {
    if (kind === ts.SyntaxKind.Unknown) throw new Error(`unscannable text at ${scanner.getTokenStart()}: ${scanner.getTokenText()}`);
    if (!skip.has(kind)) code.push(scanner.getTokenText());
  }
  return code.join(" ");
}

describe.each([true, false])("user names in generated code (fusion %s)", (fusion) => {
  let b: Loaded;
  const file = (name: string) => readFileSync(path.join(b.result.outDir, name), "utf8");

  it("compiles, imports and computes the interpreter's loss, gradients and outputs", async () => {
    delete (globalThis as { pwned?: unknown }).pwned;
    b = await compileAndLoad(evil, { dtype: "f64", fusion });
    for (const [k, v] of Object.entries(FEEDS)) b.input(k, v);
    b.gradients();
    b.forward();
    const want = interpret(grad(evil), FEEDS, initialParams(evil), { precision: "f64" });
    expect(b.loss()).toBeCloseTo(want.loss!, 12);
    for (const [p, g] of Object.entries(want.grads)) expectAllClose(b.grad(p), g.data, { rtol: 1e-12, atol: 1e-12 });
    for (const [o, v] of Object.entries(want.outputs)) expectAllClose(b.output(o), v.data, { rtol: 1e-12, atol: 1e-12 });
    expect((globalThis as { pwned?: unknown }).pwned).toBeUndefined();
  });

  it("names round-trip exactly through manifest.json", () => {
    expect(b.manifest.name).toBe(GRAPH_NAME);
    expect(b.manifest.inputs.map((i) => i.name)).toEqual([NAMES.x, NAMES.y]);
    expect(b.manifest.params.map((p) => p.name)).toEqual([NAMES.W, NAMES.b, NAMES.c, NAMES.d, NAMES.e]);
    expect(b.manifest.outputs.map((o) => o.name)).toEqual([NAMES.out, NAMES.z]);
    expect(b.manifest.kernels.some((k) => k.src?.includes(FILE))).toBe(true);
  });

  it("kernel names are unique identifiers, even where sanitized names collide", () => {
    const names = b.manifest.kernels.map((k) => k.name);
    for (const n of names) expect(n).toMatch(/^[A-Za-z_][A-Za-z0-9_]*$/);
    expect(new Set(names).size).toBe(names.length);
    // "a b" and "a_b" both sanitize to a_b: unfused, their updates still get two functions; fused, one loop updates every param
    expect(names.filter((n) => n.startsWith("adam_a_b"))).toHaveLength(fusion ? 0 : 2);
  });

  for (const name of ["step.ts", "step.js", "forward.ts", "forward.js", "train.ts", "train.js"]) {
    it(`${name}: parses, and user text appears only in comments and strings`, () => {
      const source = file(name);
      const parsed = ts.transpileModule(source, { reportDiagnostics: true, compilerOptions: { module: ts.ModuleKind.ESNext } });
      expect(parsed.diagnostics ?? []).toEqual([]);
      const code = codeOutsideCommentsAndStrings(source);
      // outside comments and strings: printable ASCII only, and none of the names
      expect(code).toMatch(/^[\x20-\x7e]*$/);
      for (const n of [...Object.values(NAMES), GRAPH_NAME, FILE].filter((n) => /[^A-Za-z0-9_]/.test(n))) {
        expect(code.includes(n), `name ${JSON.stringify(n)} in code`).toBe(false);
      }
      // sanitized identifiers may spell "pwned"; the statement itself must never appear as tokens
      expect(code).not.toMatch(/globalThis \. pwned|`|\$\{/);
      // line and paragraph separators are escaped even inside comments
      expect(source).not.toMatch(/[\u2028\u2029\u202e]/);
    });
  }

  it("step.ts declares exactly one function per kernel plus create", () => {
    const sf = ts.createSourceFile("step.ts", file("step.ts"), ts.ScriptTarget.Latest);
    // (compared as enum values: ts.SyntaxKind[VariableStatement] prints as its alias "FirstStatement")
    const kinds = sf.statements.map((s) => s.kind);
    const gradAndUpdate = b.manifest.kernels.filter((k) => k.entry.includes("gradients") || k.entry.includes("update")).length;
    expect(kinds.filter((k) => k === ts.SyntaxKind.FunctionDeclaration)).toHaveLength(gradAndUpdate + 1);
    expect(kinds.every((k) => k === ts.SyntaxKind.FunctionDeclaration || k === ts.SyntaxKind.VariableStatement)).toBe(true);
  });
});
