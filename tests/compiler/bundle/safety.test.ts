// Bundles that know themselves and compiles that never destroy work: digests
// checked at load, fresh kernels after a recompile in one process, training
// results kept across a recompile, locks, and recovery from a killed compile.
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { compile } from "../../../compiler/compile.js";
import { graph } from "../../../compiler/dsl/graph.js";
import * as nn from "../../../compiler/dsl/nn.js";
import { load } from "../../../runtime/load.js";
import { LOCK_FILE } from "../../../runtime/lock.js";
import { errorMessage } from "../../helpers.js";
import { cleanupBundles, tempBundleDir } from "../harness/harness.js";

afterAll(cleanupBundles);

/** pred = scale · x·w: two models that differ only in a constant. */
const scaled = (scale: number) =>
  graph("scaled", (g) => {
    const x = g.input("x", [2, 2]);
    const y = g.input("y", [2, 1]);
    const w = g.param("w", [2, 1], { init: "ones" });
    const pred = x.matmul(w).mul(g.const(scale));
    return { loss: nn.mse(pred, y), outputs: { pred } };
  });
const feeds = { x: [1, 2, 3, 4], y: [0, 1] };

/** A pid that is certainly not running: a child that has exited. */
const deadPid = (): number => spawnSync(process.execPath, ["-e", ""]).pid!;

describe("a recompiled bundle loaded again in the same process", () => {
  it("runs the new kernels, not the ones Node cached", async () => {
    const dir = tempBundleDir("fresh");
    compile(scaled(1), { outDir: dir, backend: "ts" });
    const first = (await load(dir)).predict({ x: feeds.x })["pred"]!;
    expect(Array.from(first)).toEqual([3, 7]);
    compile(scaled(10), { outDir: dir, backend: "ts" });
    const second = (await load(dir)).predict({ x: feeds.x })["pred"]!;
    expect(Array.from(second)).toEqual([30, 70]);
  });
});

