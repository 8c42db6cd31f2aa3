// When V8 compiles a bundle's WebAssembly on Node. By default it compiles each
// function lazily on its first call with its baseline compiler (Liftoff) and
// recompiles hot ones with its optimizing compiler (TurboFan) later, so a
// freshly loaded bundle's first steps run baseline code several times slower
// than the steady ones. A kernel module compiles its WebAssembly when it is
// imported; `compiledEagerly` imports it with every function compiled by
// TurboFan at once (`--no-liftoff --no-wasm-lazy-compilation`) and then gives
// the flags back, so other WebAssembly in the process compiles as before. A
// process started with either flag of its own keeps its choice. The kernel
// modules themselves say nothing of this: they run in browsers too.
import v8 from "node:v8";

/** The flags while a kernel module compiles, and what they are otherwise. */
const EAGER = ["--no-liftoff", "--no-wasm-lazy-compilation"];
const DEFAULT = ["--liftoff", "--wasm-lazy-compilation"];

/** Loads under way (loads may overlap: the flags are given back when the last ends). */
let loading = 0;

/** Whether the process chose these flags itself (on its command line or in NODE_OPTIONS). */
const chosen = (): boolean => [...process.execArgv, process.env["NODE_OPTIONS"] ?? ""].some((a) => /liftoff|wasm-lazy-compilation/.test(a));

function setFlags(flags: readonly string[]): void {
  try {
    for (const f of flags) v8.setFlagsFromString(f);
  } catch {
    // flags cannot be set here: V8 compiles as it would anyway
  }
}

/**
 * Runs `load` (which imports kernel modules: their WebAssembly compiles as
 * they are evaluated) with V8 compiling WebAssembly eagerly with TurboFan.
 */
export async function compiledEagerly<T>(load: () => Promise<T>): Promise<T> {
  if (chosen()) return load();
  if (loading++ === 0) setFlags(EAGER);
  try {
    return await load();
  } finally {
    if (--loading === 0) setFlags(DEFAULT);
  }
}
