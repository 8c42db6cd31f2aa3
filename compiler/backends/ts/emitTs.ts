// The TypeScript emitter: builds forward.ts and step.ts with ts-morph (one
// module-level function per kernel, literal sizes and offsets) and transpiles
// them to JavaScript. User text reaches the code only as sanitized identifiers
// and neutralized comments.
import { Buffer as NodeBuffer } from "node:buffer";
import { IndentationText, Project, ts } from "ts-morph";
import type { FunctionDeclarationStructure, OptionalKind, SourceFile } from "ts-morph";
import { stmtsJs } from "./jsExpr.js";
import type { Bindings } from "./jsExpr.js";
import { numLit } from "./jsExpr.js";
import type { ArenaPlan } from "../../plan/arena.js";
import { offsetOf } from "../../plan/arena.js";
import type { Kernel, Schedule } from "../../lower/schedule.js";
import { kernelsOf } from "../../lower/schedule.js";
import { commentText } from "../../lower/names.js";
import { SCRATCH } from "../../lower/fusedKernel.js";
import { scratchFloats } from "../wasm/gemmWasm.js";
import { encodeModule, pagesFor } from "../wasm/wasm.js";
import type { Buffer } from "../../lower/lower.js";

/** One kernel's emitted function, JSDoc included, and the module it is in. */
export interface KernelSource {
  readonly file: "forward.ts" | "step.ts";
  readonly text: string;
}

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

/** A kernel as a function declaration over the arenas, with literal offsets. */
function kernelFunction(k: Kernel, plan: ArenaPlan): OptionalKind<FunctionDeclarationStructure> {
  const bind: Bindings = (name) => {
    // the WebAssembly scratch memory, W, is the kernel's own from offset 0
    if (name === SCRATCH) return { array: "W", offset: 0 };
    const b = k.buffers[name];
    if (!b) throw new Error(`emit: kernel ${k.name} uses buffer "${name}", which is not bound`);
    return { array: b.arena, offset: offsetOf(plan, b) };
  };
  // the product's reference loops become the call to its WebAssembly export
  const lines = stmtsJs(k.body, bind, 0, () => [`wasm.${k.native!.product.name}();`]);
  return {
    name: k.name,
    parameters: ARENA_PARAMS,
    returnType: "void",
    docs: [kernelDoc(k)],
    statements: lines.join("\n"),
  };
}

/**
 * The WebAssembly module of a file's matmul products, instantiated once when
 * the module loads: `wasm` holds its exports, `W` views its memory (the
 * kernels' scratch: packed operands and products).
 */
function wasmModule(ks: readonly Kernel[]): string[] {
  const products = ks.flatMap((k) => (k.native ? [k.native.product] : []));
  if (!products.length) return [];
  const floats = Math.max(...products.map((p) => scratchFloats(p)));
  const pages = pagesFor(4 * floats);
  const base64 = NodeBuffer.from(encodeModule(products, pages)).toString("base64");
  return [
    `// WebAssembly SIMD products (f32x4, 4×8 register tiles) of ${products.length} matmul kernel${products.length > 1 ? "s" : ""}; W is their scratch memory.`,
    `const wasmMemory = new WebAssembly.Memory({ initial: ${pages}, maximum: ${pages} });`,
    `const wasm = new WebAssembly.Instance(new WebAssembly.Module(Uint8Array.from(atob("${base64}"), (c) => c.charCodeAt(0))), { env: { memory: wasmMemory } }).exports as unknown as Readonly<Record<string, () => void>>;`,
    `const W = new Float32Array(wasmMemory.buffer);`,
  ];
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
    `// Every kernel reads and writes the arenas F (${s.precision} floats) and I (i32, bool) at fixed offsets.`,
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

/** forward.ts: `create(F, I)` returns `{ forward() }`, which computes the outputs. */
export function emitForward(s: Schedule, plan: ArenaPlan, project = emitProject()): string {
  const sf = project.createSourceFile("forward.ts", "", { overwrite: true });
  const ks = kernelsOf(s, "forward");
  const { decls, fills } = constFills(s, plan);
  header(sf, "Forward pass (predict)", s, decls);
  sf.addStatements(wasmModule(ks));
  sf.addFunctions(ks.map((k) => kernelFunction(k, plan)));
  kernelTable(sf, ks);
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

/**
 * step.ts: `create(F, I)` returns `{ gradients(), update(), step() }`.
 * gradients() computes the loss and every gradient; update() clips and
 * applies the optimizer from the gradients, with the lr and step count the
 * runtime wrote into the hyper slots; step() is gradients() then update().
 */
export function emitStep(s: Schedule, plan: ArenaPlan, project = emitProject()): string {
  const sf = project.createSourceFile("step.ts", "", { overwrite: true });
  const grads = kernelsOf(s, "gradients");
  const updates = kernelsOf(s, "update");
  const { decls, fills } = constFills(s, plan);
  header(sf, `Training step (loss, gradients, ${s.optimizer.name} update)`, s, decls);
  sf.addStatements(wasmModule([...grads, ...updates]));
  sf.addFunctions([...grads, ...updates].map((k) => kernelFunction(k, plan)));
  kernelTable(sf, [...grads, ...updates]);
  sf.addFunction({
    isExported: true,
    name: "create",
    parameters: ARENA_PARAMS,
    returnType: "{ gradients(): void; update(): void; step(): void }",
    docs: ["Binds the kernels to the arenas. Nothing is allocated per call."],
    statements: [
      ...fills,
      "const gradients = (): void => {",
      ...calls(grads).map((c) => `  ${c}`),
      "};",
      "const update = (): void => {",
      ...calls(updates).map((c) => `  ${c}`),
      "};",
      "return {",
      "  gradients,",
      "  update,",
      "  step(): void {",
      "    gradients();",
      "    update();",
      "  },",
      "};",
    ],
  });
  return sf.getFullText();
}

/** Both modules, sharing one in-memory project, and each kernel's function in them. */
export function emitTs(s: Schedule, plan: ArenaPlan): EmittedTs {
  const project = emitProject();
  const forward = emitForward(s, plan, project);
  const step = emitStep(s, plan, project);
  const functions = new Map<string, KernelSource>();
  for (const file of ["forward.ts", "step.ts"] as const) {
    for (const fn of project.getSourceFileOrThrow(file).getFunctions()) {
      const name = fn.getName();
      if (name !== undefined && !fn.isExported()) functions.set(name, { file, text: fn.getText(true) });
    }
  }
  return { forward, step, functions };
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
