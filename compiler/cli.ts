// The gradc command line: compile a model file to a bundle, train a bundle,
// inspect the emitted gradient code, print a stage's graph.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import ts from "typescript";
import type { CompileOptions, ModelConfig } from "./config.js";
import type { Graph } from "./ir/graph.js";
import type { OptimizerSpec } from "../runtime/manifest.js";
import type { FlagDefs } from "../runtime/flags.js";
import { flagNumber, flagsHelp, flagString, parseFlags, UsageError } from "../runtime/flags.js";
import { readManifest } from "../runtime/load.js";
import { trainHelp, TRAIN_FLAGS } from "../runtime/trainer.js";
import type { TrainIO, TrainSummary } from "../runtime/trainer.js";
import { checkCommand, checkHelp } from "../runtime/check.js";

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
  backend: { kind: "string", value: "ts|gpu", help: "kernel backend (default ts)" },
  optimizer: { kind: "string", value: "NAME", help: "sgd, momentum, adam or adamw (default: the model's config, else adam)" },
  lr: { kind: "number", value: "X", help: "base learning rate" },
  "grad-clip": { kind: "number", value: "X", help: "clip gradients to this global norm" },
  dtype: { kind: "string", value: "f32|f64", help: "float precision of the bundle (default f32)" },
  "dump-passes": { kind: "boolean", help: "write the graph after each graph pass to <dir>/graphs/passes/" },
  ...HELP_FLAG,
};
const INSPECT_FLAGS: FlagDefs = { grad: { kind: "string", value: "NAME", help: "a param: print the kernels that compute dLoss/dNAME" }, ...HELP_FLAG };
const GRAPH_FLAGS: FlagDefs = { stage: { kind: "string", value: "STAGE", help: "forward, backward or kernels (default forward)" }, ...HELP_FLAG };

const USAGE = `gradc: a compiler for training neural networks

Usage:
  gradc compile <model.ts> -o <dir> [options]   compile a model file into a kernel bundle
  gradc train <dir> [options]                   train a bundle (the same as: node <dir>/train.js)
  gradc check <dir> [options]                   check a float64 bundle's gradients against finite differences
  gradc inspect <dir> --grad NAME               print the emitted code that computes dLoss/dNAME
  gradc graph <dir> --stage forward|backward|kernels
                                                print the graph of a compilation stage

Run gradc <command> --help for a command's options. --verbose shows stack traces on errors.`;

const COMMAND_HELP: Record<string, string> = {
  compile: `Usage: gradc compile <model.ts> -o <dir> [options]\n\nImports the model file (its default export is the graph, its \`config\` export the\ndefaults), applies the options below over the config, and writes a kernel bundle.\n\nOptions:\n${flagsHelp(COMPILE_FLAGS)}`,
  train: trainHelp("gradc train <dir>"),
  check: checkHelp("gradc check <dir>"),
  inspect: `Usage: gradc inspect <dir> --grad NAME\n\nPrints, in execution order, the emitted functions of <dir>/step.ts that the\ngradient of the loss with respect to param NAME depends on.\n\nOptions:\n${flagsHelp(INSPECT_FLAGS)}`,
  graph: `Usage: gradc graph <dir> [--stage forward|backward|kernels]\n\nPrints the graph of one compilation stage, as written to <dir>/graphs/.\n\nOptions:\n${flagsHelp(GRAPH_FLAGS)}`,
};

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
  const backend = oneOf(flagString(flags, "backend"), ["ts", "gpu"], "backend");
  const dtype = oneOf(flagString(flags, "dtype"), ["f32", "f64"], "dtype");
  const gradClip = flagNumber(flags, "grad-clip");
  const outDir = resolve(flagString(flags, "out") ?? join("build", graph.name));
  const options: CompileOptions = {
    ...config,
    outDir,
    ...(backend ? { backend } : {}),
    ...(optimizer ? { optimizer } : {}),
    ...(gradClip !== undefined ? { gradClip } : {}),
    ...(dtype ? { dtype } : {}),
    ...(flags["dump-passes"] ? { dumpPasses: true } : {}),
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
  io.out(`compiled ${m.name} → ${shown}`);
  io.out(`  ${m.kernels.length} kernels, ${m.params.length} params (${values} values), ${m.optimizer.name} lr ${m.optimizer.lr}, ${m.dtype}, ${m.backend} backend`);
  io.out(`  compile time ${ms.toFixed(0)} ms`);
  if (result.summary) io.out(result.summary.text);
  io.out(`  train: node ${join(shown, m.files.trainer)}   inspect: gradc inspect ${shown} --grad ${m.params[0]?.name ?? "NAME"}`);
}

