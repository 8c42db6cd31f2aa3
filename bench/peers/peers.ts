// The peers' benchmark: each workload as gradc, jax-js (wasm, jit),
// TensorFlow.js (wasm) and, when `import torch` works, PyTorch, from the same
// weights and data. First the losses of two steps are compared (the second is
// the loss after one update: they must agree to float32 rounding), then each
// step is timed (benny for the JS systems) and the table gives peer time /
// gradc time. gradc runs as a user's trainer runs it, on every core by default
// (`threads`), and beside that on one thread; its losses must be the same
// bits on both. The sgemm row times C = A·B (512³) and reports GFLOP/s.
// `quick` checks the losses only.
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
/** The systems timed: the peers, gradc on the default threads, and gradc on one thread (`gradc1`). */
export type Timed = System | "gradc1";

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
  /** Threads gradc runs on (default `os.availableParallelism()`, a trainer's default); one thread is timed beside it. */
  readonly threads?: number;
}

export interface WorkloadResult {
  readonly name: string;
  readonly title: string;
  /** Losses of the first two steps per system (the second is the loss after one update). */
  readonly losses: Partial<Record<System, readonly number[]>>;
  /** Why a system could not run the workload. */
  readonly skipped: Partial<Record<System, string>>;
  /** Largest relative difference from gradc's loss after one update, and whether it is within LOSS_RTOL (and gradc's losses are the same bits on one thread). */
  readonly worstRelDiff: number;
  readonly agree: boolean;
  /** Whether gradc on one thread gave the same bits of both losses as on its default threads. */
  readonly threadsAgree: boolean;
  /** Median step time in ms per system (timed runs only). */
  readonly ms: Partial<Record<Timed, number>>;
}

export interface SgemmResult {
  readonly n: number;
  /** GFLOP/s per system; gradc on its default threads, and on one (`gradc1`). */
  readonly gflops: Partial<Record<Timed, number>>;
  readonly agree: boolean;
}

export interface PeersResult {
  readonly machine: string;
  /** Threads gradc ran on (its `gradc` columns; `gradc1` is one thread). */
  readonly threads: number;
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
  const threads = Math.min(options.threads ?? os.availableParallelism(), os.availableParallelism());
  const sg = sgemmOperands();
  const torch = (options.torch ?? true) ? runTorch(ws, sg, { maxTime: quick ? 0 : maxTime, minSamples: 5, threads: 1 }) : undefined;
  const results: WorkloadResult[] = [];
  for (const w of ws) {
    const steps: Partial<Record<Timed, PeerStep>> = {};
    const skipped: Partial<Record<System, string>> = {};
    const losses: Partial<Record<System, number[]>> = {};
    const gradc = await gradcStep(w, { threads });
    steps.gradc = gradc;
    // one thread beside it, where the default splits anything
    const gradc1 = gradc.threads > 1 ? await gradcStep(w, { threads: 1 }) : undefined;
    if (gradc1) steps.gradc1 = gradc1;
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
    const one = gradc1 ? [gradc1.step(), gradc1.step()] : losses.gradc;
    const threadsAgree = one.every((l, i) => Object.is(Math.fround(l), Math.fround(losses.gradc![i]!)));
    const t = torch?.results.find((r) => r.name === w.name);
    if (t?.losses) losses.torch = [...t.losses];
    else if (!torch) skipped.torch = "python3 cannot import torch";
    const ref = losses.gradc[1]!;
    const worstRelDiff = Math.max(...Object.values(losses).map((l) => Math.max(relDiff(l[1]!, ref), relDiff(l[0]!, losses.gradc![0]!))));
    const ms: Partial<Record<Timed, number>> = {};
    if (!quick) {
      const cases: Record<string, () => unknown> = {};
      for (const [system, s] of Object.entries(steps)) cases[system] = system === "jax" ? async () => await s.step() : () => s.step();
      const seconds = await timeCases(w.name, cases, folder, maxTime);
      for (const [system, sec] of Object.entries(seconds)) ms[system as Timed] = 1000 * sec;
      if (t?.ms != null) ms.torch = t.ms;
    }
    for (const s of Object.values(steps)) await s.dispose();
    results.push({ name: w.name, title: w.title, losses, skipped, worstRelDiff, agree: worstRelDiff <= LOSS_RTOL && threadsAgree, threadsAgree, ms });
  }
  const sgemm = await sgemmBench(sg, threads, folder, quick, maxTime, torch?.results.find((r) => r.name === "sgemm"));
  const out: PeersResult = {
    machine: `node ${process.version}, ${os.cpus()[0]?.model ?? "cpu"} x${os.availableParallelism()}`,
    threads,
    workloads: results,
    sgemm,
    ...(torch ? { torchBlas: torch.blas } : {}),
  };
  mkdirSync(folder, { recursive: true });
  writeFileSync(path.join(folder, quick ? "peers-quick.json" : "peers.json"), JSON.stringify(out, null, 2) + "\n");
  return out;
}

