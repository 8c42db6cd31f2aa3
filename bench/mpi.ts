// Data-parallel training on MPI (`npm run bench -- mpi`): the MNIST MLP on a
// global batch of 64, as 1 rank × 64 and as 2 ranks × 32, each run by the
// generated trainer under mpirun; steps per second and the gradient
// all-reduce's bytes and time per step; and the all-reduce alone on blocks
// the size of the examples' gradients. Runs only where mpirun exists. The
// ranks yield the core while they wait (mpi_yield_when_idle): on a machine
// with fewer free cores than ranks, spinning would take the other rank's.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
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

/** Runs `node ARGS` on `ranks` ranks of this machine; returns their output. */
function mpirun(ranks: number, node: readonly string[]): string {
  const asRoot = process.getuid?.() === 0 ? ["--allow-run-as-root"] : [];
  const args = [...asRoot, "--oversubscribe", "--mca", "mpi_yield_when_idle", "1", "-np", String(ranks), process.execPath, ...node];
  const r = spawnSync("mpirun", args, { encoding: "utf8", timeout: 300_000 });
  const out = `${r.stdout}${r.stderr}`;
  if (r.status !== 0) throw new Error(`mpirun ${args.join(" ")} failed (${r.status ?? r.signal}):\n${out}`);
  return out;
}

/** The all-reduce alone on 2 ranks: the median time of one call per block size. */
export function allReduceAlone(floats: readonly number[]): { floats: number; bytes: number; medianMs: number }[] {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), "allReduce.ts");
  const out = mpirun(2, ["--import", "tsx", script, ...floats.map(String)]);
  return JSON.parse(out.trim().split("\n").pop()!) as { floats: number; bytes: number; medianMs: number }[];
}

/** Trains `steps` steps on `ranks` ranks and reads rank 0's report. */
function run(ranks: number, steps: number, root: string): MpiRunResult {
  const batchPerRank = GLOBAL_BATCH / ranks;
  const dir = path.join(root, `mnist-${batchPerRank}`);
  compile(mnistModel(batchPerRank), { ...config, outDir: dir });
  const out = mpirun(ranks, [path.join(dir, "train.js"), "--mpi", "--steps", String(steps), "--no-progress", "--check-replicas", "0"]);
  const time = /\((\d+) steps in ([\d.]+) s\)/.exec(out);
  const reduce = /all-reduce: (\d+) bytes of gradients per step in \d+ calls?, ([\d.]+) ms per step/.exec(out);
  if (!time || !reduce) throw new Error(`mpi bench: could not read the trainer's report:\n${out}`);
  return {
    ranks,
    batchPerRank,
    steps: Number(time[1]),
    stepsPerSecond: Number(time[1]) / Number(time[2]),
    allReduceBytes: Number(reduce[1]),
    allReduceMsPerStep: Number(reduce[2]),
  };
}

/** The gradient blocks of the examples, in floats: XOR 2→8→1 and the MNIST MLP 784→256→256→10. */
export const GRADIENT_FLOATS = { xor: 2 * 8 + 8 + 8 + 1, mnist: 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10 } as const;

/** 1 and 2 ranks on one global batch, and the all-reduce alone; results go to `folder`/mpi.summary.json. */
export function mpiSuite(folder: string, steps = 400): { runs: MpiRunResult[]; alone: ReturnType<typeof allReduceAlone> } {
  const root = mkdtempSync(path.join(os.tmpdir(), "gradc-bench-mpi-"));
  try {
    const runs = [run(1, steps, root), run(2, steps, root)];
    const alone = allReduceAlone([GRADIENT_FLOATS.xor, GRADIENT_FLOATS.mnist]);
    mkdirSync(folder, { recursive: true });
    writeFileSync(path.join(folder, "mpi.summary.json"), JSON.stringify({ globalBatch: GLOBAL_BATCH, cores: os.cpus().length, runs, alone }, null, 2) + "\n");
    return { runs, alone };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