async function trainCommand(argv: readonly string[], io: CliIO, trainIO: TrainIO): Promise<TrainSummary | undefined> {
  const { flags, positional } = parseFlags(argv, TRAIN_FLAGS, "gradc train");
  if (flags["help"]) {
    io.out(COMMAND_HELP["train"]!);
    return undefined;
  }
  const dir = resolve(onePositional(positional, "a bundle folder", "train"));
  readManifest(dir);
  const rest = argv.filter((a) => a !== positional[0]);
  // the bundle's own copy of the runtime, as `node <dir>/train.js` would use
  const own = join(dir, "runtime", "trainer.js");
  const { main } = (existsSync(own) ? await import(pathToFileURL(own).href) : await import("../runtime/trainer.js")) as typeof import("../runtime/trainer.js");
  return main(dir, rest, trainIO);
}

/** The top-level function declarations of a source file, by name, with their JSDoc. */
export function functionsOf(source: string, file = "step.ts"): Map<string, string> {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const out = new Map<string, string>();
  for (const st of sf.statements) {
    if (ts.isFunctionDeclaration(st) && st.name) {
      // getStart with JSDoc included starts at the comment above the function
      out.set(st.name.text, source.slice(st.getStart(sf, true), st.end));
    }
  }
  return out;
}

function inspectCommand(argv: readonly string[], io: CliIO): void {
  const { flags, positional } = parseFlags(argv, INSPECT_FLAGS, "gradc inspect");
  if (flags["help"]) return io.out(COMMAND_HELP["inspect"]!);
  const dir = resolve(onePositional(positional, "a bundle folder", "inspect"));
  const m = readManifest(dir);
  const names = m.params.map((p) => p.name);
  const name = flagString(flags, "grad");
  if (name === undefined) throw new UsageError(`gradc inspect needs --grad NAME; the params are ${names.join(", ") || "(none)"}`);
  const param = m.params.find((p) => p.name === name);
  if (!param) throw new Error(`no param "${name}" in ${m.name}; the params are ${names.join(", ") || "(none)"}`);
  const kernels = m.kernels.filter((k) => k.gradOf?.includes(name));
  if (kernels.length === 0) throw new Error(`param "${name}" has no gradient kernels${param.trainable ? "" : " (it is frozen)"}`);
  const stepFile = join(dir, m.files.step.replace(/\.js$/, ".ts"));
  const functions = functionsOf(readFileSync(stepFile, "utf8"), stepFile);
  io.out(`// dLoss/d${name} (${param.dtype}[${param.shape.join(",")}]): ${kernels.length} kernels in execution order, from ${stepFile}`);
  for (const k of kernels) {
    const text = functions.get(k.name);
    io.out("");
    io.out(text ?? `// ${k.name}: ${k.node} (not found in ${stepFile})`);
  }
}

function graphCommand(argv: readonly string[], io: CliIO): void {
  const { flags, positional } = parseFlags(argv, GRAPH_FLAGS, "gradc graph");
  if (flags["help"]) return io.out(COMMAND_HELP["graph"]!);
  const dir = resolve(onePositional(positional, "a bundle folder", "graph"));
  readManifest(dir);
  const asked = flagString(flags, "stage") ?? "forward";
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
export async function run(argv: readonly string[], io: CliIO = defaultIO, trainIO: TrainIO = {}): Promise<number> {
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
        inspectCommand(rest, io);
        return 0;
      case "graph":
        graphCommand(rest, io);
        return 0;
      case "check":
        return await checkCommand(rest, io.out);
      default:
        throw new UsageError(`unknown command "${command}"; the commands are compile, train, check, inspect, graph (see gradc --help)`);
    }
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    io.err(verbose && err.stack ? err.stack : `gradc: ${err.message}`);
    return 1;
  }
}
