// compile(graph, options): the compiler as a pipeline of named stages, read
// top to bottom here: build → grad → graph passes → remat → fusion → lowering
// → backend passes → memory plan (lowerGraph), then emit → write (compile).
// compiler/README.md says which folder each stage lives in.
import path from "node:path";
import { Graph } from "./ir/graph.js";
import { inScope } from "./lower/optimizer.js";
import { backendsWhere } from "./backends/index.js";
import type { CachedStepConfig, CompileOptions, GenerateConfig } from "./config.js";
import type { CachedStepSpec, GenerateSpec, Manifest, MixedSpec } from "../runtime/manifest.js";
import { checkGenerateSpec } from "../runtime/generate.js";
import { grad } from "./autodiff/grad.js";
import { printGraph } from "./ir/printer.js";
import { trainingGraph } from "./passes/training.js";
import { fuseEntryPoints, fusionText, rematPolicy, rematText } from "./fusion/plans.js";
import { kernelListText, lowerSchedule } from "./lower/schedule.js";
import type { Kernel, Schedule } from "./lower/schedule.js";
import { printedNodes } from "./lower/names.js";
import { planMemory } from "./plan/memory.js";
import { summarize } from "./bundle/summary.js";
import type { CompileSummary } from "./bundle/summary.js";
import type { ArenaPlan } from "./plan/arena.js";
import { targetFor, targetOptionsOf } from "./backends/index.js";
import type { AutoChoice } from "./backends/auto.js";
import { pickBackend } from "./backends/auto.js";
import type { KernelPass, Target } from "./backends/target.js";
import type { BundleFiles } from "./bundle/bundle.js";
import { runPipeline } from "./passes/pipeline.js";
import type { PassStat, PipelineResult } from "./passes/pipeline.js";
import { FILES, buildManifest, digests, graphDigest, graphTexts, printKernels, initialWeights, runtimeFiles, trainerSource, trainingSpec, transpileCached } from "./bundle/bundle.js";
import { writeBundle } from "./bundle/swap.js";
import { checkManifest, checkOptimizer, checkTraining } from "../runtime/schema.js";
import { manifestDigest } from "../runtime/integrity.js";
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
  /** The previous bundle's training results moved into this one (`checkpoints`, `logs`), and what a killed compile had left. */
  readonly kept: readonly string[];
  readonly recovered: readonly string[];
  /** With backend "auto": the backend picked and why (also manifest.backendChoice). */
  readonly backendChoice?: AutoChoice;
}

/** `options` with backend "auto" replaced by the backend it picks here (probing WebGPU once), and the choice. */
export function resolveAuto<O extends Omit<CompileOptions, "outDir">>(options: O): { options: O; choice?: AutoChoice } {
  if (options.backend !== "auto") return { options };
  const choice = pickBackend(options);
  return { options: { ...options, backend: choice.backend }, choice };
}

/** Options checked before any work, with messages that name the option. */
function checkOptions(options: CompileOptions): void {
  if (!options || typeof options.outDir !== "string" || options.outDir.length === 0) {
    throw new Error("compile: options.outDir must name the bundle's folder");
  }
  targetFor(options);
  if (options.dtype !== undefined && options.dtype !== "f32" && options.dtype !== "f64") {
    throw new Error(`compile: dtype must be "f32" or "f64", got ${JSON.stringify(options.dtype)}`);
  }
  if (options.precision !== undefined && options.precision !== "f32" && options.precision !== "mixed") {
    throw new Error(`compile: precision must be "f32" or "mixed", got ${JSON.stringify(options.precision)}`);
  }
  mixedSpec(options);
  if (options.initFrom !== undefined && (typeof options.initFrom !== "string" || options.initFrom.length === 0)) {
    throw new Error(`compile: initFrom must name a safetensors file, got ${JSON.stringify(options.initFrom)}`);
  }
  if (options.optimizer !== undefined) checkOptimizer(options.optimizer, "compile: options");
  const clip = options.gradClip;
  if (clip !== undefined && !(typeof clip === "number" && clip > 0 && Number.isFinite(clip))) {
    throw new Error(`compile: gradClip must be a finite number > 0, got ${String(clip)}`);
  }
}

