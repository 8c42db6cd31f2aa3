// A hand-written kernel bundle for runtime tests: a linear softmax classifier
// (logits = x·W + b, mean cross-entropy) with SGD, momentum or Adam(W) in
// step.js, laid out in the arenas as the compiler would.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { InputEntry, Manifest, OptimizerSpec, ParamEntry, Slot, StateEntry, TrainingSpec } from "../../runtime/manifest.js";
import { FORMAT_NAME, FORMAT_VERSION } from "../../runtime/manifest.js";
import { saveSafetensors } from "../../runtime/safetensors.js";
import { seededRandom } from "../helpers.js";
import type { KernelsJson } from "../../compiler/inspect/bundleData.js";
import { INSPECT_FILES, KERNELS_JSON_VERSION } from "../../compiler/inspect/bundleData.js";

export interface FixtureOptions {
  readonly batch?: number;
  readonly features?: number;
  readonly classes?: number;
  readonly dtype?: "f32" | "f64";
  readonly optimizer?: OptimizerSpec;
  readonly training?: TrainingSpec;
  /** Examples for data.safetensors (x: [n, features] f32, y: [n] i32). */
  readonly examples?: number;
}

/** Layout facts the tests use to compute expected values by hand. */
export interface Fixture {
  readonly dir: string;
  readonly manifest: Manifest;
  readonly W0: Float64Array;
}

/** Separable blobs: class c sits around a point on a circle of radius 3. */
export function blobs(n: number, features: number, classes: number, seed: number): { x: Float32Array; y: Int32Array } {
  const r = seededRandom(seed);
  const x = new Float32Array(n * features);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % classes;
    y[i] = c;
    for (let k = 0; k < features; k++) {
      const center = 3 * Math.cos((2 * Math.PI * c) / classes + k * (Math.PI / 2));
      x[i * features + k] = center + (r() - 0.5) * 1.5;
    }
  }
  return { x, y };
}

