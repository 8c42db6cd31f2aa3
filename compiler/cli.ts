// The gradc command line: compile a model file to a bundle, train a bundle,
// inspect the emitted gradient code, print a stage's graph.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { CompileOptions, ModelConfig } from "./config.js";
import type { Graph } from "./ir/graph.js";
import type { OptimizerSpec } from "../runtime/manifest.js";
import type { FlagDefs } from "../runtime/flags.js";
import { flagNumber, flagsHelp, flagString, parseFlags, UsageError } from "../runtime/flags.js";
import { readManifest } from "../runtime/load.js";
import { screenText, terminalText } from "../runtime/names.js";
import { trainHelp, TRAIN_FLAGS } from "../runtime/trainer.js";
import type { TrainIO, TrainSummary } from "../runtime/trainer.js";
import { checkCommand, checkHelp } from "../runtime/check.js";
import { sampleCommand, sampleHelp } from "../runtime/sample.js";
import { TARGET_FLAGS, targetOptions } from "./backends/index.js";

/** Where the CLI writes; tests capture both. */
export interface CliIO {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

const defaultIO: CliIO = {
  out: (t) => process.stdout.write(`${t}\n`),
  err: (t) => process.stderr.write(`${t}\n`),
};

const HELP_FLAG: FlagDefs = { help: { kind: "boolean", short: "h", help: "show this help" } };

const COMPILE_FLAGS: FlagDefs = {
  out: { kind: "string", short: "o", value: "DIR", help: "the bundle's folder (default: build/<graph name>)" },
  ...TARGET_FLAGS,
  optimizer: { kind: "string", value: "NAME", help: "sgd, momentum, adam or adamw (default: the model's config, else adam)" },
  lr: { kind: "number", value: "X", help: "base learning rate" },
  "grad-clip": { kind: "number", value: "X", help: "clip gradients to this global norm" },
  dtype: { kind: "string", value: "f32|f64", help: "float precision of the bundle (default f32)" },
  precision: { kind: "string", value: "f32|mixed", help: "mixed: activations and their gradients kept as bfloat16, f32 weights, dynamic loss scaling (default f32)" },
  "dump-passes": { kind: "boolean", help: "write the graph after each graph pass to <dir>/graphs/passes/" },
  "no-fusion": { kind: "boolean", help: "one kernel per graph node (for comparison)" },
  remat: { kind: "boolean", help: "recompute cheap activations in the backward instead of keeping them" },
  "init-from": { kind: "string", value: "FILE", help: "initial weights from a safetensors file (params by name; F16, BF16, F32 or F64)" },
  ...HELP_FLAG,
};
const INSPECT_FLAGS: FlagDefs = {
  grad: { kind: "string", value: "NAME", help: "a param: print the backward kernels that compute dLoss/dNAME" },
  math: { kind: "boolean", help: "with --grad: the gradient as a chain-rule expression" },
  stage: { kind: "string", value: "STAGE", help: "with --grad: the IR it depends on at forward, input, a pass name, or backward" },
  kernel: { kind: "string", value: "NAME", help: "one kernel: its source, buffers and FLOPs" },
  kir: { kind: "boolean", help: "with --kernel: the kernel's kernel IR (loop nests with their marks) instead" },
  wat: { kind: "boolean", help: "the WebAssembly text of a wasm bundle's modules, by kernel (with --kernel: that kernel's)" },
  "with-forward": { kind: "boolean", help: "with --grad: print the forward kernels' code too" },
  shader: { kind: "boolean", help: "with --grad or --kernel, on a gpu bundle: the WGSL gpu.js generated for those kernels (runs each once)" },
  ...HELP_FLAG,
};
const SERVE_FLAGS: FlagDefs = {
  port: { kind: "int", value: "N", help: "the port to listen on (default 8000; 0: any free port)" },
  host: { kind: "string", value: "HOST", help: "the interface to listen on (default 127.0.0.1: this machine only)" },
  open: { kind: "boolean", help: "open the page in the desktop's browser" },
  ...HELP_FLAG,
};
const GRAPH_FLAGS: FlagDefs = {
  stage: { kind: "string", value: "STAGE", help: "forward, backward or kernels (default forward)" },
  format: { kind: "string", value: "FMT", help: "text (default), dot, svg, or html (written to <dir>/graphs/graph.html)" },
  "highlight-grad": { kind: "string", value: "NAME", help: "dot, svg, html: highlight the path of dLoss/dNAME" },
  out: { kind: "string", short: "o", value: "FILE", help: "dot, svg, html: write to FILE" },
  ...HELP_FLAG,
};

const USAGE = `gradc: a compiler for training neural networks

Usage:
  gradc compile <model.ts> -o <dir> [options]   compile a model file into a kernel bundle
  gradc train <dir> [options]                   train a bundle (the same as: node <dir>/train.js)
  gradc check <dir> [options]                   check a float64 bundle's gradients against finite differences
  gradc sample <dir> --prompt TEXT [--tokens N]  continue a prompt with a next-token predictor's bundle
  gradc inspect <dir> --grad NAME [--math]      print the emitted code (or the maths) of dLoss/dNAME
  gradc inspect <dir> --kernel NAME [--kir]     print one kernel, its buffers and FLOPs (or its kernel IR)
  gradc inspect <dir> --wat [--kernel NAME]     print the WebAssembly text of a wasm bundle's modules, by kernel
  gradc graph <dir> --stage forward|backward|kernels [--format text|dot|svg|html]
                                                print or draw the graph of a compilation stage
  gradc serve <dir> [--port N] [--open]         train the bundle in a browser tab: loss plot, gradient code

Run gradc <command> --help for a command's options. --verbose shows stack traces on errors.`;

const COMMAND_HELP: Record<string, string> = {
  compile: `Usage: gradc compile <model.ts> -o <dir> [options]\n\nImports the model file (its default export is the graph, its \`config\` export the\ndefaults), applies the options below over the config, and writes a kernel bundle.\n\nOptions:\n${flagsHelp(COMPILE_FLAGS)}`,
  train: trainHelp("gradc train <dir>"),
  check: checkHelp("gradc check <dir>"),
  sample: sampleHelp("gradc sample <dir>"),
  inspect: `Usage: gradc inspect <dir> --grad NAME [--math | --stage STAGE | --with-forward]\n       gradc inspect <dir> --kernel NAME [--kir]\n       gradc inspect <dir> --wat [--kernel NAME]   (a wasm bundle: its modules' WebAssembly text)\n       gradc inspect <dir> --grad NAME --shader   (a gpu bundle: the WGSL gpu.js generated)\n\nWith --grad, prints in execution order the emitted functions of <dir>/step.ts\nthat compute the gradient of the loss with respect to param NAME: exactly the\nbackward kernels it depends on (by dataflow), after a list of the forward\nkernels whose values they read. --math prints it as a chain-rule expression;\n--stage prints the IR bindings it depends on at a stage: forward, input (as\nautodiff built it), a pass name (after that pass) or backward (after all).\n\nOptions:\n${flagsHelp(INSPECT_FLAGS)}`,
  serve: `Usage: gradc serve <dir> [--port N] [--open]\n\nServes the bundle and a training page (http://127.0.0.1:8000/ by default) until\ninterrupted. The page trains the bundle in the tab with the browser runtime: start,\npause, reset, steps per second, the loss plot (and gradient norms when the bundle\nlogs them), test accuracy after each epoch, the gradient code of a chosen param,\ncheckpoints to download or keep in the browser and, for MNIST, a pad to draw a\ndigit on. ?steps=N trains N steps on load and then titles the page "gradc: done".\n\nOptions:\n${flagsHelp(SERVE_FLAGS)}`,
  graph: `Usage: gradc graph <dir> [--stage forward|backward|kernels] [--format text|dot|svg|html]\n\nPrints the graph of one compilation stage, as written to <dir>/graphs/; or draws\nthe forward or training graph (fused kernels as clusters) as DOT, SVG (to stdout\nor -o FILE) or a self-contained HTML page (to <dir>/graphs/graph.html or -o FILE).\n\nOptions:\n${flagsHelp(GRAPH_FLAGS)}`,
};

/**
 * A graph's name as a folder name under build/: a name is data, so `../x`,
 * `/etc` or control characters never choose where a bundle is written.
 */
export function folderName(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9._-]/g, "_").replace(/^[.]+/, "_");
  return safe === "" ? "model" : safe.slice(0, 100);
}

