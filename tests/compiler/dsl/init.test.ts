// Parameter initializers: seeded determinism, the bounds and moments of the
// Glorot/He families on large tensors, explicit values and their errors.
import { describe, expect, it } from "vitest";
import { fans, hashString, initValues, resolveInit, rng } from "../../../compiler/dsl/init.js";
import type { Init, InitName } from "../../../compiler/dsl/init.js";
import { graph } from "../../../compiler/dsl/graph.js";
import { initialParams } from "../../../compiler/interp/interpret.js";
import { errorMessage } from "../../helpers.js";

function moments(v: Float64Array): { mean: number; variance: number; min: number; max: number } {
  let s = 0;
  for (const x of v) s += x;
  const mean = s / v.length;
  let q = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const x of v) {
    q += (x - mean) ** 2;
    min = Math.min(min, x);
    max = Math.max(max, x);
  }
  return { mean, variance: q / v.length, min, max };
}

const init = (name: InitName, seed = 7, extra: Partial<Init> = {}): Init => ({ name, seed, ...extra });

describe("the PRNG", () => {
  it("is deterministic per seed, differs across seeds, and stays in [0, 1)", () => {
    const a = rng(42);
    const b = rng(42);
    const c = rng(43);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(Array.from({ length: 1000 }, () => b())).toEqual(xs);
    expect(Array.from({ length: 1000 }, () => c())).not.toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    // roughly uniform: the mean of 1000 draws is near 1/2
    expect(Math.abs(xs.reduce((s, x) => s + x, 0) / 1000 - 0.5)).toBeLessThan(0.05);
  });

  it("hashString is a stable 32-bit FNV-1a", () => {
    // FNV-1a of the empty string is its offset basis
    expect(hashString("")).toBe(0x811c9dc5);
    expect(hashString("W1")).toBe(hashString("W1"));
    expect(hashString("W1")).not.toBe(hashString("W2"));
    expect(Number.isInteger(hashString("abc")) && hashString("abc") >= 0 && hashString("abc") < 2 ** 32).toBe(true);
  });
});

describe("seeded determinism", () => {
  it("the same init and shape give the same values; another seed other values", () => {
    expect(initValues(init("glorotUniform", 5), [8, 8])).toEqual(initValues(init("glorotUniform", 5), [8, 8]));
    expect(initValues(init("glorotUniform", 5), [8, 8])).not.toEqual(initValues(init("glorotUniform", 6), [8, 8]));
  });

  it("a graph's params are seeded by name and by the graph's seed", () => {
    const build = (seed?: number) =>
      graph("seeded", (g) => {
        g.param("A", [4, 4]);
        g.param("B", [4, 4]);
        g.param("C", [4, 4], { init: { name: "heNormal", seed: 99 } });
        return {};
      }, seed === undefined ? {} : { seed });
    const one = initialParams(build());
    const two = initialParams(build());
    expect(one.A).toEqual(two.A);
    expect(one.A).not.toEqual(one.B);
    const other = initialParams(build(1));
    expect(other.A).not.toEqual(one.A);
    // an explicit seed wins over the derived one
    expect(other.C).toEqual(one.C);
    expect(one.C).toEqual(initValues(init("heNormal", 99), [4, 4]));
  });
});

