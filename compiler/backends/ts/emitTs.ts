// The TypeScript emitter: builds forward.ts and step.ts with ts-morph (one
// module-level function per kernel, literal sizes and offsets) and transpiles
// them to JavaScript. User text reaches the code only as sanitized identifiers
// and neutralized comments.
import { IndentationText, Project, ts } from "ts-morph";
import type { FunctionDeclarationStructure, OptionalKind, SourceFile } from "ts-morph";
import { bf16Helpers, stmtsJs } from "./jsExpr.js";
import type { Bindings } from "./jsExpr.js";
import { numLit } from "./jsExpr.js";
import type { ArenaPlan } from "../../plan/arena.js";
import { offsetOf } from "../../plan/arena.js";
import type { Kernel, Schedule } from "../../lower/schedule.js";
import { kernelsOf } from "../../lower/schedule.js";
import { commentText } from "../../lower/names.js";
import type { Buffer } from "../../lower/lower.js";
import type { EmittedKernels, KernelSource } from "../target.js";
import type { ExternWork, Stmt } from "../../kernel/kir.js";
import { PROBE_FLAGS, probedBody } from "../../kernel/probe.js";

/** What the hooks see of a kernel. */
export interface HookedKernel {
  readonly name: string;
  readonly extern?: ExternWork;
  readonly body: readonly Stmt[];
  readonly buffers: Kernel["buffers"];
  readonly probes?: Kernel["probes"];
}

/** Where an extern statement is emitted: the kernel's bindings, and whether in its checked form (--check-numerics). */
export interface ExternSite {
  readonly bind: Bindings;
  readonly checked: boolean;
}

/** What a target whose kernels are TypeScript adds to the emitted modules. */
export interface EmitHooks {
  /** Module-level TypeScript statements the kernels of one file need (run once when the module loads). */
  preamble(ks: readonly HookedKernel[]): string[];
  /** The JavaScript of a kernel's extern statement. */
  externJs(k: HookedKernel, s: Stmt & { k: "extern" }, site: ExternSite): string[];
  /** The array a kernel's scratch buffer lives in, indexed from 0. */
  readonly scratchArray: string;
  /** Module-level names the preamble declares, which no kernel may be named. */
  readonly moduleNames: readonly string[];
  /** Names the preamble declares that a module with a non-empty preamble exports (for the runtime). */
  readonly exported?: readonly string[];
}

/** Hooks of a target whose kernels are plain TypeScript. */
export const PLAIN_TS: EmitHooks = {
  preamble: () => [],
  externJs: (k, s) => {
    throw new Error(`emit: kernel ${k.name} has an extern ${s.call}, which plain TypeScript cannot run`);
  },
  scratchArray: "SCRATCH",
  moduleNames: [],
};

/** The emitted modules' TypeScript text. */
export interface EmittedTs {
  readonly forward: string;
  readonly step: string;
  /** Each kernel's function as emitted (step.ts's for a kernel both modules hold), for `gradc inspect`. */
  readonly functions: ReadonlyMap<string, KernelSource>;
}

/** An in-memory ts-morph project that writes two-space indentation. */
export function emitProject(): Project {
  return new Project({ useInMemoryFileSystem: true, manipulationSettings: { indentationText: IndentationText.TwoSpaces } });
}

const ARENA_PARAMS = [
  { name: "F", type: "Float32Array | Float64Array" },
  { name: "I", type: "Int32Array" },
];

/** The JSDoc of a kernel: the node it computes and where it came from. */
function kernelDoc(k: Kernel): string {
  return commentText(k.where ? `${k.what}  # ${k.where}` : k.what);
}

/** How a kernel binds its buffer names: arena buffers at their offsets, its scratch (if any) in the target's scratch array. */
export function kernelBindings(k: Kernel, plan: ArenaPlan, hooks: EmitHooks): Bindings {
  return (name) => {
    if (name === k.extern?.scratch?.name) return { array: hooks.scratchArray, offset: 0 };
    const b = k.buffers[name];
    if (!b) throw new Error(`emit: kernel ${k.name} uses buffer "${name}", which is not bound`);
    return { array: b.arena, offset: offsetOf(plan, b), ...(b.arena === "H" ? { bf16: true } : {}) };
  };
}

/**
 * Arena H of a module whose kernels keep temporaries as bfloat16 (mixed
 * precision): the module's own Uint16Array of `halves` elements per F arena
 * its kernels run on, made on first use (temporaries never outlive one
 * call of forward() or of a step, so no other module reads them), and the
 * conversions its loads and stores call.
 */
