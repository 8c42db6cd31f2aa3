// Each optimizer's emitted update against updates computed by hand in this
// file (PyTorch's formulas), for three steps with changing lr, on every
// backend in its finest precision (f64 where it has it).
import { afterAll, describe, expect, it } from "vitest";
import { graph } from "../../../compiler/dsl/graph.js";
import type { OptimizerSpec } from "../../../runtime/manifest.js";
import { expectAllClose } from "../../helpers.js";
import type { BackendName } from "../../../compiler/backends/index.js";
import { BACKENDS, cleanupBundles, finest, loadShared } from "../harness/harness.js";
import type { Loaded } from "../harness/harness.js";

afterAll(cleanupBundles);

const X = [1, 2, 3];
const W0 = [0.5, -1, 2];
const V0 = [1, -2];
const FROZEN0 = [0.25];

/** loss = ½Σ x·w² + ⅓Σ v³ + frozen·Σw, so dw = x·w + frozen and dv = v². */
const tiny = graph("tiny", (g) => {
  const x = g.input("x", [3]);
  const w = g.param("w", [3], { init: W0 });
  const v = g.param("v", [2], { init: V0 });
  const frozen = g.param("frozen", [1], { init: FROZEN0, trainable: false });
  const loss = w.mul(w).mul(x).sum().mul(0.5).add(v.pow(3).sum().div(3)).add(w.sum().mul(frozen.sum()));
  return { loss };
});

type Params = { w: number[]; v: number[] };
const gradsOf = (p: Params): Params => ({ w: p.w.map((wi, i) => X[i]! * wi + FROZEN0[0]!), v: p.v.map((vi) => vi * vi) });

/** One update by hand, as torch.optim does it (state per param and element). */
function referenceStep(opt: OptimizerSpec, p: Params, state: Record<string, number[]>, lr: number, t: number, clip?: number): Params {
  const g = gradsOf(p);
  let scale = 1;
  if (clip !== undefined) {
    const norm = Math.sqrt([...g.w, ...g.v].reduce((a, x) => a + x * x, 0));
    scale = Math.min(1, clip / (norm + 1e-6));
  }
  const out: Params = { w: [], v: [] };
  for (const name of ["w", "v"] as const) {
    p[name].forEach((pi, i) => {
      const key = (s: string) => `${name}.${s}.${i}`;
      let gi = g[name][i]! * scale;
      const wd = opt.weightDecay ?? (opt.name === "adamw" ? 0.01 : 0);
      if (opt.name !== "adamw") gi += wd * pi;
      let next = pi;
      if (opt.name === "sgd") next = pi - lr * gi;
      if (opt.name === "momentum") {
        const mu = opt.momentum ?? 0.9;
        const buf = mu * (state[key("buf")]?.[0] ?? 0) + gi;
        state[key("buf")] = [buf];
        next = pi - lr * (opt.nesterov ? gi + mu * buf : buf);
      }
      if (opt.name === "adam" || opt.name === "adamw") {
        const [b1, b2, eps] = [opt.beta1 ?? 0.9, opt.beta2 ?? 0.999, opt.eps ?? 1e-8];
        if (opt.name === "adamw") next = pi * (1 - lr * wd);
        const m = b1 * (state[key("m")]?.[0] ?? 0) + (1 - b1) * gi;
        const v = b2 * (state[key("v")]?.[0] ?? 0) + (1 - b2) * gi * gi;
        state[key("m")] = [m];
        state[key("v")] = [v];
        const mHat = m / (1 - b1 ** t);
        const vHat = v / (1 - b2 ** t);
        next = next - (lr * mHat) / (Math.sqrt(vHat) + eps);
      }
      out[name].push(next);
    });
  }
  return out;
}

const LRS = [0.1, 0.05, 0.02];

/** `tiny` on `backend` with `options` in the backend's finest precision (tests that ask the same share a bundle). */
function tinyOn(backend: BackendName, options: { optimizer: OptimizerSpec; gradClip?: number }): Promise<Loaded> {
  return loadShared(tiny, { ...options, backend, dtype: finest(backend) });
}

