// The static memory plan on every backend: a simulation of every entry point finds no buffer
// overwritten while live (fused, unfused, remat; examples and random graphs),
// in-place writes happen only where a kernel declared them safe, temporaries
// share space, and the runtime's slots keep places of their own.
import { describe, expect, it } from "vitest";
import xor, { config as xorConfig } from "../../../examples/xor/model.js";
import mnist from "../../../examples/mnist/model.js";
import { graph } from "../../../compiler/dsl/graph.js";
import type { Graph } from "../../../compiler/ir/graph.js";
import { interpret } from "../../../compiler/interp/interpret.js";
import { kernelsOf } from "../../../compiler/lower/schedule.js";
import type { Schedule } from "../../../compiler/lower/schedule.js";
import type { ArenaPlan } from "../../../compiler/plan/arena.js";
import { lowerGraph } from "../../../compiler/compile.js";
import { TARGETS } from "../../../compiler/backends/index.js";
import { expectAllClose, randomArray } from "../../helpers.js";
import { BACKENDS, cleanupBundles, compileAndLoad, execute } from "../harness/harness.js";
import { simulate } from "./liveness.js";
import { randomCase } from "../harness/randomGraphs.js";

const programs = (s: Schedule) => ({ forward: kernelsOf(s, "forward"), step: [...kernelsOf(s, "gradients"), ...kernelsOf(s, "update")] });

/** Spans of the buffers the runtime reads or writes between calls: they overlap nothing else. */
function keptApart(s: Schedule, plan: ArenaPlan): void {
  const kept = s.buffers.filter((b) => !["node", "scratch"].includes(b.role) && !b.within);
  for (const b of kept) {
    for (const o of s.buffers) {
      if (o === b || o.arena !== b.arena || o.within?.block === b) continue;
      const [b0, o0] = [plan.offsets.get(b)!, plan.offsets.get(o)!];
      const overlap = b0 < o0 + o.size && o0 < b0 + b.size;
      if (overlap && o.size > 0 && b.size > 0) expect.fail(`${b.label} (${b.role}) overlaps ${o.label} (${o.role})`);
    }
  }
}

const CASES: Record<string, Graph> = { xor, mnist };

describe.each(BACKENDS)("the memory plan never overwrites a live value (%s backend)", (backend) => {
  for (const [name, g] of Object.entries(CASES)) {
    const modes = { fused: {}, unfused: { fusion: false }, remat: { remat: true }, ...(name === "xor" ? { clipped: { gradClip: 1 } } : {}) };
    for (const [mode, options] of Object.entries(modes)) {
      it(`${name}, ${mode}`, () => {
        const { schedule, plan } = lowerGraph(g, { optimizer: xorConfig.optimizer!, backend, ...options });
        expect(simulate(schedule, plan, programs(schedule))).toEqual([]);
        keptApart(schedule, plan);
        for (const b of schedule.buffers) expect(plan.offsets.get(b)! + b.size).toBeLessThanOrEqual(b.arena === "F" ? plan.floats : plan.ints);
      });
    }
  }
  for (let seed = 100; seed < 108; seed++) {
    it(`random graph #${seed}`, () => {
      const { graph: g } = randomCase(seed, 10);
      for (const options of [{}, { remat: true }, { fusion: false }]) {
        const { schedule, plan } = lowerGraph(g, { backend, ...options });
        expect(simulate(schedule, plan, programs(schedule))).toEqual([]);
        keptApart(schedule, plan);
      }
    });
  }
});

describe.each(BACKENDS)("sharing (%s backend)", (backend) => {
  it("temporaries whose lifetimes do not overlap share space (mnist)", () => {
    const { plan } = lowerGraph(mnist, { backend });
    expect(plan.sharedTempBytes).toBeLessThan(plan.tempBytes);
    expect(plan.peakBytes).toBe(plan.floats * 4 + plan.ints * 4);
    expect(plan.peakBytes).toBeGreaterThanOrEqual(plan.pinnedBytes + plan.sharedTempBytes);
  });

  it("the manifest records the arena, its peak bytes and the saved activations", async () => {
    const b = await compileAndLoad(xor, { optimizer: xorConfig.optimizer!, backend });
    const { plan } = lowerGraph(xor, { optimizer: xorConfig.optimizer!, backend });
    expect(b.manifest.arena).toEqual({ floats: plan.floats, ints: plan.ints });
    expect(b.manifest.peakBytes).toBe(plan.peakBytes);
    expect(b.manifest.savedActivations).toEqual(plan.savedActivations);
    cleanupBundles();
  });

  it("gradients() leaves every gradient readable, each in a slot of its own", () => {
    const run = execute(mnist, { backend });
    run.input("x", randomArray(32 * 784, 5, 0, 1));
    run.input("y", Array.from({ length: 32 }, (_, i) => i % 10));
    run.gradients();
    const slots = [...run.schedule.grads.values()].map((b) => [run.plan.offsets.get(b)!, run.plan.offsets.get(b)! + b.size] as const);
    slots.sort((a, b) => a[0] - b[0]);
    slots.forEach(([s0], i) => i > 0 && expect(s0).toBeGreaterThanOrEqual(slots[i - 1]![1]));
    for (const name of run.schedule.grads.keys()) expect(run.grad(name).some((v) => v !== 0)).toBe(true);
  });
});

describe.each(BACKENDS)("in place (%s backend)", (backend) => {
  // the sliced value dies in the tanh kernel, whose result is a temporary of its size (read by two reductions)
  const sliced = graph("sliced", (g) => {
    const x = g.input("x", [6, 8]);
    const e = x.slice([1, 2], [4, 5]).tanh();
    return { outputs: { s: e.sum(0), m: e.max(-1) } };
  });
  // the same kernel reads its input transposed too: writing over it would change later reads
  const transposed = graph("transposed", (g) => {
    const x = g.input("x", [6, 8]);
    const p = x.slice([1, 1], [4, 4]);
    const e = p.add(p.transpose()).tanh();
    return { outputs: { s: e.sum(0), m: e.max(-1) } };
  });

  const check = (g: Graph) => {
    const run = execute(g, { backend });
    const x = randomArray(48, 9);
    run.input("x", x);
    run.forward();
    const want = interpret(g, { x }, {}, { precision: "f32" });
    for (const [o, v] of Object.entries(want.outputs)) expectAllClose(run.output(o), v.data, { rtol: 1e-5, atol: 1e-6 });
    expect(simulate(run.schedule, run.plan, programs(run.schedule))).toEqual([]);
    return run;
  };

  // fused elementwise kernels declare what they may write in place: a backend that runs one kernel per node writes nothing in place
  if (TARGETS[backend].capabilities.fusion) {
    it("an elementwise kernel writes over an input that dies there, at the same index", () => {
      const run = check(sliced);
      expect(run.plan.inplace.map(([a, b]) => [a.label, b.label])).toEqual([["a", "b"]]);
      const [a, b] = run.plan.inplace[0]!;
      expect(run.plan.offsets.get(a)).toBe(run.plan.offsets.get(b));
    });
  } else {
    it("one kernel per node: nothing is written in place, and the values are the interpreter's", () => {
      expect(check(sliced).plan.inplace).toEqual([]);
    });
  }

  it("but not over an input it also reads at another index", () => {
    const run = check(transposed);
    expect(run.plan.inplace).toEqual([]);
  });
});
