// What the training step reads besides its inputs: `ifTraining` picks a
// branch by entry point, `bernoulli` draws a reproducible mask from (seed,
// run seed, step, element index), `lossScale` is mixed precision's loss scale.
//
// The draw is a counter-based hash in exact integer arithmetic on doubles, so
// the interpreter and every emitted kernel compute it bit for bit alike with
// plain +, * and % (no 32-bit integer ops needed). With P = 67108859, the
// largest prime below 2^26, every operand stays below 2^26 and every product
// below 2^52, hence exact in float64:
//
//   x ← (seed mod P) · 40499 + (run mod P) · 69069 + (step mod P)   mod P
//   x ← x² + 1013904223                                  mod P
//   x ← x · 48271 + (i mod P)                            mod P
//   x ← x² + 2654435761 mod P,  x ← x² + 1442695041,  x ← x² + 2246822519   (each mod P)
//   out[i] = x < floor(p · P)
//
// Squaring makes the last three rounds a degree-8 polynomial in i mod P, so
// neighbouring elements, steps and seeds draw unrelated masks. `seed` is the
// op's own (each dropout call has one); `run` is the run's seed, which the
// runtime writes into the buffer `runSeed` (the trainer's --seed; 0 unless
// set), so two runs of one bundle may draw different masks.
import type { EvalEnv, OpDef } from "./def.js";
import { ShapeError, shapeStr, shapesEqual, sizeOf } from "../ir/types.js";
import type { Expr, Stmt } from "../kernel/kir.js";
import { bin, let_, load, loop, num, ref, sel, set, store } from "../kernel/kir.js";

/** The modulus of the hash: the largest prime below 2^26. */
export const HASH_PRIME = 67108859;
const MIX_SEED = 40499;
const MIX_INDEX = 48271;
const MIX_RUN = 69069;
const ROUND_CONSTANTS = [1013904223, 2654435761, 1442695041, 2246822519].map((c) => c % HASH_PRIME);

/** The hash of (seed, step, index) and the run's seed in [0, HASH_PRIME), as the kernels compute it. */
export function hashDraw(seed: number, step: number, index: number, run = 0): number {
  const P = HASH_PRIME;
  let x = ((seed % P) * MIX_SEED + (run % P) * MIX_RUN + (step % P)) % P;
  x = (x * x + ROUND_CONSTANTS[0]!) % P;
  x = (x * MIX_INDEX + (index % P)) % P;
  for (const c of ROUND_CONSTANTS.slice(1)) x = (x * x + c) % P;
  return x;
}

/** Draws below this are true: floor(p · P). */
export const keepThreshold = (p: number): number => Math.floor(p * HASH_PRIME);

const needEnv = (op: string, env: EvalEnv | undefined): EvalEnv => {
  if (!env) throw new Error(`${op} depends on the step and the entry point: it is evaluated only by the interpreter`);
  return env;
};

/** The kernel: the same rounds in the kernel IR, reading the step from the buffer `step` and the run's seed from `runSeed`. */
function lowerBernoulli(seed: number, size: number, p: number): Stmt[] {
  const P = HASH_PRIME;
  const mod = (e: Expr): Expr => bin("mod", e, P);
  const x = ref("x");
  const square = (c: number): Stmt => set("x", mod(bin("+", bin("*", x, x), c)));
  // step ≥ 0 is an i32 far below P in practice; the mod keeps the maths exact beyond it
  return [
    // every term below 2^26 · 69069 < 2^43: exact
    let_("x0", mod(bin("+", bin("+", num(((seed % P) * MIX_SEED) % P), bin("*", mod(load("runSeed", 0)), MIX_RUN)), mod(load("step", 0))))),
    let_("x1", mod(bin("+", bin("*", ref("x0"), ref("x0")), ROUND_CONSTANTS[0]!))),
    let_("x1m", mod(bin("*", ref("x1"), MIX_INDEX))),
    loop("i", size, [
      let_("x", mod(bin("+", ref("x1m"), size < P ? ref("i") : mod(ref("i"))))),
      ...ROUND_CONSTANTS.slice(1).map(square),
      store("out", ref("i"), sel(bin("<", x, keepThreshold(p)), 1, 0)),
    ]),
  ];
}

export const RANDOM = {
  ifTraining: {
    infer: ([a, b]) => {
      if (!shapesEqual(a!.shape, b!.shape) || a!.dtype !== b!.dtype) {
        throw new ShapeError(`both branches must have one shape and dtype, got ${a!.dtype}${shapeStr(a!.shape)} and ${b!.dtype}${shapeStr(b!.shape)}`);
      }
      return { shape: a!.shape, dtype: a!.dtype };
    },
    eval: (_n, [a, b], env) => Float64Array.from(needEnv("ifTraining", env).training ? a!.data : b!.data),
    // gradients are taken in the training step: they flow to the training branch
    vjp: (ct) => [ct, null],
  } satisfies OpDef<"ifTraining">,
  bernoulli: {
    infer: (_i, p) => {
      if (!(p.p >= 0 && p.p <= 1)) throw new ShapeError(`p must be in [0, 1], got ${p.p}`);
      if (!Number.isInteger(p.seed) || p.seed < 0) throw new ShapeError(`seed must be a non-negative integer, got ${p.seed}`);
      return { shape: p.shape, dtype: "bool" };
    },
    eval: (n, _i, env) => {
      const { step, runSeed } = needEnv("bernoulli", env);
      const { seed, p } = n.params;
      const threshold = keepThreshold(p);
      const out = new Float64Array(sizeOf(n.shape));
      for (let i = 0; i < out.length; i++) out[i] = hashDraw(seed, step, i, runSeed ?? 0) < threshold ? 1 : 0;
      return out;
    },
    lower: (n) => lowerBernoulli(n.params.seed, sizeOf(n.shape), n.params.p),
    readsStep: true,
  } satisfies OpDef<"bernoulli">,
  lossScale: {
    infer: () => ({ shape: [], dtype: "f32" }),
    eval: (_n, _i, env) => Float64Array.of(needEnv("lossScale", env).lossScale ?? 1),
    // a scalar the runtime writes, read inline from the buffer `lossScale` wherever it is used; no gradient flows into it
    expr: () => load("lossScale", 0),
    readsLossScale: true,
  } satisfies OpDef<"lossScale">,
} as const;