/** Exactly one positional argument, named in the error. */
function onePositional(positional: readonly string[], what: string, command: string): string {
  if (positional.length === 0) throw new UsageError(`gradc ${command} needs ${what} (see gradc ${command} --help)`);
  if (positional.length > 1) throw new UsageError(`gradc ${command} takes one ${what}, got: ${positional.join(" ")}`);
  return positional[0]!;
}

function oneOf<T extends string>(value: string | undefined, allowed: readonly T[], flag: string): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`--${flag} must be one of ${allowed.join(", ")} (got "${value}")`);
  return value as T;
}

/** Whether a value looks like a gradc Graph (checked structurally: the model may load its own copy of gradc). */
function isGraph(v: unknown): v is Graph {
  return typeof v === "object" && v !== null && typeof (v as Graph).name === "string" && Array.isArray((v as Graph).params) && "ctx" in v;
}

/** The model's optimizer with the command line's choices over it. */
export function mergeOptimizer(base: OptimizerSpec | undefined, name: OptimizerSpec["name"] | undefined, lr: number | undefined): OptimizerSpec | undefined {
  if (name === undefined && lr === undefined) return base;
  let opt: OptimizerSpec;
  if (name === undefined || name === base?.name) opt = base ?? { name: name ?? "adam", lr: 0.001 };
  else {
    // another optimizer: keep the rate and its schedule, drop the old optimizer's own settings
    opt = { name, lr: base?.lr ?? 0.001 };
    if (base?.schedule) opt = { ...opt, schedule: base.schedule };
    if (base?.warmupSteps !== undefined) opt = { ...opt, warmupSteps: base.warmupSteps };
  }
  return lr === undefined ? opt : { ...opt, lr };
}

