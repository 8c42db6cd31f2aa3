// The workloads in jax-js 0.1.25 on its WebAssembly device, the whole step
// (loss, gradients, update) under one jit. jax-js arrays move: an array used
// twice is passed as `.ref` the first time.
import { init, defaultDevice, jit, valueAndGrad, tree, numpy as np, nn, lax } from "@jax-js/jax";
import { BLOCK, oneHot } from "./workloads.js";
import type { Workload } from "./workloads.js";
import type { PeerStep } from "./tfjs.js";

type Params = Record<string, np.Array>;

/** Selects the wasm device (once). */
export async function jaxReady(): Promise<void> {
  await init("wasm");
  defaultDevice("wasm");
}

const arr = (t: { shape: readonly number[]; data: Float32Array }) => np.array(t.data, { shape: [...t.shape] });

const layerNorm = (x: np.Array, g: np.Array, b: np.Array): np.Array => {
  const xc = x.ref.sub(x.mean(-1, { keepdims: true }));
  const inv = np.reciprocal(np.sqrt(np.square(xc.ref).mean(-1, { keepdims: true }).add(BLOCK.eps)));
  return xc.mul(inv).mul(g).add(b);
};

// gelu, tanh form, as gradc's: 0.5x(1 + tanh(√(2/π)(x + 0.044715x³)))
const gelu = (x: np.Array): np.Array => {
  const u = x.ref.add(x.ref.mul(x.ref).mul(x.ref).mul(0.044715)).mul(Math.sqrt(2 / Math.PI));
  return x.mul(0.5).mul(np.tanh(u).add(1));
};

const softmaxCe = (logits: np.Array, onehot: np.Array): np.Array => nn.logSoftmax(logits, -1).mul(onehot).sum(-1).neg().mean();

/** The workload's loss of (params, x, target): target is the one-hot labels or y. */
function lossOf(w: Workload): (p: Params, x: np.Array, t: np.Array) => np.Array {
  switch (w.name) {
    case "mlpSgd":
    case "mlpAdam":
      return (p, x, t) => {
        let h = x;
        for (let l = 1; l <= 3; l++) {
          h = np.dot(h, p[`W${l}`]!).add(p[`b${l}`]!);
          if (l < 3) h = nn.relu(h);
        }
        return softmaxCe(h, t);
      };
    case "xor":
      return (p, x, t) => np.square(np.dot(np.tanh(np.dot(x, p["W1"]!).add(p["b1"]!)), p["W2"]!).add(p["b2"]!).sub(t)).mean();
    case "transformer":
      return (p, x, t) => {
        const { batch, seq, d, heads } = BLOCK;
        const dh = d / heads;
        const split = (a: np.Array) => np.transpose(a.reshape([batch, seq, heads, dh]), [0, 2, 1, 3]);
        const a = layerNorm(x.ref, p["ln1g"]!, p["ln1b"]!);
        const q = split(np.matmul(a.ref, p["Wq"]!));
        const k = split(np.matmul(a.ref, p["Wk"]!));
        const v = split(np.matmul(a, p["Wv"]!));
        const s = np.matmul(q, np.transpose(k, [0, 1, 3, 2])).mul(1 / Math.sqrt(dh));
        const o = np.matmul(np.transpose(np.matmul(nn.softmax(s, -1), v), [0, 2, 1, 3]).reshape([batch, seq, d]), p["Wo"]!);
        const h = x.add(o);
        const m = np.matmul(gelu(np.matmul(layerNorm(h.ref, p["ln2g"]!, p["ln2b"]!), p["W1"]!).add(p["b1"]!)), p["W2"]!).add(p["b2"]!);
        return np.square(h.add(m).sub(t)).mean();
      };
    case "cnn":
      return (p, x, t) => {
        // NHWC → NCHW for lax.conv, filter [fh, fw, cin, cout] → [cout, cin, fh, fw], then back to NHWC
        const y = lax.conv(np.transpose(x, [0, 3, 1, 2]), np.transpose(p["K"]!, [3, 2, 0, 1]), [1, 1], "VALID");
        const r = nn.relu(np.transpose(y, [0, 2, 3, 1]).add(p["kb"]!));
        // 2×2 max pool of 26×26: split each side in (13, 2) and take the max over the 2s
        const pooled = r.reshape([32, 13, 2, 13, 2, 8]).max([2, 4]).reshape([32, 13 * 13 * 8]);
        return softmaxCe(np.dot(pooled, p["W"]!).add(p["b"]!), t);
      };
    default:
      return w.name satisfies never;
  }
}