/** Mixed precision's spec from the options (undefined for f32), checked. */
export function mixedSpec(options: Omit<CompileOptions, "outDir">): MixedSpec | undefined {
  if (options.precision !== "mixed") {
    if (options.lossScale !== undefined) throw new Error(`compile: lossScale applies to precision "mixed" only`);
    return undefined;
  }
  if (options.dtype === "f64") throw new Error(`compile: precision "mixed" keeps f32 master weights; it cannot be combined with dtype "f64"`);
  const target = targetFor(options);
  if (!target.capabilities.bf16) {
    throw new Error(`compile: precision "mixed" runs on the ${backendsWhere((c) => c.bf16 === true, " and ").replace(/"/g, "")} backends; the ${target.name} backend does not store bfloat16 yet`);
  }
  const initialScale = options.lossScale?.initial ?? 2 ** 16;
  const growthInterval = options.lossScale?.growthInterval ?? 2000;
  if (!(Number.isInteger(Math.log2(initialScale)) && initialScale >= 1 && initialScale <= 2 ** 126)) {
    throw new Error(`compile: lossScale.initial must be a power of two in [1, 2^126], got ${String(initialScale)}`);
  }
  if (!(Number.isInteger(growthInterval) && growthInterval >= 1)) {
    throw new Error(`compile: lossScale.growthInterval must be an integer ≥ 1, got ${String(growthInterval)}`);
  }
  return { storage: "bf16", initialScale, growthInterval };
}

/** The graph with every param under one of `scopes` frozen (trainable false); a scope that matches no param is an error. */
export function freezeScopes(graph: Graph, scopes: readonly string[]): Graph {
  if (!Array.isArray(scopes)) throw new Error(`compile: freeze must be a list of scopes or param names, got ${JSON.stringify(scopes)}`);
  for (const scope of scopes) {
    if (typeof scope !== "string" || !graph.params.some((p) => inScope(p.name, scope))) {
      throw new Error(`compile: freeze: ${JSON.stringify(scope)} matches no param of "${graph.name}" (scopes are name prefixes ending at a dot; params: ${graph.params.map((p) => p.name).join(", ")})`);
    }
  }
  const params = graph.params.map((p) => (scopes.some((s) => inScope(p.name, s)) ? { ...p, trainable: false } : p));
  return new Graph(graph.name, graph.ctx, graph.inputs, params, graph.loss, graph.outputs, graph.grads);
}

/** One stage's dump (with `dumpPasses`): graphs/stages/NN-<stage>.txt. */
export interface StageDump {
  readonly stage: string;
  readonly text: string;
}

/** What the stages up to the memory plan produced; compile() then emits and writes it. */
export interface Lowered {
  /** build: the user's graph, its loss as the training step computes it. */
  readonly built: Graph;
  /** grad: the training graph as autodiff built it, before any graph pass. */
  readonly differentiated: Graph;
  /** graph passes: what each did, and the training graph after each (`passes.graph` after all). */
  readonly passes: PipelineResult;
  /** remat, fusion, lowering and backend passes: the kernels over static buffers. */
  readonly schedule: Schedule;
  /** memory plan. */
  readonly plan: ArenaPlan;
  /** Every stage's dump so far, in order (empty unless `dumpPasses`). */
  readonly dumps: readonly StageDump[];
}

/** Called with the schedule after lowering and after each backend pass (tests verify every kernel there). */
export type ScheduleCheck = (stage: string, s: Schedule) => void;

/**
 * The backend-passes stage: each of the target's kernel IR passes, in order,
 * over every kernel of the schedule; `check` sees the schedule after each.
 * Returns the schedule and, per pass, the kernels it rewrote.
 */
export function backendPasses(lowered: Schedule, target: Target, check?: ScheduleCheck): { schedule: Schedule; rewrote: readonly { pass: string; kernels: readonly string[] }[] } {
  let schedule = lowered;
  const rewrote: { pass: string; kernels: string[] }[] = [];
  for (const pass of target.passes) {
    const changed: string[] = [];
    const kernels = schedule.kernels.map((k) => {
      const out = runPass(pass, k, schedule);
      if (out !== k) changed.push(k.name);
      return out;
    });
    schedule = { ...schedule, kernels };
    rewrote.push({ pass: pass.name, kernels: changed });
    check?.(`backend:${pass.name}`, schedule);
  }
  return { schedule, rewrote };
}