describe("bundles that know themselves", () => {
  it("records a sha256 of every file it wrote and of the graph", () => {
    const dir = tempBundleDir("hashes");
    const r = compile(scaled(1), { outDir: dir, backend: "ts" });
    const hashes = r.manifest.hashes!;
    expect(Object.keys(hashes).sort()).toEqual(r.files.filter((f) => f !== "manifest.json"));
    expect(r.manifest.graphHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it("refuses kernels copied from another model, a truncated step.js and edited weights, naming the file", async () => {
    const a = tempBundleDir("a");
    const b = tempBundleDir("b");
    compile(scaled(1), { outDir: a, backend: "ts" });
    compile(scaled(10), { outDir: b, backend: "ts" });
    copyFileSync(path.join(b, "step.js"), path.join(a, "step.js"));
    expect(await load(a).then(() => "loaded", (e: Error) => e.message)).toMatch(/step\.js: its content .* is not what the manifest recorded/);
    compile(scaled(1), { outDir: a, backend: "ts" });
    const step = readFileSync(path.join(a, "step.js"));
    writeFileSync(path.join(a, "step.js"), step.subarray(0, step.length >> 1));
    expect(await load(a).then(() => "loaded", (e: Error) => e.message)).toMatch(/step\.js: its content/);
    compile(scaled(1), { outDir: a, backend: "ts" });
    const w = readFileSync(path.join(a, "weights.safetensors"));
    w[w.length - 1] ^= 0x40;
    writeFileSync(path.join(a, "weights.safetensors"), w);
    expect(await load(a).then(() => "loaded", (e: Error) => e.message)).toMatch(/weights\.safetensors: its content/);
  });
});

describe("compile never destroys training results", () => {
  it("keeps checkpoints/ and logs/ across a recompile", async () => {
    const dir = tempBundleDir("keep");
    compile(scaled(1), { outDir: dir, backend: "ts" });
    const t = await load(dir);
    t.step(feeds);
    t.save(path.join(dir, "checkpoints", "latest.safetensors"));
    mkdirSync(path.join(dir, "logs"));
    writeFileSync(path.join(dir, "logs", "loss.csv"), "step,epoch,loss,lr\n1,1,0.5,0.1\n");
    compile(scaled(1), { outDir: dir, backend: "ts", gradClip: 1 });
    expect(JSON.parse(readFileSync(path.join(dir, "manifest.json"), "utf8")).gradClip).toBe(1);
    expect(readFileSync(path.join(dir, "logs", "loss.csv"), "utf8")).toContain("1,1,0.5,0.1");
    const again = await load(dir);
    again.restore(path.join(dir, "checkpoints", "latest.safetensors"));
    expect(again.stepCount).toBe(1);
    expect(readdirSync(path.dirname(dir)).filter((f) => f.startsWith(path.basename(dir) + "."))).toEqual([]);
  });

  it("refuses a checkpoint of another graph at --resume time rather than restoring it silently", async () => {
    const dir = tempBundleDir("other-graph");
    compile(scaled(1), { outDir: dir, backend: "ts", optimizer: { name: "sgd", lr: 0.1 } });
    const t = await load(dir);
    t.save(path.join(dir, "checkpoints", "latest.safetensors"));
    compile(scaled(10), { outDir: dir, backend: "ts", optimizer: { name: "sgd", lr: 0.1 } });
    const again = await load(dir);
    expect(errorMessage(() => again.restore(path.join(dir, "checkpoints", "latest.safetensors")))).toMatch(/was saved from another graph/);
  });

  it("refuses a folder whose manifest merely says it is a bundle, and leaves it untouched", () => {
    const dir = tempBundleDir("fake");
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, "manifest.json"), JSON.stringify({ format: "gradc-bundle", version: 1 }));
    writeFileSync(path.join(dir, "thesis.tex"), "years of work");
    expect(errorMessage(() => compile(scaled(1), { outDir: dir, backend: "ts" }))).toMatch(/holds no gradc bundle \(.*name is missing/);
    expect(readFileSync(path.join(dir, "thesis.tex"), "utf8")).toBe("years of work");
  });

  it("refuses a folder a live trainer holds, naming it; takes over a stale lock", () => {
    const dir = tempBundleDir("locked");
    compile(scaled(1), { outDir: dir, backend: "ts" });
    // the test runner's parent process is alive and is not this process
    writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: process.ppid, what: "train.js", since: "2026-01-01T00:00:00.000Z" }));
    expect(errorMessage(() => compile(scaled(10), { outDir: dir, backend: "ts" }))).toMatch(new RegExp(`is in use by train\\.js \\(pid ${process.ppid}`));
    expect(JSON.parse(readFileSync(path.join(dir, "manifest.json"), "utf8")).name).toBe("scaled");
    writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: deadPid(), what: "train.js", since: "2026-01-01T00:00:00.000Z" }));
    compile(scaled(10), { outDir: dir, backend: "ts" });
    expect(existsSync(path.join(dir, LOCK_FILE))).toBe(false);
  });

  it("recovers from a compile killed mid-swap: the moved-aside bundle comes back with its checkpoints", async () => {
    const dir = tempBundleDir("killed");
    compile(scaled(1), { outDir: dir, backend: "ts" });
    const t = await load(dir);
    t.step(feeds);
    t.save(path.join(dir, "checkpoints", "latest.safetensors"));
    // what a kill between the two renames leaves: the old bundle aside, a half-written new one
    const pid = deadPid();
    const { renameSync } = await import("node:fs");
    renameSync(dir, `${dir}.old-${pid}-1`);
    mkdirSync(`${dir}.tmp-${pid}-1`);
    writeFileSync(`${dir}.tmp-${pid}-1/forward.js`, "half");
    compile(scaled(1), { outDir: dir, backend: "ts" });
    expect(existsSync(path.join(dir, "checkpoints", "latest.safetensors"))).toBe(true);
    expect(readdirSync(path.dirname(dir)).filter((f) => f.startsWith(path.basename(dir) + "."))).toEqual([]);
  });
});
