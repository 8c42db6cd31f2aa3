// Learning-rate schedules: pure functions from the optimizer spec and the
// update's index to the learning rate the step kernels read from `hyper.lr`.
import type { OptimizerSpec, ScheduleSpec } from "./manifest.js";

/** Where rates are computed: writing into an array keeps doubles unboxed on the per-step path. */
export type RateArray = Float32Array | Float64Array;

const scratch = new Float64Array(1);

/**
 * Writes the learning rate of update number `index` into out[at] (0-based:
 * the first update of a fresh trainer has index 0, and the step kernels see
 * `hyper.step = index + 1`). With `base` the optimizer's lr and t the
 * schedule's count of updates:
 *
 * - constant: base
 * - step:     base · gamma^floor(t / every)
 * - cosine:   minLr + (base − minLr) · (1 + cos(π · min(t, T) / T)) / 2
 * - linear:   base + (endLr − base) · min(t, T) / T
 *
 * Cosine and linear hold their final value once t ≥ totalSteps.
 *
 * With `warmupSteps = W > 0`, the first W updates ramp linearly up to the
 * schedule's starting value (update i uses start · (i + 1) / W); the schedule
 * then runs from t = 0 at update W.
 *
 * One function on purpose: it runs every step, and a double passed to a call
 * that the optimizer does not inline is boxed (allocated).
 */
export function writeLearningRate(optimizer: OptimizerSpec, index: number, out: RateArray, at: number): void {
  const W = Math.max(0, Math.floor(optimizer.warmupSteps ?? 0));
  const warm = index < W;
  const t = warm ? 0 : index - W;
  const base = optimizer.lr;
  const schedule = optimizer.schedule;
  let lr = base;
  if (schedule) {
    switch (schedule.name) {
      case "constant":
        break;
      case "step":
        lr = base * Math.pow(schedule.gamma, Math.floor(t / Math.max(1, schedule.every)));
        break;
      case "cosine": {
        const T = Math.max(1, schedule.totalSteps);
        const minLr = schedule.minLr ?? 0;
        lr = minLr + ((base - minLr) * (1 + Math.cos((Math.PI * Math.min(t, T)) / T))) / 2;
        break;
      }
      case "linear": {
        const T = Math.max(1, schedule.totalSteps);
        const endLr = schedule.endLr ?? 0;
        lr = base + ((endLr - base) * Math.min(t, T)) / T;
        break;
      }
      default:
        schedule satisfies never;
    }
  }
  // the warm-up factor (index + 1) / W, applied as integers (exactly 1 at its last update)
  out[at] = warm && index + 1 !== W ? (lr * (index + 1)) / W : lr;
}

/** The learning rate of a schedule after `t` updates, starting from `base` (see writeLearningRate). */
export function scheduleLr(schedule: ScheduleSpec | undefined, base: number, t: number): number {
  writeLearningRate({ name: "sgd", lr: base, ...(schedule ? { schedule } : {}) }, t, scratch, 0);
  return scratch[0]!;
}

/** The learning rate of update number `index`, as a number (see writeLearningRate). */
export function learningRate(optimizer: OptimizerSpec, index: number): number {
  writeLearningRate(optimizer, index, scratch, 0);
  return scratch[0]!;
}

/** Checks a schedule's numbers, naming the bad field; returns the spec unchanged. */
export function checkSchedule(optimizer: OptimizerSpec, where: string): OptimizerSpec {
  const bad = (field: string, v: unknown): never => {
    throw new Error(`${where}: optimizer ${field} must be a finite number ≥ 0 (got ${String(v)})`);
  };
  const nonNegative = (field: string, v: number | undefined): void => {
    if (v !== undefined && !(Number.isFinite(v) && v >= 0)) bad(field, v);
  };
  nonNegative("lr", optimizer.lr);
  nonNegative("warmupSteps", optimizer.warmupSteps);
  const s = optimizer.schedule;
  if (!s) return optimizer;
  switch (s.name) {
    case "constant":
      break;
    case "step":
      if (!(Number.isInteger(s.every) && s.every > 0)) throw new Error(`${where}: schedule "step" needs every > 0 (got ${s.every})`);
      nonNegative("schedule.gamma", s.gamma);
      break;
    case "cosine":
    case "linear":
      if (!(Number.isInteger(s.totalSteps) && s.totalSteps > 0)) {
        throw new Error(`${where}: schedule "${s.name}" needs totalSteps > 0 (got ${s.totalSteps})`);
      }
      nonNegative(s.name === "cosine" ? "schedule.minLr" : "schedule.endLr", s.name === "cosine" ? s.minLr : s.endLr);
      break;
    default:
      throw new Error(`${where}: unknown schedule "${(s as { name: string }).name}" (expected constant, step, cosine or linear)`);
  }
  return optimizer;
}