function halvesModule(halves: number): string[] {
  return [
    "// arena H: this module's bfloat16 temporaries, one array per F arena the kernels run on",
    "const HALVES = new WeakMap<object, Uint16Array>();",
    "const halvesOf = (F: Float32Array | Float64Array): Uint16Array => {",
    "  let H = HALVES.get(F);",
    "  if (H === undefined) {",
    `    H = new Uint16Array(${halves});`,
    "    HALVES.set(F, H);",
    "  }",
    "  return H;",
    "};",
    bf16Helpers(true),
  ];
}

/** Whether a kernel binds a buffer of arena H. */
const usesHalves = (k: Kernel): boolean => Object.values(k.buffers).some((b) => b.arena === "H");

/** A kernel's body as JavaScript lines, its extern statements emitted by the target's hooks. */
export function kernelJs(k: Kernel, plan: ArenaPlan, hooks: EmitHooks): string[] {
  const bind = kernelBindings(k, plan, hooks);
  return stmtsJs(k.body, bind, 0, (s) => hooks.externJs(k, s, { bind, checked: false }));
}

/** A kernel as a function declaration over the arenas, with literal offsets. */
function kernelFunction(k: Kernel, plan: ArenaPlan, hooks: EmitHooks): OptionalKind<FunctionDeclarationStructure> {
  return {
    name: k.name,
    parameters: ARENA_PARAMS,
    returnType: "void",
    docs: [kernelDoc(k)],
    statements: [...(usesHalves(k) ? ["const H = halvesOf(F);"] : []), ...kernelJs(k, plan, hooks)].join("\n"),
  };
}

/** Statements that write the constants into the arenas, once, at create time. */
function constFills(s: Schedule, plan: ArenaPlan): { decls: string[]; fills: string[] } {
  const decls: string[] = [];
  const fills: string[] = [];
  for (const b of s.buffers) {
    if (b.role !== "const" || !b.fill) continue;
    const at = offsetOf(plan, b);
    if (b.fill.length === 1) {
      fills.push(`${b.arena}.fill(${numLit(b.fill[0]!)}, ${at}, ${at + b.size});`);
    } else {
      const id = `CONST_${b.id}`;
      decls.push(`/** Values of ${commentText(b.label)}. */\nconst ${id}: readonly number[] = [${b.fill.map(numLit).join(", ")}];`);
      fills.push(`${b.arena}.set(${id}, ${at});`);
    }
  }
  return { decls, fills };
}

function header(sf: SourceFile, what: string, s: Schedule, decls: readonly string[]): void {
  sf.addStatements([
    `// ${commentText(`${what} of graph ${JSON.stringify(s.graph.name)}`)}. Generated by gradc; do not edit.`,
    `// Every kernel reads and writes the arenas F (${s.precision} floats) and I (i32, bool) at fixed offsets${s.mixed ? ", and its module's own arena H (f32 temporaries kept as bfloat16)" : ""}.`,
    ...decls,
  ]);
}

const calls = (ks: readonly Kernel[]): string[] => ks.map((k) => `${k.name}(F, I);`);

/** `KERNELS`: the kernels in execution order, for the runtime's --check-numerics mode (one call at a time). */
function kernelTable(sf: SourceFile, ks: readonly Kernel[]): void {
  sf.addStatements([
    "/** The kernels in execution order, by name (the runtime's --check-numerics mode runs them one at a time). */",
    `export const KERNELS: readonly (readonly [string, (F: Float32Array | Float64Array, I: Int32Array) => void])[] = [${ks.map((k) => `["${k.name}", ${k.name}]`).join(", ")}];`,
  ]);
}

/**
 * `CHECKED`: the checked form of each fused kernel that has one (kernel/probe.ts),
 * for --check-numerics: the same results, and flags naming the node that made a
 * NaN or infinity. Anonymous functions: no name of them can meet a kernel's.
 */
function checkedTable(sf: SourceFile, ks: readonly Kernel[], plan: ArenaPlan, hooks: EmitHooks): void {
  const rows = ks.flatMap((k) => {
    if (!k.probes?.size) return [];
    const bind = kernelBindings(k, plan, hooks);
    const probed: Bindings = (name) => (name === PROBE_FLAGS ? { array: PROBE_FLAGS, offset: 0 } : bind(name));
    const body = stmtsJs(probedBody(k.body, k.probes), probed, 1, (s) => hooks.externJs(k, s, { bind: probed, checked: true }));
    return [`  ["${k.name}", (F, I, ${PROBE_FLAGS}) => {`, ...body.map((l) => `  ${l}`), "  }],"];
  });
  sf.addStatements([
    "/** Fused kernels in a checked form: the same results, and $nf[i] = 1 where the kernel's i-th node made NaN or infinity out of finite operands (--check-numerics). */",
    `export const CHECKED: readonly (readonly [string, (F: Float32Array | Float64Array, I: Int32Array, ${PROBE_FLAGS}: Uint8Array) => void])[] = [`,
    ...rows,
    "];",
  ]);
}

