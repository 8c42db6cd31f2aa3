// The gradc command line: help, errors without stacks, inspect and graph on a
// hand-written bundle in-process, and compile → inspect as child processes.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { mergeOptimizer, run } from "../../compiler/cli.js";
import { writeFixture } from "../runtime/fixture.js";
import type { Manifest } from "../../runtime/manifest.js";

const root = mkdtempSync(join(tmpdir(), "gradc-cli-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const repo = resolve(import.meta.dirname, "../..");
const bin = join(repo, "bin", "gradc.mjs");

/** Runs the CLI in-process and captures what it printed. */
async function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv, { out: (t) => out.push(t), err: (t) => err.push(t) }, { log: (l) => out.push(l), progress: false });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

const fixture = writeFixture(join(root, "fx"), {
  examples: 24,
  training: { data: { kind: "arrays", file: "data.safetensors" }, steps: 3 },
});

describe("gradc (in-process)", () => {
  it("prints help for the tool and each command", async () => {
    const top = await cli("--help");
    expect(top.code).toBe(0);
    expect(top.out).toMatch(/gradc compile <model.ts> -o <dir>/);
    expect(top.out).toMatch(/gradc inspect <dir> --grad NAME/);
    expect((await cli("compile", "--help")).out).toMatch(/--optimizer NAME.*sgd, momentum, adam or adamw/);
    expect((await cli("train", "--help")).out).toMatch(/Usage: gradc train <dir>[\s\S]*--checkpoint-every N/);
    expect((await cli("inspect", "-h")).out).toMatch(/Usage: gradc inspect <dir> --grad NAME/);
    expect((await cli("help", "graph")).out).toMatch(/--stage STAGE/);
  });

  it("reports errors in one line, with the stack only under --verbose", async () => {
    const bad = await cli("frobnicate");
    expect(bad.code).toBe(1);
    expect(bad.err).toBe('gradc: unknown command "frobnicate"; the commands are compile, train, check, sample, inspect, graph, serve (see gradc --help)');
    const missing = await cli("inspect", join(root, "nope"), "--grad", "W");
    expect(missing.err).toMatch(/^gradc: cannot read .*nope\/manifest.json: no such folder/);
    expect(missing.err.split("\n")).toHaveLength(1);
    const verbose = await cli("inspect", join(root, "nope"), "--grad", "W", "--verbose");
    expect(verbose.code).toBe(1);
    expect(verbose.err).toMatch(/\n\s+at /);
    expect((await cli("compile")).err).toMatch(/gradc compile needs a model file/);
    expect((await cli("compile", join(root, "m.ts"))).err).toMatch(/m\.ts: no such model file$/);
    expect((await cli("compile", join(repo, "examples/xor/model.ts"), "--dtype", "f16")).err).toBe('gradc: --dtype must be one of f32, f64 (got "f16")');
  });

  it("inspect prints the kernels of one gradient, in order, with their JSDoc", async () => {
    const r = await cli("inspect", fixture.dir, "--grad", "b");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^\/\/ dLoss\/db \(f32\[3\]\): 3 kernels in execution order/);
    const names = [...r.out.matchAll(/^function (\w+)/gm)].map((m) => m[1]);
    expect(names).toEqual(["logits_affine", "loss_softmax_xent", "grad_b"]);
    expect(r.out).toContain("/** db = sum(dlogits, 0)  (fixture.ts:1) */\nfunction grad_b(F, I) {");
    expect(r.out).not.toContain("grad_W");
    const unknown = await cli("inspect", fixture.dir, "--grad", "Q");
    expect(unknown.code).toBe(1);
    expect(unknown.err).toBe('gradc: no param "Q" in fixture; the params are W, b');
    expect((await cli("inspect", fixture.dir)).err).toMatch(/needs --grad NAME; the params are W, b/);
  });

  it("graph prints a stage's file and lists the stages on a bad one", async () => {
    expect((await cli("graph", fixture.dir, "--stage", "backward")).out).toBe("{ lambda fixture backward }");
    expect((await cli("graph", fixture.dir, "--stage", "fused")).out).toBe("{ lambda fixture kernels }");
    expect((await cli("graph", fixture.dir, "--stage", "nope")).err).toMatch(/no stage "nope" in .*; the stages are backward, forward, kernels/);
  });

  it("train runs the bundle's trainer with flags", async () => {
    const r = await cli("train", fixture.dir, "--steps", "2", "--log-every", "1");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/step 2\/2/);
    expect(r.out).toMatch(/gradient code: .*fx\/step.ts/);
    expect(existsSync(join(fixture.dir, "checkpoints", "latest.safetensors"))).toBe(true);
    expect((await cli("train", fixture.dir, "--stepz", "2")).err).toMatch(/unknown option --stepz for gradc train/);
  });

  it("compile flags choose fusion, remat and WebAssembly", async () => {
    const read = (d: string): Manifest => JSON.parse(readFileSync(join(d, "manifest.json"), "utf8")) as Manifest;
    const fused = join(root, "xor-fused");
    const plain = join(root, "xor-plain");
    expect((await cli("compile", join(repo, "examples/xor/model.ts"), "-o", fused)).code).toBe(0);
    const r = await cli("compile", join(repo, "examples/xor/model.ts"), "-o", plain, "--no-fusion", "--remat", "--no-wasm");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/fusion off/);
    expect(r.out).toMatch(/remat on/);
    // one kernel per node is more kernels than the fused step
    expect(read(plain).kernels.length).toBeGreaterThan(read(fused).kernels.length);
    // the report: per-stage compile times, printed and saved with the params
    expect(r.out).toMatch(/compile time \d+ ms \(lower \d+, emit \d+, transpile \d+, write \d+ ms\)/);
    const report = JSON.parse(readFileSync(join(plain, "report.json"), "utf8")) as { params: { name: string }[]; compileMs: Record<string, number> };
    expect(report.params.map((p) => p.name)).toEqual(["W1", "b1", "W2", "b2"]);
    expect(Object.keys(report.compileMs)).toEqual(["lower", "emit", "transpile", "report"]);
  });

  it("compiling again keeps the bundle's checkpoints and logs, and says so", async () => {
    const dir = join(root, "xor-again");
    const first = await cli("compile", join(repo, "examples/xor/model.ts"), "-o", dir, "--no-wasm");
    expect(first.code).toBe(0);
    expect(first.out).not.toMatch(/kept the previous/);
    mkdirSync(join(dir, "checkpoints"));
    writeFileSync(join(dir, "checkpoints", "latest.safetensors"), "weights");
    mkdirSync(join(dir, "logs"));
    writeFileSync(join(dir, "logs", "loss.csv"), "step,epoch,loss,lr\n1,1,0.5,0.01\n");
    const again = await cli("compile", join(repo, "examples/xor/model.ts"), "-o", dir, "--no-wasm", "--lr", "0.5");
    expect(again.code).toBe(0);
    expect(again.out).toMatch(/kept the previous bundle's checkpoints\/ and logs\/ \(a checkpoint of another graph is refused at --resume\)/);
    expect(readFileSync(join(dir, "checkpoints", "latest.safetensors"), "utf8")).toBe("weights");
    expect(readFileSync(join(dir, "logs", "loss.csv"), "utf8")).toContain("1,1,0.5,0.01");
    expect((JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as Manifest).optimizer.lr).toBe(0.5);
  });

  it("merges optimizer flags over the model's config", () => {
    const adam = { name: "adam", lr: 0.01, beta1: 0.8, warmupSteps: 5 } as const;
    expect(mergeOptimizer(adam, undefined, undefined)).toBe(adam);
    expect(mergeOptimizer(adam, undefined, 0.5)).toEqual({ ...adam, lr: 0.5 });
    expect(mergeOptimizer(adam, "sgd", undefined)).toEqual({ name: "sgd", lr: 0.01, warmupSteps: 5 });
    expect(mergeOptimizer(undefined, undefined, 0.2)).toEqual({ name: "adam", lr: 0.2 });
    expect(mergeOptimizer(undefined, "momentum", undefined)).toEqual({ name: "momentum", lr: 0.001 });
  });
});