/** The workload as one jitted jax-js step. */
export async function jaxStep(w: Workload): Promise<PeerStep> {
  await jaxReady();
  const loss = lossOf(w);
  const lr = w.optimizer.lr;
  let params: Params = Object.fromEntries(Object.entries(w.params).map(([n, t]) => [n, arr(t)]));
  const x = arr(w.inputs["x"]!);
  const target = w.labels ? arr(oneHot(w.labels)) : arr(w.inputs["y"]!);
  if (w.optimizer.name === "sgd") {
    const step = jit((p: Params, xs: np.Array, t: np.Array) => {
      const [l, g] = valueAndGrad(loss)(tree.ref(p), xs, t);
      return [l, tree.map((a: np.Array, b: np.Array) => a.sub(b.mul(lr)), p, g)] as const;
    });
    return {
      step: async () => {
        const [l, next] = step(params, x.ref, target.ref) as unknown as [np.Array, Params];
        params = next;
        return (await l.data())[0]!;
      },
      dispose: () => {
        step.dispose();
        tree.dispose([params, x, target]);
      },
    };
  }
  // Adam as PyTorch's: m̂ = m/(1 - β1^t), v̂ = v/(1 - β2^t), p -= lr·m̂/(√v̂ + ε)
  const [b1, b2, eps] = [0.9, 0.999, 1e-8];
  let m: Params = Object.fromEntries(Object.entries(w.params).map(([n, t]) => [n, np.zeros([...t.shape])]));
  let v: Params = Object.fromEntries(Object.entries(w.params).map(([n, t]) => [n, np.zeros([...t.shape])]));
  const step = jit((p: Params, mm: Params, vv: Params, xs: np.Array, t: np.Array, c1: np.Array, c2: np.Array) => {
    const [l, g] = valueAndGrad(loss)(tree.ref(p), xs, t);
    const m2 = tree.map((a: np.Array, b: np.Array) => a.mul(b1).add(b.mul(1 - b1)), mm, tree.ref(g));
    const v2 = tree.map((a: np.Array, b: np.Array) => a.mul(b2).add(np.square(b).mul(1 - b2)), vv, g);
    const p2 = tree.map(
      (a: np.Array, mi: np.Array, vi: np.Array) => a.sub(mi.mul(c1.ref).mul(lr).div(np.sqrt(vi.mul(c2.ref)).add(eps))),
      p,
      tree.ref(m2),
      tree.ref(v2),
    );
    c1.dispose();
    c2.dispose();
    return [l, p2, m2, v2] as const;
  });
  let t = 0;
  return {
    step: async () => {
      t++;
      const c1 = np.array(1 / (1 - b1 ** t));
      const c2 = np.array(1 / (1 - b2 ** t));
      const [l, p2, m2, v2] = step(params, m, v, x.ref, target.ref, c1, c2) as unknown as [np.Array, Params, Params, Params];
      [params, m, v] = [p2, m2, v2];
      return (await l.data())[0]!;
    },
    dispose: () => {
      step.dispose();
      tree.dispose([params, m, v, x, target]);
    },
  };
}

/** C = A·B in jax-js (n×n, jitted). */
export async function jaxSgemm(a: Float32Array, b: Float32Array, n: number): Promise<{ run(): Promise<void>; firstRow(): Promise<Float32Array>; dispose(): void }> {
  await jaxReady();
  const A = np.array(a, { shape: [n, n] });
  const B = np.array(b, { shape: [n, n] });
  const mm = jit((x: np.Array, y: np.Array) => np.matmul(x, y));
  const product = () => mm(A.ref, B.ref) as np.Array;
  return {
    run: async () => {
      await product().blockUntilReady().then((c) => c.dispose());
    },
    firstRow: async () => Float32Array.from((await product().data()).slice(0, n) as Float32Array),
    dispose: () => {
      mm.dispose();
      tree.dispose([A, B]);
    },
  };
}
