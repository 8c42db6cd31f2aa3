// Learning-rate schedules and warm-up: pure functions of the update index.
import { describe, expect, it } from "vitest";
import { checkSchedule, learningRate, scheduleLr } from "../../runtime/schedule.js";
import type { OptimizerSpec } from "../../runtime/manifest.js";
import { errorMessage } from "../helpers.js";

const lrs = (o: OptimizerSpec, n: number) => Array.from({ length: n }, (_, i) => learningRate(o, i));

describe("schedules", () => {
  it("constant and absent schedules keep the base rate", () => {
    expect(lrs({ name: "sgd", lr: 0.3 }, 3)).toEqual([0.3, 0.3, 0.3]);
    expect(scheduleLr({ name: "constant" }, 0.3, 1000)).toBe(0.3);
  });

  it("step decays by gamma every `every` updates", () => {
    expect(lrs({ name: "sgd", lr: 1, schedule: { name: "step", every: 2, gamma: 0.1 } }, 6).map((x) => +x.toPrecision(12))).toEqual([
      1, 1, 0.1, 0.1, 0.01, 0.01,
    ]);
  });

  it("cosine goes from the base to minLr over totalSteps, then holds", () => {
    const s = { name: "cosine", totalSteps: 4, minLr: 0.1 } as const;
    expect(scheduleLr(s, 1, 0)).toBe(1);
    expect(scheduleLr(s, 1, 2)).toBeCloseTo(0.55, 12);
    expect(scheduleLr(s, 1, 1)).toBeCloseTo(0.1 + 0.9 * (1 + Math.SQRT1_2) / 2, 12);
    expect(scheduleLr(s, 1, 4)).toBeCloseTo(0.1, 12);
    expect(scheduleLr(s, 1, 40)).toBeCloseTo(0.1, 12);
    expect(scheduleLr({ name: "cosine", totalSteps: 2 }, 2, 2)).toBeCloseTo(0, 12);
  });

  it("linear interpolates to endLr (default 0)", () => {
    expect(scheduleLr({ name: "linear", totalSteps: 4, endLr: 0.2 }, 1, 1)).toBeCloseTo(0.8, 12);
    expect(scheduleLr({ name: "linear", totalSteps: 4 }, 1, 3)).toBeCloseTo(0.25, 12);
    expect(scheduleLr({ name: "linear", totalSteps: 4 }, 1, 9)).toBe(0);
  });

  it("warm-up ramps linearly, then the schedule starts from t = 0", () => {
    const o: OptimizerSpec = { name: "adam", lr: 1, warmupSteps: 4, schedule: { name: "step", every: 1, gamma: 0.5 } };
    expect(lrs(o, 7)).toEqual([0.25, 0.5, 0.75, 1, 1, 0.5, 0.25]);
    expect(lrs({ name: "sgd", lr: 0.2, warmupSteps: 2 }, 3)).toEqual([0.1, 0.2, 0.2]);
  });

  it("rejects bad schedule numbers, naming the field", () => {
    expect(errorMessage(() => checkSchedule({ name: "sgd", lr: -1 }, "m.json"))).toMatch(/m.json: optimizer lr must be a finite number/);
    expect(errorMessage(() => checkSchedule({ name: "sgd", lr: 1, schedule: { name: "step", every: 0, gamma: 0.5 } }, "m"))).toMatch(/every > 0/);
    expect(errorMessage(() => checkSchedule({ name: "sgd", lr: 1, schedule: { name: "cosine", totalSteps: 0 } }, "m"))).toMatch(/cosine" needs totalSteps > 0/);
    const bogus = { name: "sgd", lr: 1, schedule: { name: "exp" } } as unknown as OptimizerSpec;
    expect(errorMessage(() => checkSchedule(bogus, "m"))).toMatch(/unknown schedule "exp"/);
  });
});