/** Writes the fixture bundle into `dir` and returns its manifest. */
export function writeFixture(dir: string, o: FixtureOptions = {}): Fixture {
  const B = o.batch ?? 4;
  const D = o.features ?? 2;
  const C = o.classes ?? 3;
  const dtype = o.dtype ?? "f32";
  const optimizer: OptimizerSpec = o.optimizer ?? { name: "sgd", lr: 0.1 };
  let f = 0;
  const F = (shape: number[]): Slot => {
    const s: Slot = { arena: "F", offset: f, shape, dtype };
    f += shape.reduce((a, b) => a * b, 1);
    return s;
  };
  const x = F([B, D]);
  const W = F([D, C]);
  const b = F([C]);
  const dW = F([D, C]);
  const db = F([C]);
  const logits = F([B, C]);
  const probs = F([B, C]);
  const loss = F([]);
  const lr = F([]);
  const slots: ("m" | "v" | "velocity")[] = optimizer.name === "momentum" ? ["velocity"] : optimizer.name.startsWith("adam") ? ["m", "v"] : [];
  const state: StateEntry[] = [];
  for (const [param, shape] of [["W", [D, C]], ["b", [C]]] as const) {
    for (const slot of slots) state.push({ ...F([...shape]), param, slot });
  }
  const y: Slot = { arena: "I", offset: 0, shape: [B], dtype: "i32" };
  const step: Slot = { arena: "I", offset: B, shape: [], dtype: "i32" };
  const inputs: InputEntry[] = [
    { ...x, name: "x", usedBy: ["forward", "train"] },
    { ...y, name: "y", usedBy: ["train"], classes: C },
  ];
  const params: ParamEntry[] = [
    { ...W, name: "W", trainable: true, init: { name: "uniform", seed: 7 }, grad: dW },
    { ...b, name: "b", trainable: true, init: { name: "zeros", seed: 0 }, grad: db },
  ];
  const manifest: Manifest = {
    format: FORMAT_NAME,
    version: FORMAT_VERSION,
    name: "fixture",
    backend: "ts",
    dtype,
    arena: { floats: f, ints: B + 1 },
    inputs,
    params,
    outputs: [{ ...logits, name: "logits" }],
    loss,
    optimizer,
    state,
    hyper: { lr, step },
    kernels: [
      { name: "logits_affine", node: "logits = add(matmul(x, W), b)", entry: ["forward", "gradients"], gradOf: ["W", "b"] },
      { name: "loss_softmax_xent", node: "loss = softmaxCrossEntropy(logits, y)", entry: ["gradients"], gradOf: ["W", "b"] },
      { name: "grad_W", node: "dW = matmul(transpose(x), dlogits)", entry: ["gradients"], gradOf: ["W"] },
      { name: "grad_b", node: "db = sum(dlogits, 0)", entry: ["gradients"], gradOf: ["b"] },
      { name: "update_params", node: `${optimizer.name} update`, entry: ["update"] },
    ],
    files: { forward: "forward.js", step: "step.js", weights: "weights.safetensors", trainer: "train.js" },
    ...(o.training ? { training: o.training } : {}),
  };
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "manifest.json"), JSON.stringify(manifest, null, 2));
  const c = { B, D, C, x: x.offset, W: W.offset, b: b.offset, dW: dW.offset, db: db.offset, logits: logits.offset, probs: probs.offset };
  const head = `const B = ${B}, D = ${D}, C = ${C};\nconst X = ${c.x}, W = ${c.W}, BIAS = ${c.b}, DW = ${c.dW}, DB = ${c.db}, LOGITS = ${c.logits}, P = ${c.probs};\nconst LOSS = ${loss.offset}, LR = ${lr.offset}, Y = ${y.offset}, STEP = ${step.offset};\n`;
  const affine = `/** logits = add(matmul(x, W), b)  (fixture.ts:1) */\nfunction logits_affine(F, I) {\n  for (let i = 0; i < B; i++) for (let j = 0; j < C; j++) {\n    let s = F[BIAS + j];\n    for (let k = 0; k < D; k++) s += F[X + i * D + k] * F[W + k * C + j];\n    F[LOGITS + i * C + j] = s;\n  }\n}\n`;
  writeFileSync(join(dir, "forward.js"), `// fixture forward\n${head}${affine}export function create(F, I) {\n  return { forward() { logits_affine(F, I); } };\n}\n`);
  const update = updateKernel(optimizer, state);
  const stepJs = `// fixture step\n${head}${affine}${lossKernel}${gradW}${gradB}${update}export function create(F, I) {\n  const gradients = () => { logits_affine(F, I); loss_softmax_xent(F, I); grad_W(F, I); grad_b(F, I); };\n  const update = () => { update_params(F, I); };\n  return { gradients, update, step() { gradients(); update(); } };\n}\n`;
  writeFileSync(join(dir, "step.js"), stepJs);
  writeFileSync(join(dir, "step.ts"), stepJs);
  mkdirSync(join(dir, "graphs"), { recursive: true });
  for (const stage of ["forward", "backward", "kernels"]) writeFileSync(join(dir, "graphs", `${stage}.txt`), `{ lambda fixture ${stage} }\n`);
  // each kernel's code as the compiler records it for gradc inspect (no node lists: the fixture has no graph JSON)
  const code: Record<string, string> = { logits_affine: affine, loss_softmax_xent: lossKernel, grad_W: gradW, grad_b: gradB, update_params: update };
  const kernelsJson: KernelsJson = {
    format: "gradc.kernels",
    version: KERNELS_JSON_VERSION,
    kernels: manifest.kernels.map((k) => ({
      name: k.name,
      buffers: [],
      cost: { flops: 0, byOp: {}, loads: {}, stores: {}, branches: false },
      source: { file: "step.ts", text: code[k.name]!.trimEnd() },
    })),
  };
  writeFileSync(join(dir, INSPECT_FILES.kernels), JSON.stringify(kernelsJson, null, 2));
  const r = seededRandom(7);
  const W0 = Float64Array.from({ length: D * C }, () => r() - 0.5);
  const Arr = dtype === "f64" ? Float64Array : Float32Array;
  saveSafetensors(join(dir, "weights.safetensors"), { W: { shape: [D, C], data: Arr.from(W0) }, b: { shape: [C], data: new Arr(C) } });
  if (o.examples) {
    const d = blobs(o.examples, D, C, 11);
    saveSafetensors(join(dir, "data.safetensors"), { x: { shape: [o.examples, D], data: d.x }, y: { shape: [o.examples], data: d.y } });
  }
  return { dir, manifest, W0: dtype === "f64" ? W0 : Float64Array.from(Float32Array.from(W0)) };
}

