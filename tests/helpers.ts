// Shared test helpers: closeness checks for arrays, seeded random data, and
// catching an error's message. Keep this API small: many test files import it.
import { expect } from "vitest";
import { graph } from "../compiler/dsl/graph.js";
import type { GraphBuilder } from "../compiler/dsl/graph.js";
import type { Tensor } from "../compiler/ir/node.js";
import { interpret } from "../compiler/interp/interpret.js";
import type { Feeds } from "../compiler/interp/interpret.js";
import type { NDArray } from "../compiler/ops/def.js";
import { createRng } from "../runtime/data.js";

/** Tolerances for `expectAllClose`: |a − e| ≤ atol + rtol·|e|. A number sets both. */
export interface Tolerance {
  readonly rtol?: number;
  readonly atol?: number;
}

/** Flattens nested number arrays (and typed arrays) into one plain array. */
export function flat(v: unknown): number[] {
  if (typeof v === "number") return [v];
  if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<number>);
  if (Array.isArray(v)) return v.flatMap((x) => flat(x));
  if (v && typeof v === "object" && "data" in v) return flat((v as { data: unknown }).data);
  throw new Error(`flat: not a number array: ${String(v)}`);
}

/**
 * Asserts that two arrays (flat, nested, typed, or an NDArray's `data`) have
 * the same length and agree elementwise within tolerance. NaN matches NaN and
 * infinities must match exactly. The failure message names the worst index.
 */
export function expectAllClose(actual: unknown, expected: unknown, tol: number | Tolerance = {}): void {
  const t = typeof tol === "number" ? { rtol: tol, atol: tol } : tol;
  const rtol = t.rtol ?? 1e-6;
  const atol = t.atol ?? 1e-6;
  const a = flat(actual);
  const e = flat(expected);
  expect(a.length, "length").toBe(e.length);
  let worst = -1;
  let worstErr = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = e[i]!;
    if (Number.isNaN(y) || !Number.isFinite(y)) {
      const same = Number.isNaN(y) ? Number.isNaN(x) : x === y;
      if (!same) {
        worst = i;
        worstErr = Infinity;
        break;
      }
      continue;
    }
    const err = Math.abs(x - y) - (atol + rtol * Math.abs(y));
    if (!(err <= 0) && (worst < 0 || err > worstErr || Number.isNaN(err))) {
      worst = i;
      worstErr = Number.isNaN(err) ? Infinity : err;
    }
  }
  if (worst >= 0) {
    expect.fail(`arrays differ at index ${worst}: got ${a[worst]}, expected ${e[worst]} (rtol ${rtol}, atol ${atol})\n  got      [${a.join(", ")}]\n  expected [${e.join(", ")}]`);
  }
}

/** A seeded PRNG of floats in [0, 1): the project's one generator (mulberry32); same seed, same stream. */
export const seededRandom = createRng;

/**
 * `count` (or the size of a shape) seeded uniform values in [min, max),
 * default [-1, 1). The same seed always gives the same array.
 */
export function randomArray(count: number | readonly number[], seed = 1, min = -1, max = 1): Float64Array {
  const n = typeof count === "number" ? count : count.reduce((a, b) => a * b, 1);
  const r = seededRandom(seed);
  return Float64Array.from({ length: n }, () => min + (max - min) * r());
}

/** `count` seeded integers in [0, high), e.g. class labels. */
export function randomInts(count: number, high: number, seed = 1): Int32Array {
  const r = seededRandom(seed);
  return Int32Array.from({ length: count }, () => Math.floor(r() * high));
}

/** Runs `fn`, expects it to throw, and returns the error's message. */
export function errorMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
  return expect.fail("expected an error, but none was thrown");
}

/**
 * Builds a throwaway graph whose outputs are the tensors `build` returns and
 * runs it in the reference interpreter (float64 unless `precision` is "f32").
 * Feeds hold its inputs and params by name.
 */
export function evalOutputs(
  build: (g: GraphBuilder) => Record<string, Tensor>,
  feeds: Feeds = {},
  precision: "f32" | "f64" = "f64",
): Record<string, NDArray> {
  const g = graph("test", (b) => ({ outputs: build(b) }));
  return interpret(g, feeds, {}, { precision }).outputs;
}

/** Polls `ready` every 50 ms until it holds; after `timeoutMs` throws, naming `what` and what `context()` says then. */
export async function waitFor(ready: () => boolean, timeoutMs: number, what = "the condition", context?: () => string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > end) throw new Error(`waitFor: ${what} did not hold within ${timeoutMs} ms${context ? `\n${context()}` : ""}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