/** One pass over one kernel; a pass must keep the kernel's name, buffers and entry points. */
function runPass(pass: KernelPass, k: Kernel, s: Schedule): Kernel {
  const out = pass.run(k, { precision: s.precision });
  if (out.name !== k.name || out.buffers !== k.buffers || out.entry !== k.entry) {
    throw new Error(`backend pass ${pass.name} changed the name, buffers or entry points of kernel ${k.name}; a pass rewrites bodies only`);
  }
  return out;
}

/** Records a stage's dump when dumps are asked for; `text` runs only then. */
class Dumps {
  readonly list: StageDump[] = [];
  constructor(private readonly on: boolean) {}
  add(stage: string, text: () => string): void {
    if (this.on) this.list.push({ stage, text: text().trimEnd() });
  }
}

/**
 * The stages of compile() up to the memory plan, in the order they run (for
 * tests and tools: nothing is written). Each stage's result feeds the next:
 *   build → grad → graph passes → remat → fusion → lowering → backend passes → memory plan
 * compile() goes on with emit → write.
 */
export function lowerGraph(graph: Graph, asked: Omit<CompileOptions, "outDir">, check?: ScheduleCheck): Lowered {
  const { options } = resolveAuto(asked);
  if (options.freeze?.length) graph = freezeScopes(graph, options.freeze);
  const precision = options.dtype ?? "f32";
  const mixed = mixedSpec(options);
  const target = targetFor(options);
  if (precision === "f64" && !target.capabilities.f64) throw new Error(`compile: backend "${target.name}" computes in float32 only; dtype "f64" needs backend ${backendsWhere((c) => c.f64)}`);
  if (options.fusion === true && !target.capabilities.fusion) throw new Error(`compile: backend "${target.name}" runs one kernel per graph node; leave fusion unset or false`);
  const fusion = (options.fusion ?? true) && target.capabilities.fusion;
  const dumps = new Dumps(options.dumpPasses === true);

  // build: the DSL built the graph; the training step's loss reads every ifTraining's first branch
  const built = trainingGraph(graph);
  dumps.add("build", () => printGraph(built));

  // grad: the loss's gradient with respect to every trainable param
  const base = built.with({ grads: {} });
  // mixed precision: the backward pass starts from the runtime's loss scale
  const differentiated = built.loss ? grad(base, { lossScale: mixed !== undefined }) : base;
  dumps.add("grad", () => printGraph(differentiated));

  // graph passes: Graph → Graph rewrites (passes/pipeline.ts); forward() computes the same graph's outputs
  const passes = runPipeline(differentiated, { dump: options.dumpPasses === true });
  const train = passes.graph;
  const forward = train.with({ grads: {} });
  dumps.add("passes", () => passes.stats.map((st) => `${st.pass}: ${st.nodesBefore} → ${st.nodesAfter} nodes`).join("\n") + `\n\n${printGraph(train)}`);

  // remat: which forward values the backward pass recomputes rather than keeps
  const remat = rematPolicy(train, precision, options.remat);
  dumps.add("remat", () => rematText(train, remat, printedNodes(train)));

  // fusion: which values are stored, and which kernel computes each, per entry point
  const plans = fuseEntryPoints(forward, train, { precision, fusion, cost: target.cost, remat });
  dumps.add("fusion", () => fusionText(plans, printedNodes(train)));

  // lowering: kernels in the kernel IR over static buffers, the optimizer update included
  const lowered = lowerSchedule(forward, train, plans, {
    precision,
    fusion,
    target,
    remat: remat.remat,
    ...(mixed ? { mixed } : {}),
    ...(options.optimizer ? { optimizer: options.optimizer } : {}),
    ...(options.gradClip !== undefined ? { gradClip: options.gradClip } : {}),
  });
  dumps.add("lowering", () => kernelListText(lowered));
  check?.("lowering", lowered);

  // backend passes: the target's kernel IR → kernel IR rewrites, each over every kernel
  const { schedule, rewrote } = backendPasses(lowered, target, check);
  dumps.add("backend", () => backendText(target, rewrote, schedule));

  // memory plan: every buffer's offset in the arenas
  const plan = planMemory(schedule);
  dumps.add("memory", () => printKernels(schedule, plan));

  return { built, differentiated, passes, schedule, plan, dumps: dumps.list };
}