async function compileCommand(argv: readonly string[], io: CliIO): Promise<void> {
  const { flags, positional } = parseFlags(argv, COMPILE_FLAGS, "gradc compile");
  if (flags["help"]) return io.out(COMMAND_HELP["compile"]!);
  const modelPath = resolve(onePositional(positional, "a model file", "compile"));
  if (!existsSync(modelPath)) throw new Error(`${modelPath}: no such model file`);
  const mod = (await import(pathToFileURL(modelPath).href)) as { default?: unknown; config?: ModelConfig };
  if (!isGraph(mod.default)) throw new Error(`${modelPath}: the default export must be a graph (export default graph("name", (g) => ...))`);
  const graph = mod.default;
  const config: ModelConfig = mod.config ?? {};
  const lr = flagNumber(flags, "lr");
  const optimizer = mergeOptimizer(config.optimizer, oneOf(flagString(flags, "optimizer"), ["sgd", "momentum", "adam", "adamw"], "optimizer"), lr);
  const dtype = oneOf(flagString(flags, "dtype"), ["f32", "f64"], "dtype");
  const precision = oneOf(flagString(flags, "precision"), ["f32", "mixed"], "precision");
  const gradClip = flagNumber(flags, "grad-clip");
  const outDir = resolve(flagString(flags, "out") ?? join("build", folderName(graph.name)));
  const options: CompileOptions = {
    ...config,
    outDir,
    ...targetOptions(flags),
    ...(optimizer ? { optimizer } : {}),
    ...(gradClip !== undefined ? { gradClip } : {}),
    ...(dtype ? { dtype } : {}),
    ...(precision ? { precision } : {}),
    ...(flags["dump-passes"] ? { dumpPasses: true } : {}),
    ...(flags["no-fusion"] ? { fusion: false } : {}),
    ...(flags["remat"] ? { remat: true } : {}),
    ...(flagString(flags, "init-from") !== undefined ? { initFrom: resolve(flagString(flags, "init-from")!) } : {}),
  };
  // imported here, so `gradc train`, `inspect` and `graph` run without loading the compiler
  const { compile } = await import("./compile.js");
  const started = performance.now();
  const result = compile(graph, options);
  const ms = performance.now() - started;
  const m = readManifest(outDir);
  const values = m.params.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
  const rel = relative(process.cwd(), outDir);
  const shown = rel === "" ? "." : rel.startsWith("..") ? outDir : rel;
  io.out(`compiled ${terminalText(m.name)} → ${terminalText(shown)}`);
  for (const r of result.recovered) io.out(`  an interrupted compile's folder: ${r}`);
  if (result.kept.length) io.out(`  kept the previous bundle's ${result.kept.map((k) => `${k}/`).join(" and ")} (a checkpoint of another graph is refused at --resume)`);
  io.out(`  ${m.kernels.length} kernels, ${m.params.length} params (${values} values), ${m.optimizer.name} lr ${m.optimizer.lr}, ${m.mixed ? `mixed precision (bfloat16 activations, loss scale from ${m.mixed.initialScale})` : m.dtype}, ${m.backend} backend${m.backendChoice ? ` (auto: ${terminalText(m.backendChoice.reason)})` : ""}`);
  const t = result.timings;
  io.out(`  compile time ${ms.toFixed(0)} ms (lower ${t.lower.toFixed(0)}, emit ${t.emit.toFixed(0)}, transpile ${t.transpile.toFixed(0)}, write ${t.write.toFixed(0)} ms)`);
  if (result.summary) io.out(result.summary.text);
  io.out(`  train: node ${join(shown, m.files.trainer)}   inspect: gradc inspect ${shown} --grad ${m.params[0]?.name ?? "NAME"}`);
}

