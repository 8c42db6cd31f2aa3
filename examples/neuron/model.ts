// One sigmoid neuron, x = 2, y = 1, w = 0.5, b = 0, loss (ŷ − y)², one SGD step with lr 0.1.
import { graph } from "gradc";
import type { ModelConfig } from "gradc";

export default graph("neuron", (g) => {
  const x = g.input("x", [1, 1]);
  const y = g.input("y", [1, 1]);
  const w = g.param("w", [1, 1], { init: 0.5 });
  const b = g.param("b", [1], { init: 0 });
  const yHat = x.matmul(w).add(b).sigmoid();
  const loss = yHat.sub(y).square().sum();
  return { loss, outputs: { yHat } };
});

export const config: ModelConfig = {
  optimizer: { name: "sgd", lr: 0.1 },
  training: {
    data: { kind: "arrays", inputs: { x: [2], y: [1] } },
    steps: 1,
    shuffle: false,
  },
};