/** The backend stage's dump: each pass and the kernels it rewrote, then the kernel list. */
function backendText(target: Target, rewrote: readonly { pass: string; kernels: readonly string[] }[], s: Schedule): string {
  const passes = rewrote.map((r) => `${r.pass}: ${r.kernels.length} kernel${r.kernels.length === 1 ? "" : "s"} rewritten${r.kernels.length ? ` (${r.kernels.join(", ")})` : ""}`);
  return [`${target.name} backend: ${target.passes.length ? target.passes.map((p) => p.name).join(" → ") : "no kernel IR passes"}`, ...passes, "", kernelListText(s)].join("\n");
}

/** The files of a bundle and what they describe, before anything is written. */
interface BundleBuild {
  readonly files: BundleFiles;
  readonly manifest: Manifest;
  readonly passes: PipelineResult;
  readonly summary: CompileSummary;
  readonly timings: { lower: number; emit: number; transpile: number };
}

/**
 * Lowers, emits and describes one graph. `lean` leaves out what only a
 * top-level bundle needs (the trainer, the runtime, the inspection data).
 */
function buildFiles(graph: Graph, options: Omit<CompileOptions, "outDir">, lean: boolean, generate?: GenerateSpec): BundleBuild {
  const t0 = performance.now();
  const lowered = lowerGraph(graph, options);
  const { schedule, plan, passes } = lowered;
  const t1 = performance.now();

  // emit: the backend's kernel files, and the trainer entry point
  const emitted = targetFor(options).emitKernels(schedule, plan);
  const transpileMs = emitted.transpileMs ?? 0;
  const t2 = performance.now() - transpileMs;
  const files: BundleFiles = new Map(emitted.files);
  if (!lean) {
    const trainer = trainerSource();
    files.set("train.ts", trainer);
    files.set(FILES.trainer, transpileCached(trainer, "train.ts"));
    for (const [rel, js] of runtimeFiles()) files.set(rel, js);
  }
  const t3 = performance.now();

  // write: the manifest, the report, weights, data, printed graphs and what inspect reads (compile swaps the folder in)
  const training = options.training ? trainingSpec(schedule, options.training) : undefined;
  if (training) {
    const names = { inputs: new Set(graph.inputs.map((i) => i.name)), outputs: new Set(Object.keys(graph.outputs)) };
    checkTraining(training.spec, "compile: options", names);
  }
  const base = buildManifest(schedule, plan, training?.spec, generate);
  const manifest: Manifest = { ...base, files: { ...base.files, ...emitted.manifestFiles } };
  files.set(FILES.manifest, JSON.stringify(manifest, null, 2) + "\n");
  const summary = summarize(schedule, plan, passes.stats);
  const params = schedule.graph.params.map((p) => ({ name: p.name, shape: p.shape, trainable: p.trainable }));
  // the report's times cover every stage but writing the folder, which comes after it
  const compileMs = { lower: t1 - t0, emit: t2 - t1, transpile: t3 - t2, report: performance.now() - t3 };
  files.set("report.json", JSON.stringify({ ...summary, params, compileMs }, null, 2) + "\n");
  files.set(FILES.weights, initialWeights(schedule, options.initFrom));
  if (training?.data) files.set(FILES.data, training.data);
  for (const [rel, text] of graphTexts(schedule, plan)) files.set(rel, text);
  if (!lean) {
    // graph data for gradc inspect and gradc graph (the runtime never reads it)
    for (const [rel, text] of inspectionFiles({ differentiated: lowered.differentiated, stages: passes.stages, schedule, plan, sources: emitted.functions })) files.set(rel, text);
    passes.dumps?.forEach((d, i) => files.set(`graphs/passes/${String(i).padStart(2, "0")}-${d.pass}.txt`, d.text + "\n"));
    const emitDump = options.dumpPasses ? [{ stage: "emit", text: [...files.keys()].filter((f) => !f.startsWith("runtime/")).sort().join("\n") }] : [];
    [...lowered.dumps, ...emitDump].forEach((d, i) => files.set(`graphs/stages/${String(i).padStart(2, "0")}-${d.stage}.txt`, d.text + "\n"));
  }
  // the .js files are ES modules wherever the bundle is put
  files.set("package.json", JSON.stringify({ type: "module", private: true }, null, 2) + "\n");
  return { files, manifest, passes, summary, timings: { lower: t1 - t0, emit: t2 - t1, transpile: t3 - t2 } };
}

