// The workloads in TensorFlow.js 4.22 on its WebAssembly backend: variables
// from the workloads' arrays, the loss written with tf ops (the same maths as
// gradc's graph), one optimizer.minimize per step.
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { BLOCK, oneHot } from "./workloads.js";
import type { Workload } from "./workloads.js";

/** Selects the wasm backend (once). */
export async function tfjsReady(): Promise<void> {
  if (tf.getBackend() !== "wasm") {
    await tf.setBackend("wasm");
    await tf.ready();
  }
}

/** A step of one workload; `step()` returns the loss before its update. */
export interface PeerStep {
  step(): number | Promise<number>;
  dispose(): void | Promise<void>;
}

const layerNorm = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor): tf.Tensor => {
  const mu = x.mean(-1, true);
  const xc = x.sub(mu);
  return xc.mul(xc.square().mean(-1, true).add(BLOCK.eps).rsqrt()).mul(g).add(b);
};

// gelu, tanh form, as gradc's: 0.5x(1 + tanh(√(2/π)(x + 0.044715x³)))
const gelu = (x: tf.Tensor): tf.Tensor => x.mul(0.5).mul(x.add(x.pow(3).mul(0.044715)).mul(Math.sqrt(2 / Math.PI)).tanh().add(1));

const softmaxCe = (logits: tf.Tensor, onehot: tf.Tensor): tf.Scalar => tf.logSoftmax(logits).mul(onehot).sum(-1).neg().mean();

/** The workload as a tfjs step. */
export async function tfjsStep(w: Workload): Promise<PeerStep> {
  await tfjsReady();
  const v = Object.fromEntries(Object.entries(w.params).map(([n, t]) => [n, tf.variable(tf.tensor(t.data, [...t.shape]), true, `${w.name}.${n}`)]));
  const x = tf.tensor(w.inputs["x"]!.data, [...w.inputs["x"]!.shape]);
  const y = w.inputs["y"] ? tf.tensor(w.inputs["y"].data, [...w.inputs["y"].shape]) : undefined;
  const labels = w.labels ? oneHot(w.labels) : undefined;
  const onehot = labels ? tf.tensor(labels.data, [...labels.shape]) : undefined;
  const p = (n: string) => v[n]!;
  const loss = (): tf.Scalar => {
    switch (w.name) {
      case "mlpSgd":
      case "mlpAdam": {
        let h: tf.Tensor = x;
        for (let l = 1; l <= 3; l++) {
          h = h.matMul(p(`W${l}`)).add(p(`b${l}`));
          if (l < 3) h = h.relu();
        }
        return softmaxCe(h, onehot!);
      }
      case "xor":
        return x.matMul(p("W1")).add(p("b1")).tanh().matMul(p("W2")).add(p("b2")).sub(y!).square().mean();
      case "transformer": {
        const { batch, seq, d, heads } = BLOCK;
        const dh = d / heads;
        const split = (t: tf.Tensor) => t.reshape([batch, seq, heads, dh]).transpose([0, 2, 1, 3]);
        const a = layerNorm(x, p("ln1g"), p("ln1b")).reshape([batch * seq, d]);
        const [q, k, vv] = ["Wq", "Wk", "Wv"].map((n) => split(a.matMul(p(n)).reshape([batch, seq, d])));
        const s = tf.matMul(q!, k!, false, true).mul(1 / Math.sqrt(dh));
        const o = tf.matMul(tf.softmax(s, -1), vv!).transpose([0, 2, 1, 3]).reshape([batch * seq, d]).matMul(p("Wo"));
        const h = x.add(o.reshape([batch, seq, d]));
        const m = gelu(layerNorm(h, p("ln2g"), p("ln2b")).reshape([batch * seq, d]).matMul(p("W1")).add(p("b1"))).matMul(p("W2")).add(p("b2"));
        return h.add(m.reshape([batch, seq, d])).sub(y!).square().mean();
      }
      case "cnn": {
        const c = tf.maxPool(tf.conv2d(x as tf.Tensor4D, p("K") as tf.Tensor4D, 1, "valid").add(p("kb")).relu() as tf.Tensor4D, 2, 2, "valid");
        return softmaxCe(c.reshape([c.shape[0], -1]).matMul(p("W")).add(p("b")), onehot!);
      }
      default:
        return w.name satisfies never;
    }
  };
  const opt = w.optimizer.name === "sgd" ? tf.train.sgd(w.optimizer.lr) : tf.train.adam(w.optimizer.lr, 0.9, 0.999, 1e-8);
  return {
    step: () => {
      const l = opt.minimize(loss, true)!;
      const value = l.dataSync()[0]!;
      l.dispose();
      return value;
    },
    dispose: () => {
      opt.dispose();
      tf.dispose([...Object.values(v), x, ...(y ? [y] : []), ...(onehot ? [onehot] : [])]);
    },
  };
}

/** C = A·B in tfjs (n×n); returns a function that computes it and the result's first row. */
export async function tfjsSgemm(a: Float32Array, b: Float32Array, n: number): Promise<{ run(): void; firstRow(): Float32Array; dispose(): void }> {
  await tfjsReady();
  const A = tf.tensor2d(a, [n, n]);
  const B = tf.tensor2d(b, [n, n]);
  return {
    run: () => {
      const c = tf.matMul(A, B);
      c.dataSync();
      c.dispose();
    },
    firstRow: () => {
      const c = tf.matMul(A, B);
      const row = Float32Array.from(c.dataSync().subarray(0, n));
      c.dispose();
      return row;
    },
    dispose: () => tf.dispose([A, B]),
  };
}
