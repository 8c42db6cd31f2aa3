// Training through the emitted step() on every backend: the neuron's one SGD
// step by hand, XOR with Adam to a small loss, update() alone; and no
// allocation per step (source and heap) on the backends whose kernels are
// TypeScript on host arrays.
import { afterAll, describe, expect, it } from "vitest";
import { Node, Project, SyntaxKind } from "ts-morph";
import neuron from "../../../examples/neuron/model.js";
import xor, { config as xorConfig } from "../../../examples/xor/model.js";
import { BACKENDS, cleanupBundles, compileAndLoad, loadShared } from "../harness/harness.js";
import type { Loaded } from "../harness/harness.js";
import { TARGETS } from "../../../compiler/backends/index.js";
import type { BackendName } from "../../../compiler/backends/index.js";
import { isTsTarget } from "../../../compiler/backends/ts/target.js";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { compile } from "../../../compiler/compile.js";
import type { CompileOptions } from "../../../compiler/config.js";
import { bytesPerStep, measureAllocation } from "../../probes/measure.js";
import path from "node:path";

afterAll(cleanupBundles);

const XOR_X = [0, 0, 0, 1, 1, 0, 1, 1];
const XOR_Y = [0, 1, 1, 0];

/** XOR on `backend` with `options` (tests that ask the same share a bundle), loaded, its data written. */
async function xorOn(backend: BackendName, options: Omit<CompileOptions, "outDir" | "backend">): Promise<Loaded> {
  const b = await loadShared(xor, { ...options, backend });
  b.input("x", XOR_X);
  b.input("y", XOR_Y);
  return b;
}

/** The backends whose kernels are TypeScript functions over host arrays (gpu's are gpu.js functions run by WebGPU). */
const HOST = BACKENDS.filter((b) => isTsTarget(TARGETS[b]));

describe.each(BACKENDS)("training through step() (%s backend)", (backend) => {
  it("neuron: one SGD step with lr 0.1 gives w = 0.5211508…, b = 0.0105754…", async () => {
    const b = await compileAndLoad(neuron, { backend, optimizer: { name: "sgd", lr: 0.1 } });
    b.input("x", [2]);
    b.input("y", [1]);
    b.hyper(0.1, 1);
    b.step();
    expect(b.param("w")[0]).toBeCloseTo(0.5211508, 6);
    expect(b.param("b")[0]).toBeCloseTo(0.0105754, 6);
    // the loss step() reports is the one before the update: (σ(1) − 1)²
    expect(b.loss()).toBeCloseTo((1 / (1 + Math.exp(-1)) - 1) ** 2, 6);
  });

  it("xor: Adam with lr 0.01 reaches loss < 1e-3 within 1000 steps (default seed)", async () => {
    const b = await xorOn(backend, { optimizer: xorConfig.optimizer! });
    let reached = -1;
    for (let t = 1; t <= 1000 && reached < 0; t++) {
      b.hyper(0.01, t);
      b.step();
      if (b.loss() < 1e-3) reached = t;
    }
    b.gradients();
    expect(reached, "step at which the loss fell below 1e-3").toBeGreaterThan(0);
    expect(b.loss()).toBeLessThan(1e-3);
    b.forward();
    const pred = b.output("pred");
    pred.forEach((p, i) => expect(Math.abs(p - XOR_Y[i]!)).toBeLessThan(0.1));
  });
});