/** The folder of a next-token predictor's batch-1 inference bundle, inside its bundle. */
export const GENERATE_DIR = "generate";
/** The folder of its generation step with a key/value cache. */
export const GENERATE_STEP_DIR = "generate-step";

/** Every param of `g` must be a param of `train` with the same shape, since it runs on the training bundle's weights. */
function checkSharedParams(g: Graph, train: Graph, where: string): void {
  for (const p of g.params) {
    const q = train.param(p.name);
    if (!q) throw new Error(`${where}: param "${p.name}" is not a param of the training graph "${train.name}", whose weights it runs on`);
    if (q.shape.join(",") !== p.shape.join(",")) throw new Error(`${where}: param "${p.name}" is [${p.shape.join(",")}] but [${q.shape.join(",")}] in the training graph`);
  }
}

/** `g` compiled forward only into the folder `dir` (its weights come from the training bundle when it runs). */
function forwardFiles(g: Graph, options: CompileOptions, dir: string): BundleFiles {
  const built = buildFiles(g, { ...(options.dtype ? { dtype: options.dtype } : {}), ...targetOptionsOf(options), ...(options.fusion !== undefined ? { fusion: options.fusion } : {}) }, true);
  const files: BundleFiles = new Map();
  for (const [rel, content] of built.files) files.set(`${dir}/${rel}`, content);
  return files;
}

/**
 * The cached generation step of `config` (see CachedStepConfig), checked
 * against the training graph and the vocabulary: its inputs are the token,
 * its position and the caches, each cache has an output of its shape.
 */
function cachedStep(train: Graph, config: CachedStepConfig, vocab: number): CachedStepSpec {
  const g = config.graph;
  const where = `compile: generate.cached graph "${g.name}"`;
  const spec: CachedStepSpec = {
    bundle: GENERATE_STEP_DIR,
    input: config.input ?? "ids",
    index: config.index ?? "index",
    output: config.output ?? "logits",
    caches: (config.caches ?? []).map((c) => ({ input: c.input, output: c.output })),
  };
  const inputs = g.inputs.map((i) => i.name).join(", ") || "none";
  for (const [what, name, shape] of [["input", spec.input, [1, 1]], ["index", spec.index, [1]]] as const) {
    const t = g.input(name);
    if (!t) throw new Error(`${where} has no input "${name}" (inputs: ${inputs})`);
    if (t.dtype !== "i32" || t.shape.join(",") !== shape.join(",")) throw new Error(`${where}: ${what} "${name}" must be i32 [${shape.join(", ")}], got ${t.dtype} [${t.shape.join(",")}]`);
  }
  const fed = new Set([spec.input, spec.index]);
  for (const c of spec.caches) {
    const from = g.input(c.input);
    const to = g.outputs[c.output];
    if (!from) throw new Error(`${where} has no input "${c.input}" for a cache (inputs: ${inputs})`);
    if (!to || !Object.hasOwn(g.outputs, c.output)) throw new Error(`${where} has no output "${c.output}" for the cache "${c.input}" (outputs: ${Object.keys(g.outputs).join(", ") || "none"})`);
    if (from.dtype !== to.dtype || from.shape.join(",") !== to.shape.join(",")) {
      throw new Error(`${where}: cache "${c.input}" is ${from.dtype} [${from.shape.join(",")}] but its next value "${c.output}" is ${to.dtype} [${to.shape.join(",")}]`);
    }
    if (fed.has(c.input)) throw new Error(`${where}: input "${c.input}" is fed twice`);
    fed.add(c.input);
  }
  const unfed = g.inputs.find((i) => !fed.has(i.name));
  if (unfed) throw new Error(`${where}: input "${unfed.name}" is neither the token, its position nor a cache`);
  const out = Object.hasOwn(g.outputs, spec.output) ? g.outputs[spec.output] : undefined;
  if (!out) throw new Error(`${where} has no output "${spec.output}" (outputs: ${Object.keys(g.outputs).join(", ") || "none"})`);
  if (out.shape.at(-1) !== vocab || out.size !== vocab) throw new Error(`${where}: output "${spec.output}" [${out.shape.join(",")}] must be the logits of one token [1, 1, ${vocab}]`);
  checkSharedParams(g, train, where);
  return spec;
}

