// Parameter initializers (named as in TensorFlow.js) and a seeded PRNG.
import type { Shape } from "../ir/types.js";
import { sizeOf } from "../ir/types.js";
import { createRng } from "../../runtime/data.js";
import type { Init, InitName } from "../ir/graph.js";

export type { Init, InitName } from "../ir/graph.js";

/** How a parameter starts. A number is a constant; an array gives every value. */
export type InitSpec =
  | InitName
  | number
  | readonly number[]
  | {
      readonly name: InitName;
      readonly value?: number;
      readonly mean?: number;
      readonly stddev?: number;
      readonly min?: number;
      readonly max?: number;
      readonly seed?: number;
    };

/** The seeded PRNG (mulberry32) the runtime shuffles with: one generator for the project. */
export const rng = createRng;

/** A stable 32-bit hash of a string (FNV-1a), to derive per-parameter seeds. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Fan-in and fan-out as Keras computes them: the last axis is the output. */
export function fans(shape: Shape): [number, number] {
  if (shape.length === 0) return [1, 1];
  if (shape.length === 1) return [shape[0]!, shape[0]!];
  const receptive = sizeOf(shape.slice(0, -2));
  return [shape.at(-2)! * receptive, shape.at(-1)! * receptive];
}

/** The default: zeros for vectors and scalars (biases), Glorot uniform otherwise. */
export function resolveInit(spec: InitSpec | undefined, shape: Shape, seed: number): Init {
  if (spec === undefined) return { name: shape.length <= 1 ? "zeros" : "glorotUniform", seed };
  if (typeof spec === "number") return { name: "constant", value: spec, seed };
  if (typeof spec === "string") return { name: spec, seed };
  if (Array.isArray(spec)) return { name: "values", values: [...(spec as readonly number[])], seed };
  const o = spec as Exclude<InitSpec, string | number | readonly number[]>;
  return { ...o, seed: o.seed ?? seed };
}

/** Draws the initial values of a parameter. */
export function initValues(init: Init, shape: Shape): Float64Array {
  const n = sizeOf(shape);
  const out = new Float64Array(n);
  const r = rng(init.seed);
  // Box–Muller for normal draws
  const normal = (): number => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const [fanIn, fanOut] = fans(shape);
  const uniform = (lim: number) => out.forEach((_, i) => (out[i] = (2 * r() - 1) * lim));
  const gauss = (mean: number, sd: number) => out.forEach((_, i) => (out[i] = mean + sd * normal()));
  switch (init.name) {
    case "zeros": break;
    case "ones": out.fill(1); break;
    case "constant": out.fill(init.value ?? 0); break;
    case "values":
      if (init.values!.length !== n) throw new Error(`init has ${init.values!.length} values for shape [${shape.join(",")}] (${n} elements)`);
      out.set(init.values!);
      break;
    case "normal": gauss(init.mean ?? 0, init.stddev ?? 0.05); break;
    case "uniform": {
      const lo = init.min ?? -0.05;
      const hi = init.max ?? 0.05;
      out.forEach((_, i) => (out[i] = lo + (hi - lo) * r()));
      break;
    }
    case "glorotUniform": uniform(Math.sqrt(6 / (fanIn + fanOut))); break;
    case "glorotNormal": gauss(0, Math.sqrt(2 / (fanIn + fanOut))); break;
    case "heUniform": uniform(Math.sqrt(6 / fanIn)); break;
    case "heNormal": gauss(0, Math.sqrt(2 / fanIn)); break;
    default: init.name satisfies never;
  }
  return out;
}