/** The target's module preamble for the kernels `ks`, and the names it exports. */
function preamble(sf: SourceFile, hooks: EmitHooks, ks: readonly Kernel[]): void {
  const lines = hooks.preamble(ks);
  sf.addStatements(lines);
  if (lines.length && hooks.exported?.length) sf.addStatements(`export { ${hooks.exported.join(", ")} };`);
}

/** forward.ts: `create(F, I)` returns `{ forward() }`, which computes the outputs. */
export function emitForward(s: Schedule, plan: ArenaPlan, hooks: EmitHooks, project = emitProject()): string {
  const sf = project.createSourceFile("forward.ts", "", { overwrite: true });
  const ks = kernelsOf(s, "forward");
  const { decls, fills } = constFills(s, plan);
  header(sf, "Forward pass (predict)", s, decls);
  if (ks.some(usesHalves)) sf.addStatements(halvesModule(plan.halves));
  preamble(sf, hooks, ks);
  sf.addFunctions(ks.map((k) => kernelFunction(k, plan, hooks)));
  kernelTable(sf, ks);
  checkedTable(sf, ks, plan, hooks);
  sf.addFunction({
    isExported: true,
    name: "create",
    parameters: ARENA_PARAMS,
    returnType: "{ forward(): void }",
    docs: ["Binds the kernels to the arenas; forward() reads the inputs and params and writes the outputs."],
    statements: [...fills, "return {", "  forward(): void {", ...calls(ks).map((c) => `    ${c}`), "  },", "};"],
  });
  return sf.getFullText();
}

/** The [start, end) ranges of arena F that the gradients of the trainable params cover, merged where they touch. */
function gradRanges(s: Schedule, plan: ArenaPlan): [number, number][] {
  const spans = [...s.grads.values()].map((b) => [offsetOf(plan, b), offsetOf(plan, b) + b.size] as [number, number]).sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [from, to] of spans) {
    const last = out.at(-1);
    if (last && from <= last[1]) last[1] = Math.max(last[1], to);
    else out.push([from, to]);
  }
  return out;
}

/** The smallest and largest loss scale: a normal f32 power of two (as the runtime's LossScaler). */
const MIN_LOSS_SCALE = 2 ** -24;
const MAX_LOSS_SCALE = 2 ** 126;

/**
 * Mixed precision's step(): gradients(), then the update only when every
 * gradient is finite. An overflowed step skips the update and halves the loss
 * scale in its hyper slot; after `growthInterval` good steps in a row the
 * scale doubles, exactly as the runtime's LossScaler does for the trainer.
 * step() returns whether the update ran.
 */
function scaledStep(s: Schedule, plan: ArenaPlan): { setup: string[]; step: string[] } | undefined {
  if (!s.mixed || !s.hyper.lossScale || s.grads.size === 0) return undefined;
  const at = offsetOf(plan, s.hyper.lossScale);
  // x·0 is 0 for every finite x and NaN for ±Infinity and NaN
  const sums = gradRanges(s, plan).map(([from, to]) => `  for (let i = ${from}; i < ${to}; i++) z += F[i] * 0;`);
  return {
    setup: [
      `F[${at}] = ${numLit(s.mixed.initialScale)};`,
      "/** Good steps in a row since the loss scale last changed. */",
      "let goodSteps = 0;",
      "/** Whether every gradient is finite (no overflow in the scaled backward pass). */",
      "const gradientsFinite = (): boolean => {",
      "  let z = 0;",
      ...sums,
      "  return z === 0;",
      "};",
    ],
    step: [
      "  step(): boolean {",
      "    gradients();",
      "    if (!gradientsFinite()) {",
      `      F[${at}] = Math.max(${numLit(MIN_LOSS_SCALE)}, F[${at}] / 2);`,
      "      goodSteps = 0;",
      "      return false;",
      "    }",
      "    update();",
      `    if (++goodSteps >= ${s.mixed.growthInterval}) {`,
      "      goodSteps = 0;",
      `      F[${at}] = Math.min(${numLit(MAX_LOSS_SCALE)}, F[${at}] * 2);`,
      "    }",
      "    return true;",
      "  },",
    ],
  };
}