/** The 512³ sgemm: gradc's SIMD product on `threads` threads and on one, jax-js, tfjs, torch; first rows compared. */
async function sgemmBench(
  sg: { a: Float32Array; b: Float32Array; n: number },
  threads: number,
  folder: string,
  quick: boolean,
  maxTime: number,
  torch: { firstRow?: readonly number[]; ms: number | null } | undefined,
): Promise<SgemmResult> {
  const { a, b: bm, n } = sg;
  const one = await sharedProduct(n, n, n, a, bm, 1);
  const all = await sharedProduct(n, n, n, a, bm, threads);
  const jax = await jaxSgemm(a, bm, n);
  const tf = await tfjsSgemm(a, bm, n);
  try {
    all.run();
    const ref = all.result().subarray(0, n);
    const rows = [await jax.firstRow(), tf.firstRow(), ...(torch?.firstRow ? [Float32Array.from(torch.firstRow)] : [])];
    const agree = rows.every((r) => r.every((v, j) => Math.abs(v - ref[j]!) <= 1e-3 * (1 + Math.abs(ref[j]!))));
    const gflops: SgemmResult["gflops"] = {};
    if (!quick) {
      const seconds = await timeCases(
        "sgemm",
        { gradc: () => all.run(), gradc1: () => one.run(), jax: async () => await jax.run(), tfjs: () => tf.run() },
        folder,
        maxTime,
      );
      const flop = 2 * n * n * n;
      for (const [system, sec] of Object.entries(seconds)) gflops[system as Timed] = flop / sec / 1e9;
      if (torch?.ms) gflops.torch = flop / (torch.ms / 1000) / 1e9;
    }
    return { n, gflops, agree };
  } finally {
    await one.close();
    await all.close();
    jax.dispose();
    tf.dispose();
  }
}

const NAMES: Record<System, string> = { gradc: "gradc", jax: "jax-js 0.1.25 (wasm, jit)", tfjs: "tfjs-wasm 4.22", torch: "PyTorch" };

/** The results as text: losses and their agreement, then times with peer/gradc ratios (gradc on its default threads, and on one beside it). */
export function peersTable(r: PeersResult): string {
  const lines: string[] = [r.machine, ""];
  const fmt = (ms: number) => (ms < 1 ? `${(ms * 1000).toFixed(1)} µs` : `${ms.toFixed(2)} ms`);
  const on = `${r.threads} thread${r.threads > 1 ? "s" : ""}`;
  lines.push(`loss after one update (all from the same weights and data; must agree within ${LOSS_RTOL} relative; gradc's the same bits on ${on} and on 1):`);
  for (const w of r.workloads) {
    const cells = SYSTEMS.map((s) => (w.losses[s] ? `${s} ${w.losses[s]![1]!.toPrecision(8)}` : `${s} n/a`));
    const bits = w.threadsAgree ? "" : `; gradc's losses on ${on} and on 1 DIFFER`;
    lines.push(`  ${w.name.padEnd(12)} ${cells.join("  ")}  → ${w.agree ? "agree" : "DISAGREE"} (worst ${w.worstRelDiff.toExponential(1)}${bits})`);
    for (const [s, why] of Object.entries(w.skipped)) lines.push(`  ${"".padEnd(12)} ${s}: ${why}`);
  }
  lines.push(`  sgemm        first rows of C ${r.sgemm.agree ? "agree" : "DISAGREE"}`);
  if (r.workloads.some((w) => Object.keys(w.ms).length > 0)) {
    lines.push("", `median step time (gradc on ${on}, a trainer's default, and on 1; ratio = peer time / gradc time on ${on}; above 1 means gradc is faster):`);
    for (const w of r.workloads) {
      const g = w.ms.gradc!;
      const one = w.ms.gradc1 === undefined ? "" : ` (1 thread: ${fmt(w.ms.gradc1)}, ${(w.ms.gradc1 / g).toFixed(2)}×)`;
      const cells = SYSTEMS.slice(1).map((s) => (w.ms[s] === undefined ? `${NAMES[s]} n/a` : `${NAMES[s]} ${fmt(w.ms[s]!)} (${(w.ms[s]! / g).toFixed(2)}×)`));
      lines.push(`  ${w.title}`, `    gradc ${fmt(g)}${one} | ${cells.join(" | ")}`);
    }
    const gf = r.sgemm.gflops;
    const cell = (s: System) => (gf[s] === undefined ? `${NAMES[s]} n/a` : `${NAMES[s]} ${gf[s]!.toFixed(1)} (${(gf.gradc! / gf[s]!).toFixed(2)}×)`);
    const one = gf.gradc1 === undefined ? "" : ` (1 thread: ${gf.gradc1.toFixed(1)}; ${((gf.gradc ?? 0) / gf.gradc1).toFixed(2)}× on ${on})`;
    lines.push(
      `  sgemm ${r.sgemm.n}³ (GFLOP/s; ratio = gradc's rate on ${on} / peer rate)`,
      `    gradc ${gf.gradc?.toFixed(1)}${one} | ${(["jax", "tfjs", "torch"] as const).map(cell).join(" | ")}`,
    );
    if (r.torchBlas) lines.push(`  (PyTorch on 1 thread over ${r.torchBlas})`);
  }
  return lines.join("\n");
}
