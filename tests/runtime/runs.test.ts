// Concurrent, interrupted and misled runs of the trainer: a lock per folder,
// temp files of killed runs cleaned, no step logged twice after a resume,
// the flags its messages advertise, and a warning when the loss diverges.
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { main, TRAIN_FLAGS } from "../../runtime/trainer.js";
import { LOCK_FILE } from "../../runtime/lock.js";
import { run as cli } from "../../compiler/cli.js";
import { compile } from "../../compiler/compile.js";
import { graph } from "../../compiler/dsl/graph.js";
import * as nn from "../../compiler/dsl/nn.js";
import type { TrainingSpec } from "../../runtime/manifest.js";
import { writeFixture } from "./fixture.js";
import { loadSafetensors, saveSafetensors } from "../../runtime/safetensors.js";
import type { FixtureOptions } from "./fixture.js";

const root = mkdtempSync(join(tmpdir(), "gradc-runs-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const spec: TrainingSpec = { data: { kind: "arrays", file: "data.safetensors" }, epochs: 1, seed: 5, logEvery: 1 };
const bundle = (o: FixtureOptions = {}) => writeFixture(join(root, `r${n++}`), { examples: 64, batch: 8, training: spec, ...o }).dir;
const deadPid = (): number => spawnSync(process.execPath, ["-e", ""]).pid!;

async function train(dir: string, argv: string[] = []) {
  const lines: string[] = [];
  const summary = await main(dir, argv, { log: (l) => lines.push(l), progress: false });
  return { summary: summary!, lines };
}
const loggedSteps = (dir: string): number[] =>
  readFileSync(join(dir, "logs", "loss.csv"), "utf8").trim().split("\n").slice(1).map((r) => Number(r.split(",")[0]));

describe("one run per folder", () => {
  it("refuses a second trainer on a folder a live one holds, naming it", async () => {
    const dir = bundle();
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: process.ppid, what: "train.js", since: "2026-01-01T00:00:00.000Z" }));
    await expect(train(dir, ["--steps", "2"])).rejects.toThrow(new RegExp(`is in use by train\\.js \\(pid ${process.ppid}`));
    expect(existsSync(join(dir, "logs", "loss.csv"))).toBe(false);
    // a lock whose process is gone is stale
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: deadPid(), what: "train.js", since: "2026-01-01T00:00:00.000Z" }));
    expect((await train(dir, ["--steps", "2"])).summary.steps).toBe(2);
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  });

  it("locks the bundle too when --out points elsewhere", async () => {
    const dir = bundle();
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: process.ppid, what: "gradc compile", since: "2026-01-01T00:00:00.000Z" }));
    await expect(train(dir, ["--steps", "1", "--out", join(root, "elsewhere")])).rejects.toThrow(/is in use by gradc compile/);
  });
});

describe("interrupted runs", () => {
  it("removes the temp files killed runs left in checkpoints/", async () => {
    const dir = bundle();
    mkdirSync(join(dir, "checkpoints"), { recursive: true });
    const stale = `latest.safetensors.tmp-${deadPid()}-1700000000000`;
    writeFileSync(join(dir, "checkpoints", stale), new Uint8Array(1024));
    const { lines } = await train(dir, ["--steps", "1"]);
    expect(readdirSync(join(dir, "checkpoints"))).toEqual(["latest.safetensors"]);
    expect(lines.some((l) => /removed 1 temporary file/.test(l))).toBe(true);
  });

  it("logs no step twice after resuming from an earlier checkpoint", async () => {
    const dir = bundle();
    await train(dir, ["--steps", "4"]);
    copyFileSync(join(dir, "checkpoints", "latest.safetensors"), join(root, "at4.safetensors"));
    await train(dir, ["--steps", "6", "--resume"]);
    expect(loggedSteps(dir)).toEqual([1, 2, 3, 4, 5, 6]);
    // a kill after step 6 whose last checkpoint was step 4: steps 5 and 6 run again
    copyFileSync(join(root, "at4.safetensors"), join(dir, "checkpoints", "latest.safetensors"));
    await train(dir, ["--steps", "7", "--resume"]);
    expect(loggedSteps(dir)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });
});

describe("diagnostics that do not mislead", () => {
  it("accepts the --verbose its error handler advertises", () => {
    expect(TRAIN_FLAGS["verbose"]).toBeDefined();
  });

  it("gradc train DIR --out DIR keeps the --out value", async () => {
    const dir = bundle();
    const out: string[] = [];
    const code = await cli(["train", dir, "--out", dir, "--steps", "2"], { out: (t) => out.push(t), err: (t) => out.push(t) }, { log: (l) => out.push(l), progress: false });
    expect(out.join("\n")).not.toMatch(/gradc:/);
    expect(code).toBe(0);
    expect(loggedSteps(dir)).toEqual([1, 2]);
  });

  it("warns once when the loss diverges", async () => {
    // least squares with a rate far above 2 / (largest curvature): the loss grows geometrically
    const model = graph("ls", (g) => {
      const x = g.input("x", [4, 2]);
      const y = g.input("y", [4, 1]);
      return { loss: nn.mse(x.matmul(g.param("w", [2, 1])), y) };
    });
    const dir = join(root, "diverge");
    const xs = Array.from({ length: 32 }, (_, i) => (i % 5) - 2);
    const ys = Array.from({ length: 16 }, (_, i) => i % 3);
    compile(model, { outDir: dir, backend: "ts", optimizer: { name: "sgd", lr: 10 }, training: { data: { kind: "arrays", inputs: { x: xs, y: ys } }, steps: 8, logEvery: 1 } });
    const lines: string[] = [];
    await main(dir, [], { log: (l) => lines.push(l), progress: false }).catch((e: Error) => lines.push(e.message));
    expect(lines.filter((l) => /warning: the loss is diverging/.test(l)).length).toBe(1);
    expect(lines.find((l) => /diverging/.test(l))).toMatch(/learning rate 10 is probably too high \(try --lr 1\.0\)/);
  });

  it("refuses to train a bundle whose graph has no loss instead of returning NaN", async () => {
    const fx = writeFixture(join(root, "noloss"));
    const file = join(fx.dir, "manifest.json");
    const m = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
    delete m["loss"];
    writeFileSync(file, JSON.stringify(m));
    const { load } = await import("../../runtime/load.js");
    const t = await load(fx.dir);
    expect(() => t.step({ x: new Float32Array(8), y: new Int32Array(4) })).toThrow(/step\(\) needs a loss, and graph "fixture" has none/);
    expect(t.predict({ x: new Float32Array(8) })["logits"]!.length).toBe(12);
  });

  it("NaN in the data is named as the data's, at its example, not blamed on the learning rate", async () => {
    const dir = bundle();
    const file = join(dir, "data.safetensors");
    const { tensors } = loadSafetensors(file);
    const x = Float32Array.from(tensors["x"]!.data);
    x[7] = NaN;
    saveSafetensors(file, { x: { shape: tensors["x"]!.shape, data: x }, y: tensors["y"]! });
    await expect(train(dir, ["--steps", "2"])).rejects.toThrow(/data\.safetensors: tensor "x": value NaN at example 3 \(index 7\) is not finite/);
    const y = Int32Array.from(tensors["y"]!.data);
    y[5] = 3;
    saveSafetensors(file, { x: tensors["x"]!, y: { shape: tensors["y"]!.shape, data: y } });
    await expect(train(dir, ["--steps", "2"])).rejects.toThrow(/tensor "y": value 3 at example 5 \(index 5\) is not a class index in \[0, 3\)/);
  });
});