/**
 * step.ts: `create(F, I)` returns `{ gradients(), update(), step() }`.
 * gradients() computes the loss and every gradient; update() clips and
 * applies the optimizer from the gradients, with the lr and step count the
 * runtime wrote into the hyper slots; step() is gradients() then update().
 * With mixed precision, step() applies the dynamic loss scale itself (see
 * `scaledStep`) and returns whether the update ran.
 */
export function emitStep(s: Schedule, plan: ArenaPlan, hooks: EmitHooks, project = emitProject()): string {
  const sf = project.createSourceFile("step.ts", "", { overwrite: true });
  const grads = kernelsOf(s, "gradients");
  const updates = kernelsOf(s, "update");
  const { decls, fills } = constFills(s, plan);
  header(sf, `Training step (loss, gradients, ${s.optimizer.name} update)`, s, decls);
  if ([...grads, ...updates].some(usesHalves)) sf.addStatements(halvesModule(plan.halves));
  preamble(sf, hooks, [...grads, ...updates]);
  sf.addFunctions([...grads, ...updates].map((k) => kernelFunction(k, plan, hooks)));
  kernelTable(sf, [...grads, ...updates]);
  checkedTable(sf, [...grads, ...updates], plan, hooks);
  const scaled = scaledStep(s, plan);
  sf.addFunction({
    isExported: true,
    name: "create",
    parameters: ARENA_PARAMS,
    returnType: `{ gradients(): void; update(): void; step(): ${scaled ? "boolean" : "void"} }`,
    docs: [
      scaled
        ? "Binds the kernels to the arenas and writes the initial loss scale. step() skips the update of a step whose gradients overflowed and returns whether it ran. Nothing is allocated per call."
        : "Binds the kernels to the arenas. Nothing is allocated per call.",
    ],
    statements: [
      ...fills,
      "const gradients = (): void => {",
      ...calls(grads).map((c) => `  ${c}`),
      "};",
      "const update = (): void => {",
      ...calls(updates).map((c) => `  ${c}`),
      "};",
      ...(scaled?.setup ?? []),
      "return {",
      "  gradients,",
      "  update,",
      ...(scaled?.step ?? ["  step(): void {", "    gradients();", "    update();", "  },"]),
      "};",
    ],
  });
  return sf.getFullText();
}

/** Both modules, sharing one in-memory project, and each kernel's function in them. */
export function emitTs(s: Schedule, plan: ArenaPlan, hooks: EmitHooks): EmittedTs {
  const project = emitProject();
  const forward = emitForward(s, plan, hooks, project);
  const step = emitStep(s, plan, hooks, project);
  const functions = new Map<string, KernelSource>();
  for (const file of ["forward.ts", "step.ts"] as const) {
    for (const fn of project.getSourceFileOrThrow(file).getFunctions()) {
      const name = fn.getName();
      if (name !== undefined && !fn.isExported()) functions.set(name, { file, text: fn.getText(true) });
    }
  }
  return { forward, step, functions };
}

/**
 * The kernel files of a target whose kernels are TypeScript: forward.ts and
 * step.ts, and their JavaScript (forward.js, step.js), which the host device loads.
 */
export function emitTsKernels(s: Schedule, plan: ArenaPlan, hooks: EmitHooks): EmittedKernels {
  const ts = emitTs(s, plan, hooks);
  const t0 = performance.now();
  const files = new Map<string, string>([
    ["forward.ts", ts.forward],
    ["forward.js", transpile(ts.forward, "forward.ts")],
    ["step.ts", ts.step],
    ["step.js", transpile(ts.step, "step.ts")],
  ]);
  return { files, functions: ts.functions, transpileMs: performance.now() - t0 };
}

/** Changes whenever `transpile`'s options change, so cached output is not reused across them. */
export const TRANSPILE_VERSION = "es2022-esnext-1";

/** TypeScript → ES2022 JavaScript (ES modules), one file at a time; no type checking. */
export function transpile(source: string, fileName = "module.ts"): string {
  const out = ts.transpileModule(source, {
    fileName,
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, removeComments: false },
    reportDiagnostics: false,
  });
  return out.outputText;
}


/** Labels of the buffers a kernel binds, as kernels.txt prints them. */
export function bindingList(k: Kernel, plan: ArenaPlan): string {
  return Object.entries(k.buffers)
    .map(([name, b]: [string, Buffer]) => `${name}=${JSON.stringify(b.label)}@${b.arena}[${offsetOf(plan, b)}:${offsetOf(plan, b) + b.size}]`)
    .join(" ");
}
