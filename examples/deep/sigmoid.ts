// A deep sigmoid MLP on two spirals: 16 layers of width 32. Each sigmoid
// multiplies the backward signal by σ'(z) ≤ 1/4, so the gradient reaching the
// first layer is many orders of magnitude smaller than the last layer's (it
// vanishes), and the early layers barely learn. Compare examples/deep/residual.ts,
// which trains on the same data with the same optimizer (see spirals.ts).
import { graph, nn } from "gradc";
import type { ModelConfig, Tensor } from "gradc";
import { optimizer, training } from "./spirals.js";

export const DEPTH = 16;
export const WIDTH = 32;
export const BATCH = 64;

export default graph("deepSigmoid", (g) => {
  const x = g.input("x", [BATCH, 2]);
  const y = g.input("y", [BATCH], "i32");
  const layer = (name: string, h: Tensor, units: number): Tensor => {
    const W = g.param(`${name}.W`, [h.shape[1]!, units], { init: "glorotUniform" });
    const b = g.param(`${name}.b`, [units]);
    return h.matmul(W).add(b);
  };
  let h = layer("in", x, WIDTH).sigmoid();
  for (let l = 1; l <= DEPTH - 2; l++) h = layer(`h${String(l).padStart(2, "0")}`, h, WIDTH).sigmoid();
  const logits = layer("out", h, 2);
  return { loss: nn.softmaxCrossEntropy(logits, y), outputs: { logits } };
});

export const config: ModelConfig = { optimizer, training };
