// The bundle on disk, on every backend: its files, the manifest's slots and
// kernels, the arena plan, weights and data, and the generated trainer
// running with nothing from the compiler; replacing an old bundle, and bad
// options refused.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import xor, { config as xorConfig } from "../../../examples/xor/model.js";
import { compile, lowerGraph } from "../../../compiler/compile.js";
import { graph } from "../../../compiler/dsl/graph.js";
import * as nn from "../../../compiler/dsl/nn.js";
import { grad } from "../../../compiler/autodiff/grad.js";
import { printGraph } from "../../../compiler/ir/printer.js";
import { runPipeline } from "../../../compiler/passes/pipeline.js";
import { initValues } from "../../../compiler/dsl/init.js";
import { FORMAT_NAME, FORMAT_VERSION } from "../../../runtime/manifest.js";
import type { Manifest, Slot } from "../../../runtime/manifest.js";
import { loadSafetensors } from "../../../runtime/safetensors.js";
import { expectAllClose, errorMessage, randomArray } from "../../helpers.js";
import { BACKENDS, cleanupBundles, compileAndLoad, tempBundleDir } from "../harness/harness.js";
import { TARGETS } from "../../../compiler/backends/index.js";
import { isTsTarget } from "../../../compiler/backends/ts/target.js";
import { kernelsOf } from "../../../compiler/lower/schedule.js";
import { simulate } from "../plan/liveness.js";

afterAll(cleanupBundles);

const RUNTIME = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../runtime");

/** A classifier whose labels only the loss reads. */
const classifier = graph("classifier", (g) => {
  const x = g.input("x", [4, 3]);
  const y = g.input("y", [4], "i32");
  const W = g.param("W", [3, 2]);
  const logits = x.matmul(W).add(g.param("b", [2]));
  return { loss: nn.softmaxCrossEntropy(logits, y), outputs: { logits, flat: logits.reshape([8]) } };
});