// loss = mean over rows of −log softmax(logits)[y]; dlogits = (p − onehot(y)) / B, kept in P
const lossKernel = `/** loss = softmaxCrossEntropy(logits, y)  (fixture.ts:2) */
function loss_softmax_xent(F, I) {
  let total = 0;
  for (let i = 0; i < B; i++) {
    let m = -Infinity;
    for (let j = 0; j < C; j++) m = Math.max(m, F[LOGITS + i * C + j]);
    let z = 0;
    for (let j = 0; j < C; j++) z += Math.exp(F[LOGITS + i * C + j] - m);
    const label = I[Y + i];
    total += Math.log(z) + m - F[LOGITS + i * C + label];
    for (let j = 0; j < C; j++) F[P + i * C + j] = (Math.exp(F[LOGITS + i * C + j] - m) / z - (j === label ? 1 : 0)) / B;
  }
  F[LOSS] = total / B;
}
`;

const gradW = `/** dW = matmul(transpose(x), dlogits)  (fixture.ts:1) */
function grad_W(F, I) {
  for (let k = 0; k < D; k++) for (let j = 0; j < C; j++) {
    let s = 0;
    for (let i = 0; i < B; i++) s += F[X + i * D + k] * F[P + i * C + j];
    F[DW + k * C + j] = s;
  }
}
`;

const gradB = `/** db = sum(dlogits, 0)  (fixture.ts:1) */
function grad_b(F, I) {
  for (let j = 0; j < C; j++) {
    let s = 0;
    for (let i = 0; i < B; i++) s += F[P + i * C + j];
    F[DB + j] = s;
  }
}
`;

function updateKernel(o: OptimizerSpec, state: readonly StateEntry[]): string {
  const at = (param: string, slot: string) => state.find((s) => s.param === param && s.slot === slot)?.offset ?? -1;
  const body = (param: "W" | "b", P: string, G: string, n: string): string => {
    switch (o.name) {
      case "sgd":
        return `for (let i = 0; i < ${n}; i++) F[${P} + i] -= lr * F[${G} + i];`;
      case "momentum":
        return `for (let i = 0; i < ${n}; i++) { const v = ${o.momentum ?? 0.9} * F[${at(param, "velocity")} + i] + F[${G} + i]; F[${at(param, "velocity")} + i] = v; F[${P} + i] -= lr * v; }`;
      case "adam":
      case "adamw": {
        const b1 = o.beta1 ?? 0.9, b2 = o.beta2 ?? 0.999, eps = o.eps ?? 1e-8;
        const wd = o.name === "adamw" ? (o.weightDecay ?? 0.01) : 0;
        const M = at(param, "m"), V = at(param, "v");
        return `for (let i = 0; i < ${n}; i++) {
    const g = F[${G} + i];
    const m = ${b1} * F[${M} + i] + ${1 - b1} * g; F[${M} + i] = m;
    const v = ${b2} * F[${V} + i] + ${1 - b2} * g * g; F[${V} + i] = v;
    const mh = m / (1 - Math.pow(${b1}, t)), vh = v / (1 - Math.pow(${b2}, t));
    F[${P} + i] -= lr * (mh / (Math.sqrt(vh) + ${eps}) + ${wd} * F[${P} + i]);
  }`;
      }
    }
  };
  return `/** ${o.name} update of W and b  (fixture.ts:3) */
function update_params(F, I) {
  const lr = F[LR], t = I[STEP];
  ${body("W", "W", "DW", "D * C")}
  ${body("b", "BIAS", "DB", "C")}
}
`;
}