async function trainCommand(argv: readonly string[], io: CliIO, trainIO: TrainIO): Promise<TrainSummary | undefined> {
  const { flags, positional, positionalAt } = parseFlags(argv, TRAIN_FLAGS, "gradc train");
  if (flags["help"]) {
    io.out(COMMAND_HELP["train"]!);
    return undefined;
  }
  const dir = resolve(onePositional(positional, "a bundle folder", "train"));
  readManifest(dir);
  // drop the folder argument itself, not every argument equal to it (`--out DIR` may name the same folder)
  const rest = argv.filter((_, i) => i !== positionalAt[0]);
  // the bundle's own copy of the runtime, as `node <dir>/train.js` would use
  const own = join(dir, "runtime", "trainer.js");
  const { main } = (existsSync(own) ? await import(pathToFileURL(own).href) : await import("../runtime/trainer.js")) as typeof import("../runtime/trainer.js");
  return main(dir, rest, trainIO);
}

async function inspectCommand(argv: readonly string[], io: CliIO): Promise<void> {
  const { flags, positional } = parseFlags(argv, INSPECT_FLAGS, "gradc inspect");
  if (flags["help"]) return io.out(COMMAND_HELP["inspect"]!);
  const dir = resolve(onePositional(positional, "a bundle folder", "inspect"));
  const grad = flagString(flags, "grad");
  const stage = flagString(flags, "stage");
  const kernel = flagString(flags, "kernel");
  if (flags["shader"] === true) {
    if (flags["math"] || stage !== undefined || flags["kir"] || flags["with-forward"]) throw new UsageError("--shader prints shaders; use it with --grad NAME or --kernel NAME alone");
    const { shaderText } = await import("./inspect/shader.js");
    return io.out(await shaderText(dir, { ...(grad !== undefined ? { grad } : {}), ...(kernel !== undefined ? { kernel } : {}) }));
  }
  const { inspectText } = await import("./inspect/command.js");
  io.out(
    inspectText(dir, {
      ...(grad !== undefined ? { grad } : {}),
      ...(stage !== undefined ? { stage } : {}),
      ...(kernel !== undefined ? { kernel } : {}),
      math: flags["math"] === true,
      kir: flags["kir"] === true,
      withForward: flags["with-forward"] === true,
      wat: flags["wat"] === true,
    }),
  );
}

