// Run under mpirun by bench/mpi.ts: times the in-place sum all-reduce of
// float32 blocks the size of the examples' gradient blocks, alone (no
// training between calls), and prints one JSON line on rank 0.
import { mpiWorld } from "../runtime/mpi.js";

const sizes = process.argv.slice(2).map(Number);
const comm = mpiWorld();
const rounds = 60;
const result: { floats: number; bytes: number; medianMs: number }[] = [];
for (const n of sizes) {
  const block = new Float32Array(n).fill(comm.rank + 1);
  const times: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    comm.allReduceSum(block);
    times.push(performance.now() - t0);
  }
  // the first rounds set up the shared-memory transport
  const steady = times.slice(10).sort((a, b) => a - b);
  result.push({ floats: n, bytes: 4 * n, medianMs: steady[steady.length >> 1]! });
}
if (comm.rank === 0) console.log(JSON.stringify(result));
comm.finalize();
