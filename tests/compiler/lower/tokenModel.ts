// A model over token activations [batch, seq, features] whose weights are
// 2-D: x[B, S, D]·W[D, N] (with a bias), o·Vᵀ (V stored [out, in]), the same W
// on a rank-4 activation, and between them one genuinely batched product
// (a·aᵀ per batch, as attention's q·kᵀ). Large enough that each weight's
// product runs in WebAssembly on the wasm backend (16384 multiply-adds and up).
import { graph } from "../../../compiler/dsl/graph.js";
import * as nn from "../../../compiler/dsl/nn.js";

/** Sizes of the token model. */
export const TOKENS = { batch: 4, seq: 16, d: 32, n: 16, out: 16 } as const;

export const tokenModel = graph("tokens", (g) => {
  const { batch, seq, d, n, out } = TOKENS;
  const x = g.input("x", [batch, seq, d]);
  const x4 = g.input("x4", [2, batch / 2, seq, d]);
  const y = g.input("y", [batch, seq, out]);
  const W = g.param("W", [d, n], { init: "heNormal" });
  const b = g.param("b", [n], { init: { name: "uniform", min: -0.1, max: 0.1 } });
  const V = g.param("V", [out, n], { init: "heNormal" });
  const h = x.matmul(W).add(b).tanh();
  const o = h.matmul(V.transpose());
  // both operands batched: a product per batch, kept as one
  const mixed = o.matmul(o.transpose([0, 2, 1])).mul(0.05).matmul(o);
  const side = x4.matmul(W).tanh().mean();
  return { loss: nn.mse(o.add(mixed), y).add(side), outputs: { o } };
});
