// Two interleaved spirals, generated deterministically, and the training
// setup the deep sigmoid and deep residual examples share (same data, same
// optimizer, same steps), so that only the architecture differs.
import { createRng } from "gradc/runtime";
import type { OptimizerSpec, TrainingConfig } from "gradc";

/**
 * `n` points (n/2 per class) on two spirals of `turns` turns, the second the
 * first turned by half a circle, with bell-shaped jitter of size `noise`.
 * Classes alternate, so any run of examples is balanced. x is [n, 2] flat, y is [n].
 */
export function twoSpirals(n: number, turns = 1.25, noise = 0.04, seed = 7): { x: number[]; y: number[] } {
  const next = createRng(seed);
  // the sum of three uniforms: a cheap bell-shaped jitter
  const jitter = () => (next() + next() + next() - 1.5) * noise;
  const x: number[] = [];
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    const label = i % 2;
    const s = Math.floor(i / 2) / (n / 2); // position along the spiral, 0..1
    const angle = s * turns * 2 * Math.PI + label * Math.PI;
    const radius = 0.15 + 0.85 * s;
    x.push(radius * Math.cos(angle) + jitter(), radius * Math.sin(angle) + jitter());
    y.push(label);
  }
  return { x, y };
}

/** SGD with momentum: unlike Adam, it does not rescale a vanishing gradient back up. */
export const optimizer: OptimizerSpec = { name: "momentum", lr: 0.02, momentum: 0.9 };

/** 2,560 points, a fifth held out; 640 steps (20 epochs); gradient norms every 10 steps. */
export const training: TrainingConfig = {
  data: { kind: "arrays", inputs: twoSpirals(2560), testFraction: 0.2, seed: 1 },
  steps: 640,
  shuffle: true,
  seed: 1,
  accuracy: { output: "logits", labels: "y" },
  logEvery: 100,
  gradNormEvery: 10,
};
