// The same depth as examples/deep/sigmoid.ts (16 layers of width 32, two
// spirals), built to train: pre-norm residual blocks h + relu(layerNorm(h)·W + b).
// The identity path carries the gradient back to the first layer undiminished,
// and layer norm keeps every block's input at unit scale.
import { graph, nn } from "gradc";
import type { ModelConfig, Tensor } from "gradc";
import { optimizer, training } from "./spirals.js";

export const DEPTH = 16;
export const WIDTH = 32;
export const BATCH = 64;

export default graph("deepResidual", (g) => {
  const x = g.input("x", [BATCH, 2]);
  const y = g.input("y", [BATCH], "i32");
  const layer = (name: string, h: Tensor, units: number): Tensor => {
    const W = g.param(`${name}.W`, [h.shape[1]!, units], { init: "heUniform" });
    const b = g.param(`${name}.b`, [units]);
    return h.matmul(W).add(b);
  };
  const norm = (name: string, h: Tensor): Tensor =>
    nn.layerNorm(h, g.param(`${name}.gamma`, [WIDTH], { init: "ones" }), g.param(`${name}.beta`, [WIDTH]));
  let h = layer("in", x, WIDTH);
  for (let l = 1; l <= DEPTH - 2; l++) {
    const name = `h${String(l).padStart(2, "0")}`;
    h = h.add(layer(name, norm(name, h), WIDTH).relu());
  }
  const logits = layer("out", norm("out", h), 2);
  return { loss: nn.softmaxCrossEntropy(logits, y), outputs: { logits } };
});

export const config: ModelConfig = { optimizer, training };
