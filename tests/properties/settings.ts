// Settings shared by the fast-check property suites: a fixed seed, so a
// failure in CI is reproducible, and few cases there (well under a minute in
// all); `npm run fuzz` (GRADC_FUZZ=1) runs many more. GRADC_FUZZ_SEED picks
// another seed for a longer hunt.
import type { Parameters } from "fast-check";
import { TARGETS } from "../../compiler/backends/index.js";
import type { BackendName } from "../../compiler/backends/index.js";

/** Whether this is the long run of `npm run fuzz`. */
export const LONG = process.env["GRADC_FUZZ"] === "1";

/** The seed every suite starts from. */
export const SEED = Number(process.env["GRADC_FUZZ_SEED"] ?? 14);

/** fast-check parameters for a property: `runs` cases in CI, 20× as many under `npm run fuzz`. */
export function fuzz<T>(runs: number): Parameters<T> {
  return { seed: SEED, numRuns: LONG ? runs * 20 : runs, endOnFailure: true };
}

/** A test timeout that grows with the long run. */
export function budget(ms: number): number {
  return LONG ? ms * 25 : ms;
}

/** The backends every generated graph is compiled for (the target registry's), and the precisions each computes in (f64 where it has it). */
export const BACKENDS: readonly { readonly name: BackendName; readonly options: { readonly backend: BackendName }; readonly dtypes: readonly ("f32" | "f64")[] }[] = (
  Object.keys(TARGETS) as BackendName[]
).map((name) => ({ name, options: { backend: name }, dtypes: TARGETS[name].capabilities.f64 ? ["f32", "f64"] : ["f32"] }));
