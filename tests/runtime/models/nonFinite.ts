// Small graphs that make NaN or infinity on purpose, for the --check-numerics
// tests; the marker comments let the tests find each op's line.
import { graph } from "../../../compiler/dsl/graph.js";

/** loss = Σ sqrt(x·w): finite forward, but d sqrt(z) = 1 / (2 sqrt z) is infinite where x·w = 0. */
export const sqrtAtZero = graph("sqrtAtZero", (g) => {
  const x = g.input("x", [3, 2]);
  const w = g.param("w", [2, 1], { init: 0.5 });
  const z = x.matmul(w);
  const root = z.sqrt(); // @sqrt
  return { loss: root.sum(), outputs: { z } };
});

/** loss = Σ log(x·w): log 0 = −∞ already in the forward pass where x·w = 0. */
export const logAtZero = graph("logAtZero", (g) => {
  const x = g.input("x", [3, 2]);
  const w = g.param("w", [2, 1], { init: 0.5 });
  const z = x.matmul(w);
  const l = z.log(); // @log
  return { loss: l.sum(), outputs: { l } };
});

/** A model that stays finite: tanh(x·W1)·W2 against y, mean squared error. */
export const finite = graph("finite", (g) => {
  const x = g.input("x", [4, 2]);
  const y = g.input("y", [4, 1]);
  const W1 = g.param("W1", [2, 5], { init: "glorotUniform" });
  const W2 = g.param("W2", [5, 1], { init: "glorotUniform" });
  const pred = x.matmul(W1).tanh().matmul(W2);
  return { loss: pred.sub(y).square().mean(), outputs: { pred } };
});

/** Three examples whose middle one makes x·w = 0. */
export const zeroRow = { x: [1, 1, 0, 0, 2, 2] };

/**
 * loss = Σ sqrt((x·w · 1e200)²): the square overflows to infinity in float64
 * and the sqrt after it only passes the infinity on. Fused, the sqrt is the
 * first op that can make infinity out of finite values, but the mul made it.
 */
export const overflowBeforeLog = graph("overflowBeforeLog", (g) => {
  const x = g.input("x", [3, 2]);
  const w = g.param("w", [2, 1], { init: 0.5 });
  const big = x.matmul(w).mul(1e200);
  const squared = big.mul(big); // @overflow
  return { loss: squared.sqrt().sum(), outputs: { big } };
});

/** Rows whose x·w is 1, 1 and 2. */
export const unitRows = { x: [1, 1, 1, 1, 2, 2] };
