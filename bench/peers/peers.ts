// The peers' benchmark: each workload as gradc, jax-js (wasm, jit),
// TensorFlow.js (wasm) and, when `import torch` works, PyTorch, from the same
// weights and data. First the losses of two steps are compared (the second is
// the loss after one update: they must agree to float32 rounding), then each
// step is timed (benny for the JS systems) and the table gives peer time /
// gradc time. The sgemm row times C = A·B (512³) and reports GFLOP/s, gradc
// on 1 and 2 threads. `quick` checks the losses only.
import b from "benny";
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { gradcStep } from "./gradc.js";
import { jaxSgemm, jaxStep } from "./jax.js";
import { tfjsSgemm, tfjsStep } from "./tfjs.js";
import type { PeerStep } from "./tfjs.js";
import { runTorch } from "./torch.js";
import { sgemmOperands, workloads } from "./workloads.js";
import type { Workload } from "./workloads.js";
import { sharedProduct } from "../sgemm.js";

export const SYSTEMS = ["gradc", "jax", "tfjs", "torch"] as const;
export type System = (typeof SYSTEMS)[number];

/** Relative difference allowed between two systems' losses: float32 rounding through different summation orders. */
export const LOSS_RTOL = 1e-4;

export interface PeersOptions {
  /** Losses only, no timing. */
  readonly quick?: boolean;
  /** Run the PyTorch column when torch imports (default true). */
  readonly torch?: boolean;
  /** Seconds benny spends on each case (default 2). */
  readonly maxTime?: number;
  /** Only these workloads (default all). */
  readonly only?: readonly Workload["name"][];
}

export interface WorkloadResult {
  readonly name: string;
  readonly title: string;
  /** Losses of the first two steps per system (the second is the loss after one update). */
  readonly losses: Partial<Record<System, readonly number[]>>;
  /** Why a system could not run the workload. */
  readonly skipped: Partial<Record<System, string>>;
  /** Largest relative difference from gradc's loss after one update, and whether it is within LOSS_RTOL. */
  readonly worstRelDiff: number;
  readonly agree: boolean;
  /** Median step time in ms per system (timed runs only). */
  readonly ms: Partial<Record<System, number>>;
}

export interface SgemmResult {
  readonly n: number;
  /** GFLOP/s per system; gradc on 1 and 2 threads. */
  readonly gflops: Partial<Record<System | "gradc2", number>>;
  readonly agree: boolean;
}

export interface PeersResult {
  readonly machine: string;
  readonly workloads: WorkloadResult[];
  readonly sgemm: SgemmResult;
  readonly torchBlas?: string;
}

type Summary = Awaited<ReturnType<typeof b.suite>>;

/** Median seconds of each case of a benny suite. */
async function timeCases(name: string, cases: Record<string, () => unknown>, folder: string, maxTime: number): Promise<Record<string, number>> {
  const opts = { maxTime, minSamples: 5 };
  const summary: Summary = await b.suite(
    name,
    ...Object.entries(cases).map(([n, fn]) => b.add(n, fn, opts)),
    b.cycle(),
    b.save({ file: `peers-${name}`, folder, format: "json", details: true }),
  );
  return Object.fromEntries(summary.results.map((r) => [r.name, r.details.median]));
}

const relDiff = (a: number, ref: number) => Math.abs(a - ref) / Math.max(Math.abs(ref), 1e-30);

/** Runs the benchmark; results go to `folder`/peers.json (and benny's JSON per workload). */
export async function peersBench(folder: string, options: PeersOptions = {}): Promise<PeersResult> {
  const quick = options.quick ?? false;
  const maxTime = options.maxTime ?? 2;
  const ws = workloads().filter((w) => !options.only || options.only.includes(w.name));
  const sg = sgemmOperands();
  const torch = (options.torch ?? true) ? runTorch(ws, sg, { maxTime: quick ? 0 : maxTime, minSamples: 5, threads: 1 }) : undefined;
  const results: WorkloadResult[] = [];
  for (const w of ws) {
    const steps: Partial<Record<System, PeerStep>> = {};
    const skipped: Partial<Record<System, string>> = {};
    const losses: Partial<Record<System, number[]>> = {};
    const gradc = await gradcStep(w);
    steps.gradc = { step: () => gradc.step(), dispose: () => gradc.dispose() };
    for (const [system, make] of [["jax", jaxStep], ["tfjs", tfjsStep]] as const) {
      try {
        const s = await make(w);
        losses[system] = [await s.step(), await s.step()];
        steps[system] = s;
      } catch (e) {
        skipped[system] = (e as Error).message.split("\n")[0]!;
      }
    }
    losses.gradc = [gradc.step(), gradc.step()];
    const t = torch?.results.find((r) => r.name === w.name);
    if (t?.losses) losses.torch = [...t.losses];
    else if (!torch) skipped.torch = "python3 cannot import torch";
    const ref = losses.gradc[1]!;
    const worstRelDiff = Math.max(...Object.values(losses).map((l) => Math.max(relDiff(l[1]!, ref), relDiff(l[0]!, losses.gradc![0]!))));
    const ms: Partial<Record<System, number>> = {};
    if (!quick) {
      const cases: Record<string, () => unknown> = {};
      for (const [system, s] of Object.entries(steps)) cases[system] = system === "jax" ? async () => await s.step() : () => s.step();
      const seconds = await timeCases(w.name, cases, folder, maxTime);
      for (const [system, sec] of Object.entries(seconds)) ms[system as System] = 1000 * sec;
      if (t?.ms != null) ms.torch = t.ms;
    }
    for (const s of Object.values(steps)) s.dispose();
    results.push({ name: w.name, title: w.title, losses, skipped, worstRelDiff, agree: worstRelDiff <= LOSS_RTOL, ms });
  }
  const sgemm = await sgemmBench(sg, folder, quick, maxTime, torch?.results.find((r) => r.name === "sgemm"));
  const out: PeersResult = {
    machine: `node ${process.version}, ${os.cpus()[0]?.model ?? "cpu"} x${os.availableParallelism()}`,
    workloads: results,
    sgemm,
    ...(torch ? { torchBlas: torch.blas } : {}),
  };
  mkdirSync(folder, { recursive: true });
  writeFileSync(path.join(folder, quick ? "peers-quick.json" : "peers.json"), JSON.stringify(out, null, 2) + "\n");
  return out;
}

