// XOR with a 2→8 ReLU→1 network, trained with Adam (lr 0.01) on MSE.
import { graph, nn } from "gradc";
import type { Graph, ModelConfig } from "gradc";
/** The network for batches of `batch` rows (data-parallel over N ranks: 4 / N rows each). */
export const xorModel = (batch = 4): Graph => graph("xor", (g) => {
  const x = g.input("x", [batch, 2]);
  const y = g.input("y", [batch, 1]);
  const W1 = g.param("W1", [2, 8], { init: "heUniform" });
  const b1 = g.param("b1", [8]);
  const h = x.matmul(W1).add(b1).relu();
  const W2 = g.param("W2", [8, 1], { init: "glorotUniform" });
  const b2 = g.param("b2", [1]);
  const pred = h.matmul(W2).add(b2);
  return { loss: nn.mse(pred, y), outputs: { pred } };
});
export default xorModel();

export const config: ModelConfig = {
  optimizer: { name: "adam", lr: 0.01 },
  training: {
    data: { kind: "arrays", inputs: { x: [0, 0, 0, 1, 1, 0, 1, 1], y: [0, 1, 1, 0] } },
    steps: 1000,
    shuffle: false,
    logEvery: 100,
  },
};
