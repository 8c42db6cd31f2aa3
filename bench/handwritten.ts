// The benchmark's baseline: the same MLP training step written by hand in
// plain JavaScript, the way one would without a compiler: preallocated
// Float32Arrays, i-k-j matmul loops (contiguous inner loops; dot products for
// the products with a transposed right operand), softmax cross-entropy and
// Adam in their own loops.
import { BATCH, LR, SIZES } from "./mlp.js";

/** C[M×N] = A[M×K]·B[K×N], i-k-j. */
function matmul(A: Float32Array, B: Float32Array, C: Float32Array, M: number, K: number, N: number): void {
  C.fill(0);
  for (let i = 0; i < M; i++) {
    for (let k = 0; k < K; k++) {
      const a = A[i * K + k]!;
      for (let j = 0; j < N; j++) C[i * N + j] += a * B[k * N + j]!;
    }
  }
}

/** C[M×N] = Aᵀ·B for A[K×M], B[K×N]: i-k-j, the inner loop walking a row of B and of C. */
function matmulTA(A: Float32Array, B: Float32Array, C: Float32Array, M: number, K: number, N: number): void {
  C.fill(0);
  for (let i = 0; i < M; i++) {
    for (let k = 0; k < K; k++) {
      const a = A[k * M + i]!;
      for (let j = 0; j < N; j++) C[i * N + j] += a * B[k * N + j]!;
    }
  }
}

/** C[M×N] = A·Bᵀ for A[M×K], B[N×K]: dot products of rows. */
function matmulTB(A: Float32Array, B: Float32Array, C: Float32Array, M: number, K: number, N: number): void {
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += A[i * K + k]! * B[j * K + k]!;
      C[i * N + j] = s;
    }
  }
}

/** One layer's params, gradients and Adam state. */
interface Layer {
  readonly W: Float32Array;
  readonly b: Float32Array;
  readonly dW: Float32Array;
  readonly db: Float32Array;
  readonly mW: Float32Array;
  readonly vW: Float32Array;
  readonly mb: Float32Array;
  readonly vb: Float32Array;
  /** Pre-activation and activation [BATCH × out], and the gradient flowing into the pre-activation. */
  readonly z: Float32Array;
  readonly h: Float32Array;
  readonly dz: Float32Array;
  readonly dh: Float32Array;
}

/** The hand-written training step; weights by the graph's param names (W1, b1, ...). */
export class HandwrittenStep {
  private readonly layers: Layer[] = [];
  private t = 0;
  private lossValue = 0;

  constructor(
    weights: Readonly<Record<string, Float32Array>>,
    private readonly x: Float32Array,
    private readonly y: Int32Array,
  ) {
    for (let l = 1; l < SIZES.length; l++) {
      const [n, m] = [SIZES[l - 1]!, SIZES[l]!];
      const f = (k: number) => new Float32Array(k);
      this.layers.push({
        W: Float32Array.from(weights[`W${l}`]!),
        b: Float32Array.from(weights[`b${l}`]!),
        dW: f(n * m), db: f(m), mW: f(n * m), vW: f(n * m), mb: f(m), vb: f(m),
        z: f(BATCH * m), h: f(BATCH * m), dz: f(BATCH * m), dh: f(BATCH * m),
      });
    }
  }

  loss(): number {
    return this.lossValue;
  }

  /** Forward, loss, backward, Adam update. */
  step(): void {
    const L = this.layers;
    const last = L.length - 1;
    // forward
    let input = this.x;
    for (let l = 0; l <= last; l++) {
      const { W, b, z, h } = L[l]!;
      const [n, m] = [SIZES[l]!, SIZES[l + 1]!];
      matmul(input, W, z, BATCH, n, m);
      for (let i = 0; i < BATCH; i++) {
        for (let j = 0; j < m; j++) {
          const v = z[i * m + j]! + b[j]!;
          z[i * m + j] = v;
          h[i * m + j] = l < last ? (v > 0 ? v : 0) : v;
        }
      }
      input = h;
    }
    // softmax cross-entropy and its gradient (softmax − onehot) / batch into the last dz
    const classes = SIZES[SIZES.length - 1]!;
    const logits = L[last]!.h;
    const dlogits = L[last]!.dz;
    let total = 0;
    for (let i = 0; i < BATCH; i++) {
      let max = -Infinity;
      for (let j = 0; j < classes; j++) max = Math.max(max, logits[i * classes + j]!);
      let sum = 0;
      for (let j = 0; j < classes; j++) sum += Math.exp(logits[i * classes + j]! - max);
      const lse = Math.log(sum) + max;
      total += lse - logits[i * classes + this.y[i]!]!;
      for (let j = 0; j < classes; j++) {
        const p = Math.exp(logits[i * classes + j]! - lse);
        dlogits[i * classes + j] = (p - (j === this.y[i] ? 1 : 0)) / BATCH;
      }
    }
    this.lossValue = total / BATCH;
    // backward
    for (let l = last; l >= 0; l--) {
      const { W, dW, db, dz } = L[l]!;
      const [n, m] = [SIZES[l]!, SIZES[l + 1]!];
      const below = l > 0 ? L[l - 1]!.h : this.x;
      matmulTA(below, dz, dW, n, BATCH, m);
      db.fill(0);
      for (let i = 0; i < BATCH; i++) for (let j = 0; j < m; j++) db[j] += dz[i * m + j]!;
      if (l > 0) {
        const prev = L[l - 1]!;
        matmulTB(dz, W, prev.dh, BATCH, m, n);
        for (let k = 0; k < BATCH * n; k++) prev.dz[k] = prev.z[k]! > 0 ? prev.dh[k]! : 0;
      }
    }
    this.t++;
    for (const layer of L) {
      adam(layer.W, layer.dW, layer.mW, layer.vW, this.t);
      adam(layer.b, layer.db, layer.mb, layer.vb, this.t);
    }
  }
}

/** Adam (PyTorch's formula, β = 0.9, 0.999, ε = 1e-8) on one param, step t ≥ 1. */
function adam(p: Float32Array, g: Float32Array, mom: Float32Array, vel: Float32Array, t: number): void {
  const bc1 = 1 - Math.pow(0.9, t);
  const bc2 = 1 - Math.pow(0.999, t);
  for (let k = 0; k < p.length; k++) {
    const gk = g[k]!;
    const mk = 0.9 * mom[k]! + 0.1 * gk;
    const vk = 0.999 * vel[k]! + 0.001 * gk * gk;
    mom[k] = mk;
    vel[k] = vk;
    p[k] = p[k]! - (LR * (mk / bc1)) / (Math.sqrt(vk / bc2) + 1e-8);
  }
}
