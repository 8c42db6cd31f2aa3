// The matmul passes of the TypeScript backends, on matmuls of awkward shapes
// (rows and columns past the last whole tile, a transposed operand, a batch
// axis, fused prologues and epilogues, one product large enough for
// WebAssembly): the kernels after the passes compute what the reference
// nests lowering wrote compute — bit for bit on ts, where the tiles keep
// every element's order of operations; to f32 rounding on wasm, whose SIMD
// product sums in f32 — and the passes did apply.
import { describe, expect, it } from "vitest";
import { lowerGraph } from "../../../compiler/compile.js";
import { graph } from "../../../compiler/dsl/graph.js";
import type { Schedule } from "../../../compiler/lower/schedule.js";
import { planMemory } from "../../../compiler/plan/memory.js";
import { visitKir } from "../../../compiler/kernel/kir.js";
import { BACKENDS, bind, verifySchedule } from "../harness/harness.js";
import { TARGETS } from "../../../compiler/backends/index.js";
import { isTsTarget } from "../../../compiler/backends/ts/target.js";

/** The backends whose passes tile matmuls: those whose kernels are TypeScript (gpu keeps one element per thread). */
const TILING = BACKENDS.filter((b) => isTsTarget(TARGETS[b]));

const model = graph("awkward", (g) => {
  const x = g.input("x", [6, 7]);
  const W = g.param("W", [7, 10], { init: "heNormal" });
  const V = g.param("V", [9, 10], { init: "heNormal" });
  const h = x.matmul(W).add(g.param("b", [10])).relu();
  // a transposed operand: [6,10]·[9,10]ᵀ
  const t = h.matmul(V.transpose()).tanh();
  // a batch axis: [2,3,4]·[4,5]
  const z = g.input("z", [2, 3, 4]);
  const u = z.sigmoid().matmul(g.param("U", [4, 5], { init: "heNormal" }));
  // large enough for a WebAssembly product, with a prologue and an epilogue: [33,64]·[64,17]
  const y = g.input("y", [33, 64]);
  const big = y.relu().matmul(g.param("B", [64, 17], { init: "heNormal" })).mul(2);
  return { loss: t.square().mean().add(u.square().mean()).add(big.square().mean()) };
});

const inputs = { x: 42, z: 24, y: 33 * 64 };

/** Loss and every gradient of `s` after one gradients() call on fixed inputs. */
function run(s: Schedule): { loss: number; grads: Float64Array[] } {
  const ex = bind(s, planMemory(s));
  for (const [name, n] of Object.entries(inputs)) ex.input(name, Array.from({ length: n }, (_, i) => Math.sin(i * 1.3 + name.length)));
  ex.gradients();
  return { loss: ex.loss(), grads: ["W", "V", "b", "U", "B"].map((p) => ex.grad(p)) };
}

describe.each(TILING)("the %s backend's passes on matmuls", (backend) => {
  it("compute what the reference nests compute, and apply", { timeout: 120_000 }, () => {
    let reference: Schedule | undefined;
    const final = lowerGraph(model, { backend }, (stage, s) => {
      verifySchedule(s);
      if (stage === "lowering") reference = s;
    }).schedule;
    const want = run(reference!);
    const got = run(final);
    if (backend === "ts") {
      expect(got.loss).toBe(want.loss);
      got.grads.forEach((g, i) => expect(Array.from(g)).toEqual(Array.from(want.grads[i]!)));
    } else {
      expect(got.loss).toBeCloseTo(want.loss, 5);
      got.grads.forEach((g, i) => g.forEach((v, j) => expect(Math.abs(v - want.grads[i]![j]!)).toBeLessThan(1e-4 * (1 + Math.abs(want.grads[i]![j]!)))));
    }
    // tiles of 16 accumulators (4×4) in the matmul kernels after the passes, one accumulator before
    const widest = (s: Schedule) =>
      Math.max(...s.kernels.filter((k) => k.name.includes("matmul")).map((k) => {
        let most = 0;
        visitKir(k.body, { stmt: (x) => void (x.k === "for" && x.mark === "reduce" && (most = Math.max(most, x.body.filter((y) => y.k === "set").length))) });
        return most;
      }));
    expect(widest(reference!)).toBe(1);
    expect(widest(final)).toBeGreaterThanOrEqual(16);
    // the large product runs in WebAssembly on wasm only
    expect(final.kernels.some((k) => k.extern)).toBe(backend === "wasm");
    expect(reference!.kernels.some((k) => k.extern)).toBe(false);
  });
});
