// Data-parallel training on MPI (`npm run bench -- mpi`): the MNIST MLP on a
// global batch of 64, as 1 rank × 64 and as 2 ranks × 32, each run by the
// generated trainer under mpirun; steps per second and the gradient
// all-reduce's bytes and time per step. Runs only where mpirun exists.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { compile } from "../compiler/compile.js";
import { config, mnistModel } from "../examples/mnist/model.js";

/** One configuration's numbers. */
export interface MpiRunResult {
  readonly ranks: number;
  readonly batchPerRank: number;
  readonly steps: number;
  readonly stepsPerSecond: number;
  /** Gradient bytes all-reduced per step, and the time rank 0 spent in the all-reduce per step (waiting included). */
  readonly allReduceBytes: number;
  readonly allReduceMsPerStep: number;
}

const GLOBAL_BATCH = 64;

/** Whether Open MPI's mpirun is on the PATH. */
export function hasMpirun(): boolean {
  return spawnSync("mpirun", ["--version"], { stdio: "ignore" }).status === 0;
}

/** Trains `steps` steps on `ranks` ranks and reads rank 0's report. */
function run(ranks: number, steps: number, root: string): MpiRunResult {
  const batchPerRank = GLOBAL_BATCH / ranks;
  const dir = path.join(root, `mnist-${batchPerRank}`);
  compile(mnistModel(batchPerRank), { ...config, outDir: dir });
  const asRoot = process.getuid?.() === 0 ? ["--allow-run-as-root"] : [];
  const args = [...asRoot, "--oversubscribe", "-np", String(ranks), process.execPath, path.join(dir, "train.js"), "--mpi", "--steps", String(steps), "--no-progress", "--check-replicas", "0"];
  const r = spawnSync("mpirun", args, { encoding: "utf8", timeout: 300_000 });
  const out = `${r.stdout}${r.stderr}`;
  if (r.status !== 0) throw new Error(`mpirun ${args.join(" ")} failed (${r.status ?? r.signal}):\n${out}`);
  const time = /\((\d+) steps in ([\d.]+) s\)/.exec(out);
  const reduce = /all-reduce: ([\d.]+) KiB of gradients per step in \d+ calls?, ([\d.]+) ms per step/.exec(out);
  if (!time || !reduce) throw new Error(`mpi bench: could not read the trainer's report:\n${out}`);
  return {
    ranks,
    batchPerRank,
    steps: Number(time[1]),
    stepsPerSecond: Number(time[1]) / Number(time[2]),
    allReduceBytes: Math.round(Number(reduce[1]) * 1024),
    allReduceMsPerStep: Number(reduce[2]),
  };
}

/** 1 and 2 ranks on one global batch; results go to `folder`/mpi.summary.json. */
export function mpiSuite(folder: string, steps = 400): MpiRunResult[] {
  const root = mkdtempSync(path.join(os.tmpdir(), "gradc-bench-mpi-"));
  try {
    const results = [run(1, steps, root), run(2, steps, root)];
    mkdirSync(folder, { recursive: true });
    writeFileSync(path.join(folder, "mpi.summary.json"), JSON.stringify({ globalBatch: GLOBAL_BATCH, cores: os.cpus().length, results }, null, 2) + "\n");
    return results;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
