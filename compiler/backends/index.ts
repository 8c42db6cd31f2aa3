// The target registry: every backend the compiler can emit for, by name.
// Adding a backend is one folder under compiler/backends/ and one line here.
import type { Target } from "./target.js";
import { tsTarget } from "./ts/target.js";
import { wasmTarget } from "./wasm/target.js";
import { gpuTarget } from "./gpu/target.js";
import { pickBackend } from "./auto.js";

/** The targets by name. */
export const TARGETS = {
  ts: tsTarget,
  wasm: wasmTarget,
  gpu: gpuTarget,
} as const satisfies Readonly<Record<string, Target>>;

/** A backend name `compile()` accepts. */
export type BackendName = keyof typeof TARGETS;

/** Backends planned but not built yet: asked for, they are refused with a clear error. */
const PLANNED: readonly string[] = [];

/**
 * The target of a compile: `backend` by name (default "wasm", whose kernels
 * are TypeScript with large f32 matmul products in WebAssembly); `wasm: false`
 * (the CLI's --no-wasm) picks "ts" when no backend is named.
 */
export function targetFor(options: TargetOptions): Target {
  if (options.backend === "wasm" && options.wasm === false) throw new Error(`compile: backend "wasm" with wasm: false; name one of them`);
  // compile() resolves "auto" with all its options first (see resolveAuto); this answers a bare "auto"
  const name: string = options.backend === "auto" ? pickBackend(options).backend : (options.backend ?? (options.wasm === false ? "ts" : "wasm"));
  if (Object.hasOwn(TARGETS, name)) return TARGETS[name as BackendName];
  if (PLANNED.includes(name)) throw new Error(`compile: backend "${name}" is not available yet; use ${names()}`);
  throw new Error(`compile: unknown backend "${name}"; use ${names()}`);
}

const names = (): string => Object.keys(TARGETS).map((n) => `"${n}"`).join(" or ");

/** The backends whose capabilities `has` accepts, by name, as an error message lists them: `"ts" or "wasm"`. */
export function backendsWhere(has: (c: Target["capabilities"]) => boolean, joiner = " or "): string {
  return Object.values(TARGETS).filter((t) => has(t.capabilities)).map((t) => `"${t.name}"`).join(joiner);
}

/**
 * The CSP script-src sources, besides 'self', a page needs to run a bundle
 * whose manifest.backend is `device` (its target's `pageScriptSources`):
 * none for "ts", 'wasm-unsafe-eval' for "wasm", 'unsafe-eval' for "gpu".
 */
export function pageScriptSources(device: string): readonly string[] {
  return [...new Set(Object.values(TARGETS).filter((t: Target) => t.device === device).flatMap((t: Target) => t.pageScriptSources ?? []))];
}

/** How a compile names its target (compile()'s options; the registry owns them). */
export interface TargetOptions {
  /**
   * The kernel backend (default "wasm" for f32: TypeScript kernels, large matmul
   * products in WebAssembly SIMD); "auto": "gpu" when WebGPU gives an adapter
   * where the model is compiled, else "wasm" (see auto.ts).
   */
  readonly backend?: BackendName | "auto";
  /** false picks the "ts" backend when none is named (the CLI's --no-wasm). */
  readonly wasm?: boolean;
}

/** Only the target-choosing options of `options` (to compile a second bundle for the same target). */
export function targetOptionsOf(options: TargetOptions): TargetOptions {
  return {
    ...(options.backend !== undefined ? { backend: options.backend } : {}),
    ...(options.wasm !== undefined ? { wasm: options.wasm } : {}),
  };
}

/** The compile command's flags that choose the target. */
export const TARGET_FLAGS = {
  backend: { kind: "string", value: [...Object.keys(TARGETS), ...PLANNED, "auto"].join("|"), help: "kernel backend (default wasm: TypeScript kernels, large matmuls in WebAssembly SIMD; auto: gpu when WebGPU has an adapter here, else wasm)" },
  "no-wasm": { kind: "boolean", help: "the ts backend: keep large matmuls in TypeScript instead of WebAssembly SIMD" },
} as const;

/** TargetOptions from parsed command-line flags (an unknown backend name is refused by `targetFor`). */
export function targetOptions(flags: Readonly<Record<string, unknown>>): TargetOptions {
  const backend = flags["backend"];
  return {
    ...(typeof backend === "string" ? { backend: backend as BackendName | "auto" } : {}),
    ...(flags["no-wasm"] === true ? { wasm: false } : {}),
  };
}
