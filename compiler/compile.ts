// compile(graph, options): the training graph lowered to kernels, emitted as
// TypeScript and JavaScript, and written with everything else into a bundle.
import path from "node:path";
import type { Graph } from "./ir/graph.js";
import type { CompileOptions } from "./config.js";
import type { Manifest } from "../runtime/manifest.js";
import { buildSchedule } from "./lower/schedule.js";
import type { Schedule } from "./lower/schedule.js";
import { planMemory } from "./plan/memory.js";
import { summarize } from "./bundle/summary.js";
import type { CompileSummary } from "./bundle/summary.js";
import type { ArenaPlan } from "./plan/arena.js";
import { emitTs, transpile } from "./backends/ts/emitTs.js";
import type { BundleFiles } from "./bundle/bundle.js";
import { runPipeline } from "./passes/pipeline.js";
import type { PassStat, PipelineResult } from "./passes/pipeline.js";
import { FILES, buildManifest, graphTexts, initialWeights, runtimeFiles, trainerSource, trainingSpec, transpileCached, writeBundle } from "./bundle/bundle.js";
import { inspectionFiles } from "./inspect/bundleData.js";

/** What `compile` wrote. */
export interface CompileResult {
  /** The bundle's folder, absolute. */
  readonly outDir: string;
  readonly manifest: Manifest;
  /** Every file of the bundle, relative to `outDir`. */
  readonly files: readonly string[];
  /** What each graph pass did to the training graph (nodes before and after, milliseconds). */
  readonly passes: readonly PassStat[];
  /** Kernels, FLOPs and memory of the compiled step (also in report.json). */
  readonly summary: CompileSummary;
  /** Milliseconds per phase, and `total`. */
  readonly timings: Readonly<Record<"lower" | "emit" | "transpile" | "write" | "total", number>>;
}

/** Options checked before any work, with messages that name the option. */
function checkOptions(options: CompileOptions): void {
  if (!options || typeof options.outDir !== "string" || options.outDir.length === 0) {
    throw new Error("compile: options.outDir must name the bundle's folder");
  }
  if (options.backend !== undefined && options.backend !== "ts") {
    throw new Error(`compile: backend "${String(options.backend)}" is not available yet; use "ts"`);
  }
  if (options.dtype !== undefined && options.dtype !== "f32" && options.dtype !== "f64") {
    throw new Error(`compile: dtype must be "f32" or "f64", got ${JSON.stringify(options.dtype)}`);
  }
  const clip = options.gradClip;
  if (clip !== undefined && !(typeof clip === "number" && clip > 0 && Number.isFinite(clip))) {
    throw new Error(`compile: gradClip must be a finite number > 0, got ${String(clip)}`);
  }
}

/** The schedule and arena plan of a graph, without writing anything (for tests and tools); the training graph goes through the pass pipeline. */
export function lowerGraph(graph: Graph, options: Omit<CompileOptions, "outDir">): { schedule: Schedule; plan: ArenaPlan; passes: PipelineResult } {
  let passes: PipelineResult | undefined;
  const schedule = buildSchedule(graph, {
    transform: (train) => (passes = runPipeline(train, { dump: options.dumpPasses === true })).graph,
    precision: options.dtype ?? "f32",
    ...(options.optimizer ? { optimizer: options.optimizer } : {}),
    ...(options.gradClip !== undefined ? { gradClip: options.gradClip } : {}),
    ...(options.fusion !== undefined ? { fusion: options.fusion } : {}),
    ...(options.remat !== undefined ? { remat: options.remat } : {}),
    ...(options.wasm !== undefined ? { wasm: options.wasm } : {}),
  });
  return { schedule, plan: planMemory(schedule), passes: passes! };
}

/**
 * Compiles a graph into a kernel bundle at `options.outDir` (created, or
 * replaced when it holds a previous bundle). Default optimizer: Adam, lr 0.001.
 */
export function compile(graph: Graph, options: CompileOptions): CompileResult {
  checkOptions(options);
  const t0 = performance.now();
  const { schedule, plan, passes } = lowerGraph(graph, options);
  const t1 = performance.now();
  const ts = emitTs(schedule, plan);
  const trainer = trainerSource();
  const t2 = performance.now();
  const files: BundleFiles = new Map();
  files.set("forward.ts", ts.forward);
  files.set(FILES.forward, transpile(ts.forward, "forward.ts"));
  files.set("step.ts", ts.step);
  files.set(FILES.step, transpile(ts.step, "step.ts"));
  files.set("train.ts", trainer);
  files.set(FILES.trainer, transpileCached(trainer, "train.ts"));
  for (const [rel, js] of runtimeFiles()) files.set(rel, js);
  const t3 = performance.now();
  const training = options.training ? trainingSpec(schedule, options.training) : undefined;
  const manifest = buildManifest(schedule, plan, training?.spec);
  files.set(FILES.manifest, JSON.stringify(manifest, null, 2) + "\n");
  const summary = summarize(schedule, plan, passes.stats);
  const params = graph.params.map((p) => ({ name: p.name, shape: p.shape, trainable: p.trainable }));
  // the report's times cover every stage but writing the folder, which comes after it
  const compileMs = { lower: t1 - t0, emit: t2 - t1, transpile: t3 - t2, report: performance.now() - t3 };
  files.set("report.json", JSON.stringify({ ...summary, params, compileMs }, null, 2) + "\n");
  files.set(FILES.weights, initialWeights(schedule));
  if (training?.data) files.set(FILES.data, training.data);
  for (const [rel, text] of graphTexts(schedule, plan)) files.set(rel, text);
  // graph data for gradc inspect and gradc graph (the runtime never reads it)
  for (const [rel, text] of inspectionFiles(graph, schedule, plan)) files.set(rel, text);
  passes.dumps?.forEach((d, i) => files.set(`graphs/passes/${String(i).padStart(2, "0")}-${d.pass}.txt`, d.text + "\n"));
  // the .js files are ES modules wherever the bundle is put
  files.set("package.json", JSON.stringify({ type: "module", private: true }, null, 2) + "\n");
  const outDir = path.resolve(options.outDir);
  writeBundle(outDir, files);
  const t4 = performance.now();
  return {
    outDir,
    manifest,
    files: [...files.keys()].sort(),
    passes: passes.stats,
    summary,
    timings: { lower: t1 - t0, emit: t2 - t1, transpile: t3 - t2, write: t4 - t3, total: t4 - t0 },
  };
}