describe.each(BACKENDS)("update(): the optimizer alone, from the gradient slots (%s backend)", (backend) => {
  it("gradients() then update() is step(), bit for bit (Adam, gradients clipped)", async () => {
    const options = { optimizer: { name: "adam" as const, lr: 0.05 }, gradClip: 0.5 };
    // one bundle, loaded twice into arenas of their own
    const [a, b] = [await xorOn(backend, options), await xorOn(backend, options)];
    for (let t = 1; t <= 20; t++) {
      a.hyper(0.05, t);
      b.hyper(0.05, t);
      a.step();
      b.gradients();
      b.update();
      expect(b.F).toEqual(a.F);
    }
  });

  it("update() clips and applies whatever the gradient slots hold (SGD, clip 0.5: p − lr·g·0.5/‖g‖)", async () => {
    const b = await xorOn(backend, { optimizer: { name: "sgd", lr: 0.1 }, gradClip: 0.5 });
    b.gradients();
    // overwrite every gradient with 1, 2, 3, ... (as an all-reduce would overwrite them)
    const names = ["W1", "b1", "W2", "b2"];
    let k = 0;
    const given = new Map(names.map((n) => [n, b.grad(n).map(() => ++k)]));
    const norm = Math.sqrt(Array.from({ length: k }, (_, i) => (i + 1) ** 2).reduce((x, y) => x + y, 0));
    const before = new Map(names.map((n) => [n, b.param(n)]));
    for (const n of names) b.write(b.manifest.params.find((p) => p.name === n)!.grad!, given.get(n)!);
    b.hyper(0.1, 1);
    b.update();
    for (const n of names) {
      const want = before.get(n)!.map((p, i) => p - (0.1 * given.get(n)![i]! * 0.5) / norm);
      b.param(n).forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 6));
    }
  });
});

describe.each(HOST)("no allocation per step (%s backend)", (backend) => {
  it("kernels, gradients() and step() contain no new, literals or closures", async () => {
    const b = await xorOn(backend, { optimizer: xorConfig.optimizer! });
    const project = new Project({ useInMemoryFileSystem: true });
    const sf = project.createSourceFile("step.ts", readFileSync(path.join(b.result.outDir, "step.ts"), "utf8"));
    const kernels = sf.getFunctions().filter((f) => f.getName() !== "create");
    expect(kernels.length).toBe(b.manifest.kernels.filter((k) => k.entry.includes("gradients") || k.entry.includes("update")).length);
    const allocating = [SyntaxKind.NewExpression, SyntaxKind.ArrayLiteralExpression, SyntaxKind.ObjectLiteralExpression, SyntaxKind.ArrowFunction, SyntaxKind.FunctionExpression, SyntaxKind.TemplateExpression, SyntaxKind.SpreadElement];
    for (const k of kernels) {
      for (const kind of allocating) expect(k.getDescendantsOfKind(kind), `${kind} in ${k.getName()}`).toEqual([]);
      // the only calls a kernel makes are to Math
      for (const call of k.getDescendantsOfKind(SyntaxKind.CallExpression)) expect(call.getExpression().getText()).toMatch(/^Math\.\w+$/);
    }
    // per-step entry points only call kernels
    const create = sf.getFunctionOrThrow("create");
    const bodies = [
      create.getVariableDeclarationOrThrow("gradients").getInitializerIfKindOrThrow(SyntaxKind.ArrowFunction).getBody(),
      create.getVariableDeclarationOrThrow("update").getInitializerIfKindOrThrow(SyntaxKind.ArrowFunction).getBody(),
      create.getDescendantsOfKind(SyntaxKind.MethodDeclaration).find((m) => m.getName() === "step")!.getBodyOrThrow(),
    ];
    const names = new Set(kernels.map((k) => k.getName()).concat("gradients", "update"));
    for (const body of bodies) {
      expect(Node.isBlock(body)).toBe(true);
      for (const st of (body as import("ts-morph").Block).getStatements()) {
        const call = st.asKindOrThrow(SyntaxKind.ExpressionStatement).getExpression().asKindOrThrow(SyntaxKind.CallExpression);
        expect(names.has(call.getExpression().getText())).toBe(true);
        expect(call.getArguments().map((a) => a.getText()).join(",")).toMatch(/^(F,I)?$/);
      }
    }
  });

  it("xor steps through the runtime allocate nothing but the returned loss", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "gradc-alloc-"));
    try {
      await compile(xor, { outDir: path.join(dir, "xor"), ...xorConfig, backend, training: undefined });
      // measured in a process of its own that optimizes on its main thread, so machine load cannot fail it
      const m = measureAllocation(path.join(dir, "xor"));
      // the returned loss is one boxed double (16 bytes) when step() is not inlined into its
      // caller; anything a kernel allocated per step would add at least 16 bytes more
      expect(bytesPerStep(m), `rounds: ${JSON.stringify(m.rounds)}`).toBeLessThan(20);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