describe("variance-scaling families on a large tensor", () => {
  const shape = [200, 300];
  const [fanIn, fanOut] = [200, 300];
  const n = 60000;
  const cases: [InitName, number, number | null][] = [
    // name, expected variance, uniform limit (null: normal)
    ["glorotUniform", 2 / (fanIn + fanOut), Math.sqrt(6 / (fanIn + fanOut))],
    ["heUniform", 2 / fanIn, Math.sqrt(6 / fanIn)],
    ["glorotNormal", 2 / (fanIn + fanOut), null],
    ["heNormal", 2 / fanIn, null],
  ];
  for (const [name, variance, limit] of cases) {
    it(`${name}: mean ≈ 0, variance ≈ ${variance.toPrecision(3)}${limit ? `, within ±${limit.toPrecision(3)}` : ""}`, () => {
      const v = initValues(init(name, 3), shape);
      expect(v.length).toBe(n);
      const m = moments(v);
      expect(Math.abs(m.mean)).toBeLessThan(5 * Math.sqrt(variance / n));
      expect(Math.abs(m.variance / variance - 1)).toBeLessThan(0.03);
      if (limit) {
        expect(m.max).toBeLessThanOrEqual(limit);
        expect(m.min).toBeGreaterThanOrEqual(-limit);
        // the draws reach close to both ends
        expect(m.max).toBeGreaterThan(0.99 * limit);
        expect(m.min).toBeLessThan(-0.99 * limit);
      } else {
        // a normal puts about 68% of its mass within one standard deviation
        const sd = Math.sqrt(variance);
        const inside = v.filter((x) => Math.abs(x) < sd).length / n;
        expect(Math.abs(inside - 0.6827)).toBeLessThan(0.01);
      }
    });
  }

  it("normal and uniform take their parameters", () => {
    const nrm = moments(initValues(init("normal", 4, { mean: 2, stddev: 0.5 }), [n]));
    expect(Math.abs(nrm.mean - 2)).toBeLessThan(0.01);
    expect(Math.abs(Math.sqrt(nrm.variance) - 0.5)).toBeLessThan(0.01);
    const uni = moments(initValues(init("uniform", 4, { min: 1, max: 3 }), [n]));
    expect(uni.min).toBeGreaterThanOrEqual(1);
    expect(uni.max).toBeLessThan(3);
    expect(Math.abs(uni.mean - 2)).toBeLessThan(0.02);
    expect(Math.abs(uni.variance - 4 / 12)).toBeLessThan(0.01);
  });

  it("fans follow the Keras convention, conv filters included", () => {
    expect(fans([])).toEqual([1, 1]);
    expect(fans([7])).toEqual([7, 7]);
    expect(fans([3, 5])).toEqual([3, 5]);
    // [fh, fw, cin, cout]: the receptive field multiplies both
    expect(fans([3, 3, 4, 8])).toEqual([36, 72]);
  });
});

describe("constants and explicit values", () => {
  it("zeros, ones, constant and a number", () => {
    expect(Array.from(initValues(init("zeros"), [3]))).toEqual([0, 0, 0]);
    expect(Array.from(initValues(init("ones"), [2, 2]))).toEqual([1, 1, 1, 1]);
    expect(Array.from(initValues(init("constant", 1, { value: -0.5 }), [2]))).toEqual([-0.5, -0.5]);
    expect(resolveInit(0.25, [2], 1)).toEqual({ name: "constant", value: 0.25, seed: 1 });
  });

  it("defaults: zeros for vectors and scalars, Glorot uniform for matrices", () => {
    expect(resolveInit(undefined, [5], 1).name).toBe("zeros");
    expect(resolveInit(undefined, [], 1).name).toBe("zeros");
    expect(resolveInit(undefined, [2, 5], 1).name).toBe("glorotUniform");
  });

  it("explicit values fill the param in row-major order", () => {
    const g = graph("explicit", (b) => {
      b.param("w", [2, 2], { init: [1, 2, 3, 4] });
      b.param("s", [], { init: 3.5 });
      return {};
    });
    const p = initialParams(g);
    expect(Array.from(p.w!)).toEqual([1, 2, 3, 4]);
    expect(Array.from(p.s!)).toEqual([3.5]);
  });

  it("the wrong number of values is refused at the param's line", () => {
    let line = 0;
    const msg = errorMessage(() =>
      graph("bad", (b) => {
        line = Number(/:(\d+):\d+\)?$/.exec(new Error().stack!.split("\n")[1]!)![1]) + 1;
        b.param("w", [2, 2], { init: [1, 2, 3] });
        return {};
      }),
    );
    expect(msg).toMatch(/^param: "w": init has 3 values for shape \[2,2\] \(4 elements\)/);
    expect(msg).toContain(`dsl/init.test.ts:${line})`);
  });
});
