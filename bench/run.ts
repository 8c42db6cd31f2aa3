// `npm run bench`: the compile report (kernels, peak memory), the MNIST MLP
// step suite (fused vs unfused vs hand-written vs the gpu backend) and, where mpirun exists,
// data-parallel MNIST on 1 and 2 MPI ranks; JSON results go to bench/results/.
// `npm run bench -- report`, `-- mnist`, `-- mpi` or `-- peers` runs one of
// them; `-- --quick` checks the peers' losses only, without timing.
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { compileReport, reportTable } from "./compileReport.js";
import { mnistStepSuite } from "./mnistStep.bench.js";
import { hasMpirun, mpiSuite } from "./mpi.js";
import { peersBench, peersTable } from "./peers/peers.js";

const folder = path.join(path.dirname(fileURLToPath(import.meta.url)), "results");
const flags = process.argv.slice(2).filter((a) => a.startsWith("--"));
const only = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const quick = flags.includes("--quick");
// `--quick` alone is the smoke test: the peers' losses only
const wanted = (name: string) => (only.length === 0 ? !quick || name === "peers" : only.includes(name));

console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? "cpu"} x${os.cpus().length}`);
if (wanted("report")) {
  console.log("\ncompile report (training step of each example):");
  console.log(reportTable(compileReport(folder)));
}
if (wanted("mnist")) {
  console.log("\nMNIST MLP step (batch 128, 784→256→256→10, Adam):");
  const r = await mnistStepSuite(folder);
  const f = (ms: number) => `${ms.toFixed(2)} ms`;
  console.log(`  fused ${f(r.msPerStep.fused)} (${r.kernels.fused} kernels, matmuls in WebAssembly SIMD), fused TypeScript only ${f(r.msPerStep.fusedTs)}`);
  console.log(`  unfused ${f(r.msPerStep.unfused)} (${r.kernels.unfused} kernels), hand-written ${f(r.msPerStep.handwritten)}`);
  const cpu = /llvmpipe|swiftshader/i.test(r.gpuAdapter) ? "a CPU: Mesa's software rasterizer, not a GPU" : "a GPU";
  console.log(`  gpu backend ${f(r.msPerStep.gpu)} (gpu.js on WebGPU, one kernel per node; adapter: ${r.gpuAdapter}, which is ${cpu})`);
  const x = (v: number) => `${v.toFixed(2)}×`;
  console.log(`  speed-up of the fused step: ${x(r.speedup.overUnfused)} over unfused, ${x(r.speedup.overHandwritten)} over hand-written`);
  console.log(`  (fused TypeScript only: ${x(r.speedup.tsOverUnfused)} over unfused, ${x(r.speedup.tsOverHandwritten)} over hand-written)`);
}
if (wanted("mpi")) {
  console.log("\nMNIST MLP data-parallel on MPI (global batch 64, Adam; trainer runs of 400 steps):");
  if (!hasMpirun()) {
    console.log("  skipped: no mpirun (apt-get install openmpi-bin libopenmpi-dev)");
  } else {
    const { runs: rs, alone } = mpiSuite(folder);
    for (const r of rs) {
      console.log(`  ${r.ranks} rank${r.ranks > 1 ? "s" : ""} × ${r.batchPerRank}: ${r.stepsPerSecond.toFixed(1)} steps/s; all-reduce ${(r.allReduceBytes / 1e6).toFixed(2)} MB per step, ${r.allReduceMsPerStep.toFixed(3)} ms per step`);
    }
    const cores = os.cpus().length;
    const [x, m] = alone as [(typeof alone)[0], (typeof alone)[0]];
    console.log(`  the all-reduce alone, 2 ranks: ${x.bytes} B (XOR's gradients) ${(x.medianMs * 1000).toFixed(1)} µs, ${(m.bytes / 1e6).toFixed(2)} MB (MNIST's) ${m.medianMs.toFixed(3)} ms (medians)`);
    console.log(`  speed-up of 2 ranks: ${(rs[1]!.stepsPerSecond / rs[0]!.stepsPerSecond).toFixed(2)}× (${cores} cores: each rank's step is single-threaded here, and the ranks share them with everything else)`);
  }
}
if (wanted("peers")) {
  console.log(`\ngradc beside jax-js, TensorFlow.js (wasm) and PyTorch${quick ? " (quick: losses only)" : ""}; a shared machine, so compare within one run:`);
  const r = await peersBench(folder, { quick });
  console.log(peersTable(r));
  if (r.workloads.some((w) => !w.agree) || !r.sgemm.agree) process.exitCode = 1;
}
console.log(`\nresults in ${path.relative(process.cwd(), folder) || "."}/`);