/**
 * The inference bundle of `config` (see GenerateConfig), checked against the
 * training graph: every param it reads must be a param of `train` with the
 * same shape, since it runs on the training bundle's weights.
 */
function generateFiles(train: Graph, config: GenerateConfig, options: CompileOptions): { spec: GenerateSpec; files: BundleFiles } {
  const g = config.graph;
  const input = config.input ?? "ids";
  const output = config.output ?? "logits";
  const where = `compile: generate graph "${g.name}"`;
  const ids = g.input(input);
  if (!ids) throw new Error(`${where} has no input "${input}" (inputs: ${g.inputs.map((i) => i.name).join(", ") || "none"})`);
  if (ids.dtype !== "i32" || ids.shape.length !== 2 || ids.shape[0] !== 1) {
    throw new Error(`${where}: input "${input}" must be i32 [1, context] (batch 1), got ${ids.dtype} [${ids.shape.join(",")}]`);
  }
  checkSharedParams(g, train, where);
  const cached = config.cached ? cachedStep(train, config.cached, config.vocab.length) : undefined;
  const spec: GenerateSpec = {
    bundle: GENERATE_DIR,
    input,
    output,
    context: ids.shape[1]!,
    vocab: [...config.vocab],
    ...(config.start !== undefined ? { start: config.start } : {}),
    ...(cached ? { cached } : {}),
  };
  checkGenerateSpec(spec, where);
  const out = g.outputs[output];
  if (!out) throw new Error(`${where} has no output "${output}" (outputs: ${Object.keys(g.outputs).join(", ") || "none"})`);
  if (out.shape.at(-1) !== spec.vocab.length || out.size !== spec.context * spec.vocab.length) {
    throw new Error(`${where}: output "${output}" [${out.shape.join(",")}] must be logits [1, ${spec.context}, ${spec.vocab.length}] (context × vocabulary)`);
  }
  const files = forwardFiles(g, options, GENERATE_DIR);
  if (config.cached) for (const [rel, content] of forwardFiles(config.cached.graph, options, GENERATE_STEP_DIR)) files.set(rel, content);
  return { spec, files };
}

/**
 * Compiles a graph into a kernel bundle at `options.outDir` (created, or
 * replaced when it holds a previous bundle). Default optimizer: Adam, lr 0.001.
 */
export function compile(graph: Graph, asked: CompileOptions): CompileResult {
  const { options, choice } = resolveAuto(asked);
  checkOptions(options);
  const t0 = performance.now();
  const gen = options.generate ? generateFiles(graph, options.generate, options) : undefined;
  const built = buildFiles(graph, options, false, gen?.spec);
  const files = built.files;
  if (gen) for (const [rel, content] of gen.files) files.set(rel, content);
  const t3 = performance.now();
  // the bundle knows itself: a digest of every file and of the graph, checked by load()
  const described: Manifest = { ...built.manifest, ...(choice ? { backendChoice: { asked: "auto" as const, reason: choice.reason } } : {}), graphHash: graphDigest(files.get("graphs/forward.txt") as string), hashes: digests(files) };
  // and the manifest its own, so an edited offset or a dropped field is caught too
  const manifest: Manifest = { ...described, digest: manifestDigest(described) };
  // the compiler's own output goes through the runtime's schema, so a bad layout never reaches disk
  checkManifest(JSON.parse(JSON.stringify(manifest)), `compile: the manifest of ${JSON.stringify(graph.name)}`);
  files.set(FILES.manifest, JSON.stringify(manifest, null, 2) + "\n");
  const outDir = path.resolve(options.outDir);
  const { kept, recovered } = writeBundle(outDir, files);
  const t4 = performance.now();
  return {
    kept,
    recovered,
    outDir,
    manifest,
    files: [...files.keys()].sort(),
    passes: built.passes.stats,
    summary: built.summary,
    timings: { ...built.timings, write: t4 - t3, total: t4 - t0 },
    ...(choice ? { backendChoice: choice } : {}),
  };
}