const CASES: { name: string; opt: OptimizerSpec; clip?: number }[] = [
  { name: "SGD", opt: { name: "sgd", lr: 0.1 } },
  { name: "SGD with L2 weight decay", opt: { name: "sgd", lr: 0.1, weightDecay: 0.1 } },
  { name: "momentum", opt: { name: "momentum", lr: 0.1, momentum: 0.8 } },
  { name: "Nesterov momentum", opt: { name: "momentum", lr: 0.1, momentum: 0.8, nesterov: true } },
  { name: "Adam", opt: { name: "adam", lr: 0.1 } },
  { name: "Adam with other betas", opt: { name: "adam", lr: 0.1, beta1: 0.5, beta2: 0.9, eps: 1e-3 } },
  { name: "AdamW", opt: { name: "adamw", lr: 0.1, weightDecay: 0.2 } },
  { name: "SGD with clipping (active)", opt: { name: "sgd", lr: 0.1 }, clip: 1 },
  { name: "Adam with clipping (inactive)", opt: { name: "adam", lr: 0.1 }, clip: 100 },
];

describe.each(BACKENDS)("optimizer updates (%s backend)", (backend) => {
  // f32 params are rounded after every step: agreement with the f64 reference to f32 rounding
  const f64 = finest(backend) === "f64";
  const close = (digits: number) => (f64 ? { rtol: 10 ** -digits, atol: 10 ** -digits } : { rtol: 1e-5, atol: 1e-6 });
  for (const c of CASES) {
    it(`${c.name}: three steps match the hand-computed update`, async () => {
      const b = await tinyOn(backend, { optimizer: c.opt, ...(c.clip !== undefined ? { gradClip: c.clip } : {}) });
      b.input("x", X);
      let p: Params = { w: [...W0], v: [...V0] };
      const state: Record<string, number[]> = {};
      LRS.forEach((lr, k) => {
        b.hyper(lr, k + 1);
        b.step();
        p = referenceStep(c.opt, p, state, lr, k + 1, c.clip);
        expectAllClose(b.param("w"), p.w, close(12));
        expectAllClose(b.param("v"), p.v, close(12));
      });
      // frozen params get neither a gradient nor an update
      expectAllClose(b.param("frozen"), FROZEN0, 0);
      expect(b.manifest.params.find((q) => q.name === "frozen")!.grad).toBeUndefined();
      expect(b.manifest.state.some((s) => s.param === "frozen")).toBe(false);
    });
  }

  it("one SGD step by hand: w − lr·(x·w + frozen)", async () => {
    const b = await tinyOn(backend, { optimizer: { name: "sgd", lr: 0.1 } });
    b.input("x", X);
    b.hyper(0.1, 1);
    b.step();
    // g = [0.75, -1.75, 6.25]
    expectAllClose(b.param("w"), [0.425, -0.825, 1.375], close(14));
    expectAllClose(b.grad("w"), [0.75, -1.75, 6.25], close(14));
  });

  it("clipping scales by clip / (‖g‖ + 1e-6) across all params, and gradients() stays unclipped", async () => {
    const b = await tinyOn(backend, { optimizer: { name: "sgd", lr: 1 }, gradClip: 0.5 });
    b.input("x", X);
    b.hyper(1, 1);
    b.step();
    const g = gradsOf({ w: W0, v: V0 });
    const norm = Math.hypot(...g.w, ...g.v);
    const s = 0.5 / (norm + 1e-6);
    expectAllClose(b.param("w"), W0.map((w, i) => w - s * g.w[i]!), close(13));
    expectAllClose(b.grad("v"), g.v, close(14));
  });

  it("state slots: velocity for momentum, m and v for Adam, none for SGD", async () => {
    const slots = async (opt: OptimizerSpec) => (await tinyOn(backend, { optimizer: opt })).manifest.state.map((s) => `${s.param}.${s.slot}`);
    expect(await slots({ name: "sgd", lr: 1 })).toEqual([]);
    expect(await slots({ name: "momentum", lr: 1 })).toEqual(["w.velocity", "v.velocity"]);
    expect(await slots({ name: "adamw", lr: 1 })).toEqual(["w.m", "w.v", "v.m", "v.v"]);
  });
});