async function serveCommand(argv: readonly string[], io: CliIO): Promise<void> {
  const { flags, positional } = parseFlags(argv, SERVE_FLAGS, "gradc serve");
  if (flags["help"]) return io.out(COMMAND_HELP["serve"]!);
  const dir = resolve(onePositional(positional, "a bundle folder", "serve"));
  const port = flagNumber(flags, "port");
  if (port !== undefined && !(port >= 0 && port <= 65535)) throw new UsageError(`--port must be in 0..65535 (got ${port})`);
  const host = flagString(flags, "host");
  const { serveBundle, openInBrowser } = await import("./serve/server.js");
  const serving = await serveBundle(dir, { ...(port === undefined ? {} : { port }), ...(host === undefined ? {} : { host }) });
  io.out(`serving ${terminalText(dir)} at ${serving.url} (Ctrl-C stops)`);
  if (flags["open"]) openInBrowser(serving.url, io.err);
  await new Promise<void>((done) => {
    const stop = (): void => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      void serving.close().then(done);
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
}

async function graphCommand(argv: readonly string[], io: CliIO): Promise<void> {
  const { flags, positional } = parseFlags(argv, GRAPH_FLAGS, "gradc graph");
  if (flags["help"]) return io.out(COMMAND_HELP["graph"]!);
  const dir = resolve(onePositional(positional, "a bundle folder", "graph"));
  readManifest(dir);
  const asked = flagString(flags, "stage") ?? "forward";
  const format = oneOf(flagString(flags, "format"), ["text", "dot", "svg", "html"], "format") ?? "text";
  if (format !== "text") {
    const { writeDrawing } = await import("./viz/draw.js");
    const hl = flagString(flags, "highlight-grad");
    const out = flagString(flags, "out");
    const wrote = await writeDrawing(dir, { format, stage: asked, ...(hl !== undefined ? { highlightGrad: hl } : {}) }, out === undefined ? undefined : resolve(out));
    return io.out(wrote);
  }
  if (flags["highlight-grad"] !== undefined || flags["out"] !== undefined) throw new UsageError("--highlight-grad and -o draw: use them with --format dot, svg or html");
  const stage = asked === "fused" ? "kernels" : asked;
  const file = join(dir, "graphs", `${stage}.txt`);
  if (!/^[A-Za-z0-9_-]+$/.test(stage) || !existsSync(file)) {
    const graphs = join(dir, "graphs");
    const stages = existsSync(graphs) ? readdirSync(graphs).filter((f) => f.endsWith(".txt")).map((f) => f.slice(0, -4)) : [];
    throw new Error(`no stage "${asked}" in ${dir}; the stages are ${stages.sort().join(", ") || "(none)"}`);
  }
  io.out(readFileSync(file, "utf8").trimEnd());
}

/**
 * Runs the gradc command line; returns the exit code. Errors print one line
 * (`gradc: message`), or the stack with `--verbose`.
 */
export async function run(argv: readonly string[], raw: CliIO = defaultIO, trainIO: TrainIO = {}): Promise<number> {
  // names from a graph or a file are printed as data: no terminal control character gets through
  const io: CliIO = { out: (t) => raw.out(screenText(t)), err: (t) => raw.err(screenText(t)) };
  const verbose = argv.includes("--verbose");
  const args = argv.filter((a) => a !== "--verbose");
  const [command, ...rest] = args;
  try {
    switch (command) {
      case undefined:
      case "help":
      case "--help":
      case "-h":
        io.out(rest[0] && COMMAND_HELP[rest[0]] ? COMMAND_HELP[rest[0]]! : USAGE);
        return 0;
      case "compile":
        await compileCommand(rest, io);
        return 0;
      case "train":
        await trainCommand(rest, io, trainIO);
        return 0;
      case "inspect":
        await inspectCommand(rest, io);
        return 0;
      case "graph":
        await graphCommand(rest, io);
        return 0;
      case "serve":
        await serveCommand(rest, io);
        return 0;
      case "check":
        return await checkCommand(rest, io.out);
      case "sample":
        return await sampleCommand(rest, io.out, io.err);
      default:
        throw new UsageError(`unknown command "${command}"; the commands are compile, train, check, sample, inspect, graph, serve (see gradc --help)`);
    }
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    io.err(verbose && err.stack ? err.stack : `gradc: ${err.message}`);
    return 1;
  }
}