/** The 512³ sgemm: gradc's SIMD product on 1 and 2 threads, jax-js, tfjs, torch; first rows compared. */
async function sgemmBench(
  sg: { a: Float32Array; b: Float32Array; n: number },
  folder: string,
  quick: boolean,
  maxTime: number,
  torch: { firstRow?: readonly number[]; ms: number | null } | undefined,
): Promise<SgemmResult> {
  const { a, b: bm, n } = sg;
  const one = await sharedProduct(n, n, n, a, bm, 1);
  const two = await sharedProduct(n, n, n, a, bm, 2);
  const jax = await jaxSgemm(a, bm, n);
  const tf = await tfjsSgemm(a, bm, n);
  try {
    one.run();
    const ref = one.result().subarray(0, n);
    const rows = [await jax.firstRow(), tf.firstRow(), ...(torch?.firstRow ? [Float32Array.from(torch.firstRow)] : [])];
    const agree = rows.every((r) => r.every((v, j) => Math.abs(v - ref[j]!) <= 1e-3 * (1 + Math.abs(ref[j]!))));
    const gflops: SgemmResult["gflops"] = {};
    if (!quick) {
      const seconds = await timeCases(
        "sgemm",
        { gradc: () => one.run(), gradc2: () => two.run(), jax: async () => await jax.run(), tfjs: () => tf.run() },
        folder,
        maxTime,
      );
      const flop = 2 * n * n * n;
      for (const [system, sec] of Object.entries(seconds)) gflops[system as System] = flop / sec / 1e9;
      if (torch?.ms) gflops.torch = flop / (torch.ms / 1000) / 1e9;
    }
    return { n, gflops, agree };
  } finally {
    await one.close();
    await two.close();
    jax.dispose();
    tf.dispose();
  }
}

const NAMES: Record<System, string> = { gradc: "gradc", jax: "jax-js 0.1.25 (wasm, jit)", tfjs: "tfjs-wasm 4.22", torch: "PyTorch" };

/** The results as text: losses and their agreement, then times with peer/gradc ratios. */
export function peersTable(r: PeersResult): string {
  const lines: string[] = [r.machine, ""];
  const fmt = (ms: number) => (ms < 1 ? `${(ms * 1000).toFixed(1)} µs` : `${ms.toFixed(2)} ms`);
  lines.push(`loss after one update (all from the same weights and data; must agree within ${LOSS_RTOL} relative):`);
  for (const w of r.workloads) {
    const cells = SYSTEMS.map((s) => (w.losses[s] ? `${s} ${w.losses[s]![1]!.toPrecision(8)}` : `${s} n/a`));
    lines.push(`  ${w.name.padEnd(12)} ${cells.join("  ")}  → ${w.agree ? "agree" : "DISAGREE"} (worst ${w.worstRelDiff.toExponential(1)})`);
    for (const [s, why] of Object.entries(w.skipped)) lines.push(`  ${"".padEnd(12)} ${s}: ${why}`);
  }
  lines.push(`  sgemm        first rows of C ${r.sgemm.agree ? "agree" : "DISAGREE"}`);
  if (r.workloads.some((w) => Object.keys(w.ms).length > 0)) {
    lines.push("", "median step time (ratio = peer time / gradc time; above 1 means gradc is faster):");
    for (const w of r.workloads) {
      const g = w.ms.gradc!;
      const cells = SYSTEMS.slice(1).map((s) => (w.ms[s] === undefined ? `${NAMES[s]} n/a` : `${NAMES[s]} ${fmt(w.ms[s]!)} (${(w.ms[s]! / g).toFixed(2)}×)`));
      lines.push(`  ${w.title}`, `    gradc ${fmt(g)} | ${cells.join(" | ")}`);
    }
    const gf = r.sgemm.gflops;
    const cell = (s: System) => (gf[s] === undefined ? `${NAMES[s]} n/a` : `${NAMES[s]} ${gf[s]!.toFixed(1)} (${(gf.gradc! / gf[s]!).toFixed(2)}×)`);
    lines.push(
      `  sgemm ${r.sgemm.n}³ (GFLOP/s; ratio = gradc 1-thread rate / peer rate)`,
      `    gradc ${gf.gradc?.toFixed(1)} on 1 thread, ${gf.gradc2?.toFixed(1)} on 2 (${((gf.gradc2 ?? 0) / (gf.gradc ?? 1)).toFixed(2)}×) | ${(["jax", "tfjs", "torch"] as const).map(cell).join(" | ")}`,
    );
    if (r.torchBlas) lines.push(`  (PyTorch on 1 thread over ${r.torchBlas})`);
  }
  return lines.join("\n");
}
