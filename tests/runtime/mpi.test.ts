// Data-parallel training on 2 MPI ranks (Open MPI on loopback): the same loss
// curve and test accuracy as one process on the same global batch, params
// bit-identical across ranks, a dead rank ends the job, --resume continues
// the curve. Every mpirun is bounded by a timeout and killed with its ranks.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compile } from "../../compiler/compile.js";
import { main } from "../../runtime/trainer.js";
import { parseCsv } from "../../runtime/gradNorms.js";
import { gradientRanges } from "../../runtime/dataParallel.js";
import { readManifest } from "../../runtime/load.js";
import * as xor from "../../examples/xor/model.js";
import * as mnist from "../../examples/mnist/model.js";
import { hasMpirun, mpirun, rankPids } from "./mpiRun.js";
import { waitFor } from "../helpers.js";

const root = mkdtempSync(join(tmpdir(), "gradc-mpi-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const quiet = { log: () => {}, progress: false };

/** The loss of every logged step of a run's logs/loss.csv. */
function curve(out: string): Map<number, number> {
  const [, ...rows] = parseCsv(readFileSync(join(out, "logs", "loss.csv"), "utf8"));
  return new Map(rows.map((r) => [Number(r[0]), Number(r[2])]));
}

/**
 * Writes a script for mpirun that loads `bundle` data-parallel (as `t`, on
 * `comm`, checking replicas every `checkEvery` steps, with `prelude` run
 * first and `loadOptions` added to load's), runs `body`, and ends MPI.
 */
function writeWorker(file: string, bundle: string, checkEvery: number, body: string, extra: { prelude?: string; loadOptions?: string } = {}): string {
  const runtime = (name: string) => JSON.stringify(join(bundle, "runtime", name));
  const head = [
    `import { load } from ${runtime("load.js")};`,
    `import { mpiWorld } from ${runtime("mpi.js")};`,
    `import { createHostDevice } from ${runtime("hostDevice.js")};`,
    `import { writeFileSync } from "node:fs";`,
    extra.prelude ?? "",
    `const comm = mpiWorld();`,
    `const t = await load(${JSON.stringify(bundle)}, { ${extra.loadOptions ?? ""} dataParallel: { communicator: comm, checkEvery: ${checkEvery} } });`,
  ];
  writeFileSync(file, [...head, body, "comm.finalize();", ""].join("\n"));
  return file;
}

/** Asserts two loss curves agree at every step of `steps` within `rtol`, relative. */
function expectSameCurve(actual: Map<number, number>, expected: Map<number, number>, steps: number, rtol: number): void {
  for (let s = 1; s <= steps; s++) {
    const a = actual.get(s);
    const e = expected.get(s);
    expect(a, `loss at step ${s}`).toBeTypeOf("number");
    expect(Math.abs(a! - e!) / Math.abs(e!), `step ${s}: ${a} vs ${e}`).toBeLessThanOrEqual(rtol);
  }
}

describe("--mpi without MPI", () => {
  it("fails with a message that says what to install", async () => {
    const dir = join(root, "xor-nompi");
    compile(xor.default, { ...xor.config, outDir: dir });
    const saved = process.env["GRADC_MPI_LIBRARY"];
    process.env["GRADC_MPI_LIBRARY"] = "libgradc-no-such-mpi.so.0";
    try {
      await expect(main(dir, ["--mpi", "--steps", "1"], quiet)).rejects.toThrow(/cannot load the MPI library libgradc-no-such-mpi\.so\.0.*apt-get install openmpi-bin libopenmpi-dev/);
    } finally {
      if (saved === undefined) delete process.env["GRADC_MPI_LIBRARY"];
      else process.env["GRADC_MPI_LIBRARY"] = saved;
    }
  });

  it("the compiler lays every gradient out in one contiguous block (one all-reduce per step)", () => {
    for (const [name, fusion] of [["fused", true], ["unfused", false]] as const) {
      const dir = join(root, `mnist-layout-${name}`);
      compile(mnist.default, { ...mnist.config, fusion, outDir: dir });
      const m = readManifest(dir);
      const ranges = gradientRanges(m);
      expect(ranges, name).toHaveLength(1);
      expect(ranges[0]!.length).toBe(m.params.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0));
    }
  });
});

describe.skipIf(!hasMpirun())("2 ranks on loopback (needs mpirun: apt-get install openmpi-bin libopenmpi-dev)", () => {
  // XOR: the 4 rows of the table are one global batch; each of the 2 ranks takes 2 rows
  const xorOne = join(root, "xor-batch4");
  const xorTwo = join(root, "xor-batch2");
  const xorConfig = { ...xor.config, training: { ...xor.config.training!, logEvery: 1 } };
  beforeAll(() => {
    compile(xor.xorModel(4), { ...xorConfig, outDir: xorOne });
    compile(xor.xorModel(2), { ...xorConfig, outDir: xorTwo });
  }, 120_000);

  it("xor: the loss curve of 2 ranks is one process's on the same global batch (1e-5 relative, 100 steps)", async () => {
    await main(xorOne, ["--steps", "100", "--out", join(root, "xor-one")], quiet);
    const run = await mpirun(2, [join(xorTwo, "train.js"), "--mpi", "--steps", "100", "--out", join(root, "xor-two")]);
    expect(run.code, run.output).toBe(0);
    expect(run.output).toMatch(/global batches of 2 × 2 ranks/);
    expect(run.output).toMatch(/params bit-identical on all 2 ranks/);
    expect(run.output).toMatch(/all-reduce: 132 bytes of gradients per step in 1 call, \d+\.\d+ ms per step/);
    expectSameCurve(curve(join(root, "xor-two")), curve(join(root, "xor-one")), 100, 1e-5);
    // rank 0 alone wrote logs and checkpoints: one header line, 100 steps
    expect(readFileSync(join(root, "xor-two", "logs", "loss.csv"), "utf8").trim().split("\n")).toHaveLength(101);
  }, 120_000);

  it("gradc train BUNDLE --mpi is the same launcher", async () => {
    const run = await mpirun(2, ["bin/gradc.mjs", "train", xorTwo, "--mpi", "--steps", "4", "--out", join(root, "xor-cli")]);
    expect(run.code, run.output).toBe(0);
    expect(run.output).toMatch(/training xor: 4 steps, 4 examples, global batches of 2 × 2 ranks/);
    // rank 0 alone prints
    expect(run.output.match(/^training xor/gm)).toHaveLength(1);
    expect(curve(join(root, "xor-cli")).get(4)).toBe(curve(join(root, "xor-two")).get(4));
  }, 120_000);

  it("params are bit-identical on every rank after training, and every rank resumes from rank 0's checkpoint", async () => {
    const out = join(root, "xor-worker");
    execFileSync("mkdir", ["-p", out]);
    // rank 0 saves a checkpoint after 5 steps; every rank restores it (rank 1 from a path that does not exist
    // on its side), trains 30 more steps and writes its own params
    const worker = writeWorker(
      join(out, "worker.mjs"),
      xorTwo,
      0,
      `const rows = { x: [[0, 0, 0, 1], [1, 0, 1, 1]][comm.rank], y: [[0, 1], [1, 0]][comm.rank] };
for (let i = 0; i < 5; i++) t.step(rows);
const file = ${JSON.stringify(join(out, "ckpt.safetensors"))};
if (comm.rank === 0) t.save(file);
for (let i = 0; i < 7; i++) t.step(rows);
t.restore(comm.rank === 0 ? file : "/no/such/checkpoint");
const resumedAt = t.stepCount;
for (let i = 0; i < 30; i++) t.step(rows);
const parts = t.params.names().map((n) => Buffer.from(t.params.get(n).buffer));
writeFileSync(${JSON.stringify(out)} + "/rank" + comm.rank + ".bin", Buffer.concat(parts));
console.log("rank " + comm.rank + " resumed at " + resumedAt);`,
    );
    const run = await mpirun(2, [worker]);
    expect(run.code, run.output).toBe(0);
    expect(run.output).toMatch(/rank 1 resumed at 5/);
    const [a, b] = [readFileSync(join(out, "rank0.bin")), readFileSync(join(out, "rank1.bin"))];
    expect(a.length).toBe(4 * (2 * 8 + 8 + 8 + 1));
    expect(b.equals(a)).toBe(true);
  }, 120_000);

  it("a device whose buffers are not host arrays trains the same through host staging, bit for bit", async () => {
    const out = join(root, "xor-staged");
    execFileSync("mkdir", ["-p", out]);
    const body = (tag: string) => `const rows = { x: [[0, 0, 0, 1], [1, 0, 1, 1]][comm.rank], y: [[0, 1], [1, 0]][comm.rank] };
for (let i = 0; i < 25; i++) t.step(rows);
writeFileSync(${JSON.stringify(out)} + "/${tag}" + comm.rank + ".bin", Buffer.concat(t.params.names().map((n) => Buffer.from(t.params.get(n).buffer))));`;
    // every call forwarded to a host device, but no live views: the collectives must copy
    const prelude = `let reads = 0;
const staged = async (m, d) => { const h = await createHostDevice(m, d); return {
  backend: "staged", synchronous: true,
  write: (s, v) => h.write(s, v), writeScalar: (s, v) => h.writeScalar(s, v), read: (s) => (reads++, h.read(s)),
  scalar: (s) => h.scalar(s), norm: (s) => h.norm(s), run: (e) => h.run(e), kernels: (l) => h.kernels(l), runKernel: (n) => h.runKernel(n) }; };`;
    const host = await mpirun(2, [writeWorker(join(out, "host.mjs"), xorTwo, 10, body("host"))]);
    expect(host.code, host.output).toBe(0);
    const staged = await mpirun(2, [writeWorker(join(out, "staged.mjs"), xorTwo, 10, `${body("staged")}\nconsole.log("rank " + comm.rank + " reads " + reads);`, { prelude, loadOptions: "device: staged," })]);
    expect(staged.code, staged.output).toBe(0);
    // at least one read of the gradient block per step
    for (const r of [0, 1]) expect(Number(new RegExp(`rank ${r} reads (\\d+)`).exec(staged.output)?.[1])).toBeGreaterThanOrEqual(25);
    const want = readFileSync(join(out, "host0.bin"));
    for (const f of ["host1.bin", "staged0.bin", "staged1.bin"]) expect(readFileSync(join(out, f)).equals(want), f).toBe(true);
  }, 120_000);

  it("a divergence between ranks is caught by the all-reduced hash, with a clear error on every rank", async () => {
    const out = join(root, "xor-diverge");
    execFileSync("mkdir", ["-p", out]);
    const worker = writeWorker(
      join(out, "worker.mjs"),
      xorTwo,
      4,
      `const rows = { x: [0, 0, 0, 1], y: [0, 1] };
for (let i = 0; i < 2; i++) t.step(rows);
// one rank's params drift
if (comm.rank === 1) { const w = t.params.get("b2"); w[0] = w[0] + 1e-3; t.params.set("b2", w); }
try { for (let i = 0; i < 2; i++) t.step(rows); console.log("rank " + comm.rank + ": no error"); }
catch (e) { console.log("rank " + comm.rank + " caught: " + e.message); }`,
    );
    const run = await mpirun(2, [worker]);
    expect(run.code, run.output).toBe(0);
    for (const r of [0, 1]) expect(run.output).toMatch(new RegExp(`rank ${r} caught: the params of the 2 ranks differ after step 4`));
  }, 120_000);

  it("killing one rank ends the others within seconds, with an error naming the rank (no hang)", async () => {
    const out = join(root, "xor-kill");
    const job = mpirun(2, [join(xorTwo, "train.js"), "--mpi", "--steps", "100000000", "--log-every", "1000", "--check-replicas", "0", "--out", out], { timeoutMs: 90_000 });
    const log = join(out, "logs", "loss.csv");
    await waitFor(() => existsSync(log) && readFileSync(log, "utf8").split("\n").length > 3, 60_000);
    const pids = rankPids(job.pid);
    expect(pids.size, "rank processes found under mpirun").toBe(2);
    const killedAt = Date.now();
    process.kill(pids.get(1)!, "SIGKILL");
    const run = await job;
    const seconds = (Date.now() - killedAt) / 1000;
    expect(run.timedOut, run.output).toBe(false);
    expect(seconds, run.output).toBeLessThan(30);
    expect(run.code).not.toBe(0);
    expect(run.output).toMatch(/rank 1 .*(signal 9|Killed)/);
  }, 120_000);

  it("--resume from rank 0's checkpoint continues the same curve", async () => {
    const whole = join(root, "xor-whole");
    const parts = join(root, "xor-parts");
    const train = join(xorTwo, "train.js");
    const first = await mpirun(2, [train, "--mpi", "--steps", "100", "--out", whole]);
    expect(first.code, first.output).toBe(0);
    const a = await mpirun(2, [train, "--mpi", "--steps", "40", "--out", parts]);
    expect(a.code, a.output).toBe(0);
    const b = await mpirun(2, [train, "--mpi", "--steps", "100", "--resume", "--out", parts]);
    expect(b.code, b.output).toBe(0);
    expect(b.output).toMatch(/resuming at 40/);
    const [w, p] = [curve(whole), curve(parts)];
    for (let s = 1; s <= 100; s++) expect(p.get(s), `step ${s}`).toBe(w.get(s));
  }, 180_000);

  it("mnist: 2 ranks × 32 follow one process's batch of 64 (1e-5 relative, 100 steps) to the same test accuracy", async () => {
    const one = join(root, "mnist-64");
    const two = join(root, "mnist-32");
    compile(mnist.mnistModel(64), { ...mnist.config, outDir: one });
    compile(mnist.mnistModel(32), { ...mnist.config, outDir: two });
    const args = ["--steps", "100", "--log-every", "1"];
    const single = (await main(one, [...args, "--out", join(root, "mnist-one")], quiet))!;
    const run = await mpirun(2, [join(two, "train.js"), "--mpi", ...args, "--out", join(root, "mnist-two")]);
    expect(run.code, run.output).toBe(0);
    expectSameCurve(curve(join(root, "mnist-two")), curve(join(root, "mnist-one")), 100, 1e-5);
    const acc = /test accuracy (\d+\.\d+)%/.exec(run.output.split("\n").find((l) => l.startsWith("final loss")) ?? "");
    expect(acc, run.output).not.toBeNull();
    expect(Number(acc![1])).toBeCloseTo(100 * single.accuracy!, 2);
  }, 240_000);
});
