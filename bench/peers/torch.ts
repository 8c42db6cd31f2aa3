// The optional PyTorch column: finds a Python whose `import torch` works,
// hands it the workloads' arrays in one file, and reads back one JSON line
// per workload. With GRADC_OPENBLAS_DIR set (a folder holding
// libopenblas.so.0, see shared/PERFORMANCE.md) torch runs over OpenBLAS.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { BLOCK } from "./workloads.js";
import type { Workload } from "./workloads.js";

/** What the PyTorch script reports for one workload (or the sgemm). */
export interface TorchResult {
  readonly name: string;
  readonly losses?: readonly number[];
  readonly firstRow?: readonly number[];
  /** Median step (or product) time, absent when not timed. */
  readonly ms: number | null;
}

const script = path.join(path.dirname(fileURLToPath(import.meta.url)), "torchPeer.py");

/** A Python that imports torch, or undefined. */
export function torchPython(): string | undefined {
  for (const python of ["python3", "/usr/bin/python3"]) {
    const r = spawnSync(python, ["-c", "import torch"], { encoding: "utf8", timeout: 60_000 });
    if (r.status === 0) return python;
  }
  return undefined;
}

/** Runs the workloads and the n×n sgemm in PyTorch on `threads` threads; undefined when torch is missing. */
export function runTorch(
  workloads: readonly Workload[],
  sgemm: { a: Float32Array; b: Float32Array; n: number },
  options: { maxTime: number; minSamples: number; threads: number },
): { results: TorchResult[]; blas: string } | undefined {
  const python = torchPython();
  if (!python) return undefined;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  const put = (data: Float32Array | Int32Array, shape: readonly number[]) => {
    chunks.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    const spec = { offset, shape, dtype: data instanceof Int32Array ? "i32" : "f32" };
    offset += data.byteLength;
    return spec;
  };
  const header = {
    maxTime: options.maxTime,
    minSamples: options.minSamples,
    block: BLOCK,
    workloads: workloads.map((w) => ({
      name: w.name,
      optimizer: w.optimizer.name,
      lr: w.optimizer.lr,
      params: Object.fromEntries(Object.entries(w.params).map(([n, t]) => [n, put(t.data, t.shape)])),
      x: put(w.inputs["x"]!.data, w.inputs["x"]!.shape),
      // torch's cross_entropy takes the labels themselves
      target: w.labels ? put(w.labels.data, [w.labels.data.length]) : put(w.inputs["y"]!.data, w.inputs["y"]!.shape),
    })),
    sgemm: { n: sgemm.n, a: put(sgemm.a, [sgemm.n, sgemm.n]), b: put(sgemm.b, [sgemm.n, sgemm.n]) },
  };
  const dir = mkdtempSync(path.join(os.tmpdir(), "gradc-torch-"));
  try {
    const file = path.join(dir, "workloads.bin");
    writeFileSync(file, Buffer.concat([Buffer.from(JSON.stringify(header) + "\n"), ...chunks.map((c) => Buffer.from(c))]));
    const env: NodeJS.ProcessEnv = { ...process.env, OPENBLAS_NUM_THREADS: String(options.threads), OMP_NUM_THREADS: String(options.threads) };
    // the machine's OpenBLAS tuning variables are for tests; the benchmark lets OpenBLAS pick its kernels
    delete env["OPENBLAS_CORETYPE"];
    delete env["OPENBLAS_L2_SIZE"];
    const blasDir = process.env["GRADC_OPENBLAS_DIR"];
    if (blasDir) env["LD_LIBRARY_PATH"] = [blasDir, env["LD_LIBRARY_PATH"]].filter(Boolean).join(":");
    const r = spawnSync(python, [script, file, String(options.threads)], { encoding: "utf8", env, timeout: 30 * 60_000 });
    if (r.status !== 0) throw new Error(`PyTorch peer failed (${python} ${script}): ${r.stderr || r.error?.message}`);
    const results = r.stdout.trim().split("\n").map((line) => JSON.parse(line) as TorchResult);
    return { results, blas: blasDir ? `OpenBLAS from ${blasDir}` : "the BLAS torch links by default" };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