// one kernel per node (fusion off): the kernel names below are those of single nodes
describe.each(BACKENDS)("the xor bundle (%s backend)", (backend) => {
  const outDir = tempBundleDir(`xor-${backend}`);
  const result = compile(xor, { ...xorConfig, backend, fusion: false, outDir });
  const m: Manifest = JSON.parse(readFileSync(path.join(outDir, "manifest.json"), "utf8"));
  const { schedule, plan } = lowerGraph(xor, { ...xorConfig, backend, fusion: false });

  it("holds every file, and reports them with timings", () => {
    for (const f of ["manifest.json", "forward.ts", "forward.js", "step.ts", "step.js", "train.ts", "train.js", "weights.safetensors", "data.safetensors", "graphs/forward.txt", "graphs/backward.txt", "graphs/kernels.txt", "package.json"]) {
      expect(existsSync(path.join(outDir, f)), f).toBe(true);
      expect(result.files).toContain(f);
    }
    expect(result.manifest).toEqual(m);
    expect(result.timings.total).toBeGreaterThan(0);
    expect(result.timings.total).toBeGreaterThanOrEqual(result.timings.lower);
  });

  it("has a manifest that follows the contract", () => {
    expect([m.format, m.version, m.name, m.backend, m.dtype]).toEqual([FORMAT_NAME, FORMAT_VERSION, "xor", TARGETS[backend].device, "f32"]);
    expect(m.inputs.map((i) => [i.name, i.usedBy])).toEqual([["x", ["forward", "train"]], ["y", ["train"]]]);
    expect(m.params.map((p) => p.name)).toEqual(["W1", "b1", "W2", "b2"]);
    for (const p of m.params) expect(p.grad?.shape).toEqual(p.shape);
    expect(m.optimizer).toMatchObject({ name: "adam", lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8 });
    expect(m.state.map((s) => `${s.param}.${s.slot}`)).toEqual(["W1.m", "W1.v", "b1.m", "b1.v", "W2.m", "W2.v", "b2.m", "b2.v"]);
    expect([m.hyper.lr.arena, m.hyper.step.arena, m.hyper.step.dtype]).toEqual(["F", "I", "i32"]);
    expect(m.loss?.shape).toEqual([]);
    expect(m.outputs.map((o) => o.name)).toEqual(["pred"]);
    expect(m.training).toMatchObject({ steps: 1000, data: { kind: "arrays", file: "data.safetensors" } });
  });

  it("lists kernels with entries, sources and the params whose gradient they feed", () => {
    const k = (name: string) => m.kernels.find((x) => x.name === name)!;
    expect(k("matmul_x_W1")).toMatchObject({ entry: ["forward", "gradients"], src: "examples/xor/model.ts:10", node: "a:f32[4,8] = matmul x W1" });
    expect(k("matmul_x_W1").gradOf).toEqual(["W1", "b1", "W2", "b2"]);
    // the loss is not a forward output: its kernels run only in gradients()
    expect(k("sub_e_y").entry).toEqual(["gradients"]);
    // dW1 = xᵀ·v, the last kernel of W1's gradient, feeds no other param
    const dW1 = m.kernels.find((x) => x.name.startsWith("grad_matmul") && x.node.includes("= matmul") && x.gradOf?.join() === "W1");
    expect(dW1?.src).toBe("grad of matmul at examples/xor/model.ts:10");
    expect(m.params.find((p) => p.name === "W1")!.grad!.offset).toBe(plan.offsets.get(schedule.grads.get("W1")!));
    expect(m.kernels.filter((x) => x.entry.includes("update")).map((x) => x.name)).toEqual(["adam_W1", "adam_b1", "adam_W2", "adam_b2"]);
  });

  it("lays buffers out inside the arenas; buffers live at the same time never overlap", () => {
    expect([plan.floats, plan.ints]).toEqual([m.arena.floats, m.arena.ints]);
    for (const b of schedule.buffers) expect(plan.offsets.get(b)! + b.size).toBeLessThanOrEqual(b.arena === "F" ? plan.floats : plan.ints);
    const programs = { forward: kernelsOf(schedule, "forward"), step: [...kernelsOf(schedule, "gradients"), ...kernelsOf(schedule, "update")] };
    expect(simulate(schedule, plan, programs)).toEqual([]);
    // what the runtime reads and writes overlaps nothing else
    const slots: Slot[] = [...m.inputs, ...m.params, ...m.params.map((p) => p.grad!), ...m.state, m.hyper.lr, m.hyper.step, m.loss!, ...m.outputs];
    for (const arena of ["F", "I"] as const) {
      const spans = slots.filter((x) => x.arena === arena).map((x) => [x.offset, x.offset + x.shape.reduce((a, b) => a * b, 1)] as const);
      spans.sort((a, b) => a[0] - b[0]);
      spans.forEach(([s0], i) => {
        if (i > 0) expect(s0).toBeGreaterThanOrEqual(spans[i - 1]![1]);
      });
    }
    for (const x of slots) expect(x.offset + x.shape.reduce((a, b) => a * b, 1)).toBeLessThanOrEqual(x.arena === "F" ? m.arena.floats : m.arena.ints);
  });

  it("stores the initial weights and the training arrays", () => {
    const w = loadSafetensors(path.join(outDir, "weights.safetensors")).tensors;
    for (const p of xor.params) expectAllClose(w[p.name]!.data, Float32Array.from(initValues(p.init, p.shape)), 0);
    const d = loadSafetensors(path.join(outDir, "data.safetensors")).tensors;
    expect(d["x"]!.shape).toEqual([4, 2]);
    expect(Array.from(d["y"]!.data)).toEqual([0, 1, 1, 0]);
  });

  it("prints the forward and training graphs and one schedule line per kernel", () => {
    expect(readFileSync(path.join(outDir, "graphs/forward.txt"), "utf8")).toBe(printGraph(xor) + "\n");
    // the training graph as scheduled: after the graph passes
    expect(readFileSync(path.join(outDir, "graphs/backward.txt"), "utf8")).toBe(printGraph(runPipeline(grad(xor)).graph) + "\n");
    const lines = readFileSync(path.join(outDir, "graphs/kernels.txt"), "utf8").trimEnd().split("\n").filter((l) => !l.startsWith("#"));
    expect(lines.map((l) => l.split(" ")[0])).toEqual(m.kernels.map((k) => k.name));
  });

  it("carries a transpiled copy of every runtime module", async () => {
    const sources = readdirSync(RUNTIME).filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"));
    expect(sources.length).toBeGreaterThan(1);
    for (const f of sources) {
      const js = readFileSync(path.join(outDir, "runtime", f.replace(/\.ts$/, ".js")), "utf8");
      expect(js).not.toMatch(/from "\.\.\/(\.\.\/)?compiler/);
    }
    const copy = (await import(pathToFileURL(path.join(outDir, "runtime/manifest.js")).href)) as { FORMAT_VERSION: number };
    expect(copy.FORMAT_VERSION).toBe(FORMAT_VERSION);
  });

  // a gpu bundle's train.js runs on WebGPU: tests/runtime/gpu.test.ts trains one through gradc train
  if (isTsTarget(TARGETS[backend])) it("trains with `node train.js` and nothing from the compiler", () => {
    if (!existsSync(path.join(RUNTIME, "trainer.ts"))) return expect.fail("runtime/trainer.ts is missing");
    const out = execFileSync(process.execPath, [path.join(outDir, "train.js"), "--steps", "600"], { cwd: path.dirname(outDir), encoding: "utf8" });
    const loss = Number(/final loss ([0-9.e+-]+)/.exec(out)?.[1]);
    expect(loss).toBeLessThan(1e-2);
  });
});

describe.each(BACKENDS)("bundles (%s backend)", (backend) => {
  it("forward() does not read inputs that only the loss reads, and aliased outputs share a buffer", async () => {
    const b = await compileAndLoad(classifier, { backend });
    expect(b.manifest.inputs.find((i) => i.name === "y")!.usedBy).toEqual(["train"]);
    const x = randomArray(12, 3);
    b.input("x", x);
    b.input("y", [9, -5, 7, 1000]);
    b.forward();
    const logits = b.output("logits");
    const flat = b.manifest.outputs.find((o) => o.name === "flat")!;
    expect(flat.offset).toBe(b.manifest.outputs.find((o) => o.name === "logits")!.offset);
    expectAllClose(b.output("flat"), logits, 0);
    const forwardJs = readFileSync(path.join(b.result.outDir, "forward.js"), "utf8");
    const y = b.manifest.inputs.find((i) => i.name === "y")!;
    expect(forwardJs).not.toMatch(new RegExp(`I\\[${y.offset}( \\+|\\])`));
  });

  // a backend without f64 refuses it (checked in "rejects bad options" below)
  if (TARGETS[backend].capabilities.f64) it("f64 mode stores every float as f64", async () => {
    const b = await compileAndLoad(xor, { backend, dtype: "f64" });
    expect(b.F).toBeInstanceOf(Float64Array);
    expect(b.manifest.dtype).toBe("f64");
    for (const s of [...b.manifest.inputs, ...b.manifest.params, b.manifest.loss!]) expect(s.dtype).toBe("f64");
    const w = loadSafetensors(path.join(b.result.outDir, "weights.safetensors")).tensors;
    expect(w["W1"]!.data).toBeInstanceOf(Float64Array);
  });

  it("a graph without a loss compiles to a forward-only bundle", async () => {
    const g = graph("predictOnly", (b) => ({ outputs: { y: b.input("x", [3]).mul(b.param("s", [1], { init: 2 })) } }));
    const b = await compileAndLoad(g, { backend });
    expect(b.manifest.loss).toBeUndefined();
    expect(b.manifest.params[0]!.grad).toBeUndefined();
    b.input("x", [1, 2, 3]);
    b.forward();
    b.step();
    expectAllClose(b.output("y"), [2, 4, 6], 0);
    expectAllClose(b.param("s"), [2], 0);
  });

});

describe("the bundle folder and options", () => {
  it("replaces a previous bundle, but refuses a folder that is not one", () => {
    const dir = tempBundleDir("replace");
    compile(xor, { outDir: dir });
    writeFileSync(path.join(dir, "stale.txt"), "from an old build");
    compile(xor, { outDir: dir, optimizer: { name: "sgd", lr: 0.5 } });
    expect(existsSync(path.join(dir, "stale.txt"))).toBe(false);
    expect(JSON.parse(readFileSync(path.join(dir, "manifest.json"), "utf8")).optimizer.name).toBe("sgd");
    const other = tempBundleDir("other");
    mkdirSync(other, { recursive: true });
    writeFileSync(path.join(other, "notes.txt"), "keep me");
    expect(errorMessage(() => compile(xor, { outDir: other }))).toMatch(/not empty and holds no gradc bundle/);
    expect(readFileSync(path.join(other, "notes.txt"), "utf8")).toBe("keep me");
    expect(readdirSync(path.dirname(other)).filter((f) => f.includes(".tmp-"))).toEqual([]);
  });

  it("rejects bad options and data with messages that name them", () => {
    const outDir = tempBundleDir("bad");
    expect(errorMessage(() => compile(xor, { outDir, backend: "cuda" as never }))).toMatch(/unknown backend "cuda"/);
    expect(errorMessage(() => compile(xor, { outDir, backend: "gpu", dtype: "f64" }))).toMatch(/backend "gpu" computes in float32 only/);
    expect(errorMessage(() => compile(xor, { outDir, backend: "gpu", fusion: true }))).toMatch(/backend "gpu" runs one kernel per graph node/);
    expect(errorMessage(() => compile(xor, { outDir, backend: "gpu", precision: "mixed" }))).toBe('compile: precision "mixed" runs on the ts and wasm backends; the gpu backend does not store bfloat16 yet');
    expect(errorMessage(() => compile(xor, { outDir, gradClip: -1 }))).toMatch(/gradClip/);
    expect(errorMessage(() => compile(xor, { outDir, optimizer: { name: "rmsprop" as "sgd", lr: 1 } }))).toMatch(/unknown name "rmsprop"/);
    const data = (inputs: Record<string, number[]>) => ({ data: { kind: "arrays" as const, inputs } });
    expect(errorMessage(() => compile(xor, { outDir, training: data({ x: [0, 1, 1], y: [1] }) }))).toMatch(/"x" has 3 values/);
    expect(errorMessage(() => compile(xor, { outDir, training: data({ x: [0, 1] }) }))).toMatch(/no values for input "y"/);
    expect(errorMessage(() => compile(xor, { outDir, training: data({ x: [0, 1], y: [1], z: [2] }) }))).toMatch(/"z" is not an input/);
    expect(existsSync(outDir)).toBe(false);
  });

  it("passes MNIST data settings through to the manifest", () => {
    const outDir = tempBundleDir("mnistcfg");
    const data = { kind: "mnist" as const, train: 100, test: 20, images: "x", labels: "y" };
    const r = compile(classifier, { outDir, training: { data, epochs: 1 } });
    expect(r.manifest.training).toEqual({ data, epochs: 1 });
    expect(existsSync(path.join(outDir, "data.safetensors"))).toBe(false);
  });
});
