// --check-numerics: the first NaN or infinity stops training with the kernel,
// the graph node and the model line that produced it, fused or not.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { compile } from "../../compiler/compile.js";
import type { Graph } from "../../compiler/ir/graph.js";
import type { CompileOptions } from "../../compiler/config.js";
import { load } from "../../runtime/load.js";
import { main } from "../../runtime/trainer.js";
import { NumericsError, blameNode, firstNonFinite, suspectNode, unravelIndex } from "../../runtime/numerics.js";
import type { NumericsFault } from "../../runtime/numerics.js";
import { finite, logAtZero, overflowBeforeLog, sqrtAtZero, unitRows, zeroRow } from "./models/nonFinite.js";

const root = mkdtempSync(join(tmpdir(), "gradc-numerics-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

const modelsFile = fileURLToPath(new URL("./models/nonFinite.ts", import.meta.url));
/** The line of the models file that holds a marker comment. */
function lineOf(marker: string): number {
  const i = readFileSync(modelsFile, "utf8").split("\n").findIndex((l) => l.includes(`// ${marker}`));
  if (i < 0) throw new Error(`no marker ${marker}`);
  return i + 1;
}

function build(g: Graph, options: Partial<CompileOptions> = {}): string {
  const outDir = join(root, `${g.name}-${n++}`);
  compile(g, { dtype: "f64", optimizer: { name: "sgd", lr: 0.1 }, ...options, outDir });
  return outDir;
}

/** The NumericsError `f` throws (fails the test when it throws nothing or something else). */
async function faultOf(f: () => unknown): Promise<NumericsFault & { message: string }> {
  try {
    await f();
  } catch (e) {
    expect(e).toBeInstanceOf(NumericsError);
    return { ...(e as NumericsError).fault, message: (e as Error).message };
  }
  throw new Error("expected a NumericsError");
}

describe("--check-numerics on compiled bundles", () => {
  for (const fusion of [false, true]) {
    it(`names grad of sqrt at its line when the backward divides by zero (fusion ${fusion ? "on" : "off"})`, async () => {
      const t = await load(build(sqrtAtZero, { fusion }), { checkNumerics: true });
      const f = await faultOf(() => t.step(zeroRow));
      expect(f.phase).toBe("gradients");
      expect(f.step).toBe(1);
      expect(f.src).toMatch(new RegExp(`^grad of sqrt at .*models/nonFinite\\.ts:${lineOf("@sqrt")}$`));
      // d sqrt(z) = 1 / (2 sqrt z): the node that divides
      expect(f.node).toMatch(/= div /);
      expect(f.index).toMatch(/^\[\d,\d\]$/);
      const kernel = t.manifest.kernels.find((k) => k.name === f.kernel)!;
      expect(kernel.entry).toContain("gradients");
      if (fusion) expect(f.fused).toBeGreaterThan(1);
      else expect(kernel.node).toBe(f.node);
      expect(f.message).toContain(`kernel ${f.kernel} produced`);
      expect(f.message).toContain(`nonFinite.ts:${lineOf("@sqrt")}`);
      // nothing was updated
      expect(Array.from(t.params.get("w"))).toEqual([0.5, 0.5]);
    });

    it(`names the forward log at its line (fusion ${fusion ? "on" : "off"})`, async () => {
      const t = await load(build(logAtZero, { fusion }), { checkNumerics: true });
      const f = await faultOf(() => t.gradients(zeroRow));
      expect(f.value).toBe(-Infinity);
      expect(f.step).toBeUndefined();
      expect(f.src).toMatch(new RegExp(`models/nonFinite\\.ts:${lineOf("@log")}$`));
      expect(f.src).not.toMatch(/^grad of/);
      expect(f.node).toMatch(/= log /);
      // unfused, the log's own buffer; fused, what the kernel stores (the summed loss)
      if (!fusion) expect(f.index).toBe("[1,0]");
      else expect(f.fused).toBeGreaterThan(1);
      // predict() runs the forward kernels checked too
      const p = await faultOf(() => t.predict(zeroRow));
      expect(p.phase).toBe("forward");
      expect(p.node).toMatch(/= log /);
    });
  }

  it("names the node of a fused kernel that made the infinity, not the first risky op after it", async () => {
    const unfused = await faultOf(async () => (await load(build(overflowBeforeLog, { fusion: false }), { checkNumerics: true })).step(unitRows));
    const dir = build(overflowBeforeLog);
    const t = await load(dir, { checkNumerics: true });
    const fused = await faultOf(() => t.step(unitRows));
    // one kernel computes the matmul, both muls and the sqrt; it stores only the sqrt
    expect(fused.fused).toBe(4);
    expect(fused.label).not.toBe(unfused.label);
    for (const f of [unfused, fused]) {
      expect(f.value).toBe(Infinity);
      expect(f.node).toMatch(/= mul b b$/);
      expect(f.src).toMatch(new RegExp(`models/nonFinite\\.ts:${lineOf("@overflow")}$`));
    }
    expect(fused.blame).toBe("made");
    expect(fused.message).toContain("this one made it out of finite operands");
    // the checked form computes what the kernel does: the same loss on finite data
    const plain = await load(dir);
    const checked = await load(dir, { checkNumerics: true });
    const small = { x: [1e-200, 0, 0, 1e-200, 1e-200, 1e-200] };
    expect(checked.step(small)).toBe(plain.step(small));
  });

  it("reports bad data as the input's, before any kernel runs", async () => {
    const t = await load(build(sqrtAtZero), { checkNumerics: true });
    const f = await faultOf(() => t.step({ x: [1, 1, NaN, 0, 2, 2] }));
    expect(f.phase).toBe("input");
    expect(f.label).toBe("x");
    expect(f.index).toBe("[1,0]");
    expect(f.kernel).toBeUndefined();
    expect(f.message).toMatch(/input "x" holds NaN at \[1,0\] before any kernel ran/);
  });

  it("without the option the step runs as one call and the NaN goes unnoticed", async () => {
    const t = await load(build(sqrtAtZero));
    expect(t.step(zeroRow)).toBeCloseTo(Math.sqrt(1) + Math.sqrt(0) + Math.sqrt(2), 12);
    expect(Number.isNaN(t.params.get("w")[0])).toBe(true);
  });

  it("a checked run trains exactly like the normal one", async () => {
    const dir = build(finite, { optimizer: { name: "adam", lr: 0.05 } });
    const plain = await load(dir);
    const checked = await load(dir, { checkNumerics: true });
    const batch = { x: [0, 0, 0, 1, 1, 0, 1, 1], y: [0, 1, 1, 0] };
    for (let i = 0; i < 20; i++) expect(checked.step(batch)).toBe(plain.step(batch));
    for (const name of ["W1", "W2"]) expect(Array.from(checked.params.get(name))).toEqual(Array.from(plain.params.get(name)));
    expect(Array.from(checked.predict(batch)["pred"]!)).toEqual(Array.from(plain.predict(batch)["pred"]!));
    expect(checked.gradNorm("W1")).toBe(plain.gradNorm("W1"));
  });

  it("the trainer's --check-numerics flag stops at the first non-finite value", async () => {
    const dir = build(sqrtAtZero, { training: { data: { kind: "arrays", inputs: zeroRow }, steps: 3, shuffle: false } });
    const quiet = { log: () => {}, progress: false };
    // without the flag: the NaN loss of step 2, and a hint
    await expect(main(dir, [], quiet)).rejects.toThrow(/the loss is NaN at step 2; .*--check-numerics/);
    await expect(main(dir, ["--check-numerics"], quiet)).rejects.toThrow(
      new RegExp(`^step 1: kernel \\w+ produced (NaN|Infinity) in .*\\(grad of sqrt at .*nonFinite\\.ts:${lineOf("@sqrt")}\\)`),
    );
  });
});

describe("numerics helpers", () => {
  it("finds the first NaN or infinity", () => {
    expect(firstNonFinite([1, 2, 3])).toBe(-1);
    expect(firstNonFinite([1, -Infinity, NaN])).toBe(1);
    expect(firstNonFinite(Float32Array.from([0, 0, NaN]))).toBe(2);
    expect(firstNonFinite([])).toBe(-1);
  });

  it("writes row-major positions", () => {
    expect(unravelIndex(5, [2, 3])).toBe("[1,2]");
    expect(unravelIndex(0, [])).toBe("[]");
    expect(unravelIndex(7, [2, 2, 2])).toBe("[1,1,1]");
  });

  it("suspects the first op that can make non-finite values out of finite ones", () => {
    const nodes = [
      { node: "d = mul b 2.0", op: "mul" },
      { node: "e = div 1.0 d", op: "div", src: "grad of sqrt at m.ts:6" },
      { node: "f = log e", op: "log" },
    ];
    expect(suspectNode(nodes)?.node).toBe("e = div 1.0 d");
    expect(suspectNode(nodes.slice(0, 1))?.node).toBe("d = mul b 2.0");
  });

  it("blames the node a fused kernel's checked form flagged, else the stored one, else the suspect", () => {
    const nodes = [
      { node: "a:f32[2] = mul x 1e30", op: "mul" },
      { node: "b:f32[2] = mul a a", op: "mul" },
      { node: "c:f32[2] = sqrt b", op: "sqrt" },
    ];
    expect(blameNode(nodes, "c", Uint8Array.from([0, 1, 1]))).toEqual({ node: nodes[1], blame: "made" });
    expect(blameNode(nodes, "b", Uint8Array.from([0, 0, 0]))).toEqual({ node: nodes[1], blame: "stored" });
    expect(blameNode(nodes, "c", undefined)).toEqual({ node: nodes[2], blame: "suspect" });
    expect(blameNode(nodes, "z", Uint8Array.from([0, 0, 0]))).toEqual({ node: nodes[2], blame: "suspect" });
    expect(blameNode(nodes.slice(0, 1), "a", Uint8Array.from([1]))).toBeUndefined();
  });
});