describe("gradc (child processes)", () => {
  it("compiles examples/xor, then inspects dLoss/dW1", { timeout: 300_000 }, () => {
    const out = join(root, "xor");
    const compiled = execFileSync(process.execPath, [bin, "compile", "examples/xor/model.ts", "-o", out], { cwd: repo, encoding: "utf8" });
    expect(compiled).toMatch(/^compiled xor → /);
    expect(compiled).toMatch(/\d+ kernels, 4 params \(33 values\), adam lr 0.01, f32, wasm backend/);
    for (const f of ["manifest.json", "step.ts", "step.js", "train.js", "weights.safetensors"]) expect(existsSync(join(out, f))).toBe(true);
    const inspected = execFileSync(process.execPath, [bin, "inspect", out, "--grad", "W1", "--with-forward"], { cwd: repo, encoding: "utf8" });
    expect(inspected).toMatch(/^\/\/ dLoss\/dW1 \(f32\[2,8\]\): \d+ forward and \d+ backward kernels in execution order/);
    // the first kernel is the forward matmul, and every function carries its source line
    const fns = inspected.split("\n\n").slice(1);
    expect(fns.length).toBeGreaterThan(3);
    expect(fns[0]).toMatch(/^\/\*\* .*matmul x W1 .*examples\/xor\/model.ts:10 \*\/\nfunction /);
    for (const f of fns) expect(f).toMatch(/^\/\*\* [\s\S]*model\.ts:\d+[\s\S]*\*\/\nfunction \w+\(F/);
    // kernels the manifest lists for W1, in its (execution) order, the one writing dW1 among them,
    // and none that writes another gradient (the exact slice is tested in tests/compiler/inspect)
    const manifest = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8")) as Manifest;
    const expected = manifest.kernels.filter((k) => k.gradOf?.includes("W1")).map((k) => k.name);
    expect(expected.length).toBeLessThan(manifest.kernels.length);
    const printed = [...inspected.matchAll(/^function (\w+)/gm)].map((m) => m[1]!);
    expect(printed).toEqual(expected.filter((k) => printed.includes(k)));
    const writes = (name: string) => manifest.kernels.find((k) => k.name === name)!.writes ?? [];
    const gradAt = (p: string) => manifest.params.find((x) => x.name === p)!.grad!.offset;
    expect(printed.filter((k) => writes(k).some((w) => w.offset === gradAt("W1")))).toHaveLength(1);
    expect(printed.filter((k) => writes(k).some((w) => ["b1", "W2", "b2"].map(gradAt).includes(w.offset)))).toEqual([]);
    const bad = spawnSync(process.execPath, [bin, "inspect", out, "--grad", "W9"], { cwd: repo, encoding: "utf8" });
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim()).toBe('gradc: no param "W9" in xor; the params are W1, b1, W2, b2');
  });
});
