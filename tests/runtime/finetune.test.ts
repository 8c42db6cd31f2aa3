// Fine-tuning support: initial weights from a safetensors file by name
// (compile's initFrom, the trainer's loadParams, both F16/BF16/F32/F64),
// frozen scopes, and frozen params bit-identical after training.
import { afterAll, describe, expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { compile } from "../../compiler/compile.js";
import { graph } from "../../compiler/dsl/graph.js";
import { dense } from "../../compiler/dsl/nn.js";
import { load } from "../../runtime/load.js";
import { main } from "../../runtime/trainer.js";
import { encodeSafetensors } from "../../runtime/safetensors.js";
import { cleanupBundles, tempBundleDir } from "../compiler/harness/harness.js";

afterAll(cleanupBundles);

/** Two dense layers under scopes: lower.W [2,3], lower.b [3], upper.W [3,1], upper.b [1]. */
const model = graph("two", (g) => {
  const x = g.input("x", [4, 2]);
  const y = g.input("y", [4, 1]);
  const h = dense(g, "lower", x, 3, { activation: "tanh" });
  const pred = dense(g, "upper", h, 1);
  return { loss: pred.sub(y).square().mean() };
});
const BATCH = { x: [1, 0, 0, 1, 1, 1, -1, 0.5], y: [1, -1, 0.5, 0] };
const VALUES: Record<string, { shape: number[]; values: number[] }> = {
  "lower.W": { shape: [2, 3], values: [0.5, -0.25, 1, 2, 0.125, -1] },
  "lower.b": { shape: [3], values: [0.5, 0, -0.5] },
  "upper.W": { shape: [3, 1], values: [1, -2, 0.75] },
  "upper.b": { shape: [1], values: [0.25] },
};

/** F16 bit patterns of the values above (all exact in half precision). */
function half(v: number): number {
  const buf = new DataView(new ArrayBuffer(4));
  buf.setFloat32(0, v);
  const f = buf.getUint32(0);
  const sign = (f >>> 16) & 0x8000;
  const exp = ((f >>> 23) & 0xff) - 127 + 15;
  return v === 0 ? sign : sign | (exp << 10) | ((f >>> 13) & 0x3ff);
}

/** A file as another tool writes it, with every param in `dtype`. */
function foreignFile(dtype: "F16" | "BF16" | "F32" | "F64", drop?: string, reshape?: string): string {
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  const parts: Uint8Array[] = [];
  let at = 0;
  for (const [name, { shape, values }] of Object.entries(VALUES)) {
    if (name === drop) continue;
    let data: Uint8Array;
    if (dtype === "F32") data = new Uint8Array(Float32Array.from(values).buffer);
    else if (dtype === "F64") data = new Uint8Array(Float64Array.from(values).buffer);
    else if (dtype === "F16") data = new Uint8Array(Uint16Array.from(values.map(half)).buffer);
    else data = new Uint8Array(Uint16Array.from(values.map((v) => new Uint32Array(Float32Array.from([v]).buffer)[0]! >>> 16)).buffer);
    header[name] = { dtype, shape: name === reshape ? [...shape].reverse().concat([1]) : shape, data_offsets: [at, at + data.length] };
    parts.push(data);
    at += data.length;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const out = new Uint8Array(8 + json.length + at);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(Buffer.from(json), 8);
  let p = 8 + json.length;
  for (const d of parts) {
    out.set(d, p);
    p += d.length;
  }
  const path = join(tempBundleDir("file"), "..", `weights-${dtype}-${drop ?? ""}-${reshape ?? ""}.safetensors`);
  writeFileSync(path, out);
  return path;
}

describe("initFrom (compile) and loadParams (runtime)", () => {
  for (const dtype of ["F16", "BF16", "F32", "F64"] as const) {
    it(`takes every param by name from an ${dtype} file`, async () => {
      const dir = tempBundleDir("init");
      compile(model, { outDir: dir, initFrom: foreignFile(dtype) });
      const t = await load(dir);
      for (const [name, { values }] of Object.entries(VALUES)) expect([...t.params.get(name)]).toEqual(values);
    });
  }

  it("loads params into a trained bundle, leaving the step count", async () => {
    const dir = tempBundleDir("load");
    compile(model, { outDir: dir, optimizer: { name: "sgd", lr: 0.1 } });
    const t = await load(dir);
    t.step(BATCH);
    t.loadParams(foreignFile("F16"));
    expect([...t.params.get("upper.W")]).toEqual(VALUES["upper.W"]!.values);
    expect(t.stepCount).toBe(1);
  });

  it("names a missing param, a mis-shaped one and a stranger", async () => {
    expect(() => compile(model, { outDir: tempBundleDir("bad"), initFrom: foreignFile("F32", "lower.b") })).toThrow(/param "lower\.b" \(f32\[3\]\) is missing from the file/);
    expect(() => compile(model, { outDir: tempBundleDir("bad"), initFrom: foreignFile("F32", undefined, "upper.W") })).toThrow(/param "upper\.W" is \[1,3,1\] in the file, but the model's is \[3,1\]/);
    const dir = tempBundleDir("ok");
    compile(model, { outDir: dir });
    const t = await load(dir);
    const extra = join(dir, "extra.safetensors");
    const tensors = Object.fromEntries(Object.entries(VALUES).map(([n, v]) => [n, { shape: v.shape, data: Float32Array.from(v.values) }]));
    writeFileSync(extra, encodeSafetensors({ ...tensors, "head.W": { shape: [1], data: Float32Array.from([1]) }, "state/upper.W/m": { shape: [3, 1], data: new Float32Array(3) } }));
    expect(() => t.loadParams(extra)).toThrow(/"head\.W" is not a param of this model/);
  });

  it("train.js --init-from starts from the file's params; it refuses --resume beside it", async () => {
    const dir = tempBundleDir("flag");
    compile(model, { outDir: dir, optimizer: { name: "sgd", lr: 0.1 }, training: { data: { kind: "arrays", inputs: BATCH }, seed: 1 } });
    const file = foreignFile("BF16");
    const lines: string[] = [];
    // lr 0: the one step changes nothing, so the checkpoint holds what --init-from loaded
    await main(dir, ["--steps", "1", "--lr", "0", "--init-from", file], { log: (l) => lines.push(l), progress: false });
    const t = await load(dir);
    t.restore(join(dir, "checkpoints", "latest.safetensors"));
    for (const [name, { values }] of Object.entries(VALUES)) expect([...t.params.get(name)]).toEqual(values);
    await expect(main(dir, ["--resume", "--init-from", file], { log: () => {}, progress: false })).rejects.toThrow(/--resume and --init-from exclude each other/);
  });

  it("reads a gradc checkpoint, ignoring its optimizer state", async () => {
    const dir = tempBundleDir("ckpt");
    compile(model, { outDir: dir, optimizer: { name: "adam", lr: 0.01 } });
    const a = await load(dir);
    for (let i = 0; i < 3; i++) a.step(BATCH);
    a.save(join(dir, "ckpt.safetensors"));
    const fresh = tempBundleDir("fresh");
    compile(model, { outDir: fresh, optimizer: { name: "sgd", lr: 0.1 }, initFrom: join(dir, "ckpt.safetensors") });
    const b = await load(fresh);
    expect([...b.params.get("lower.W")]).toEqual([...a.params.get("lower.W")]);
  });
});

describe("freeze", () => {
  it("freezes the params of a scope: no gradient, no state, bit-identical after training", async () => {
    const dir = tempBundleDir("freeze");
    const res = compile(model, { outDir: dir, freeze: ["lower"], optimizer: { name: "adamw", lr: 0.05 } });
    expect(res.manifest.params.filter((p) => !p.trainable).map((p) => p.name)).toEqual(["lower.W", "lower.b"]);
    expect(res.manifest.state.some((s) => s.param.startsWith("lower."))).toBe(false);
    const t = await load(dir);
    const before = { W: t.params.get("lower.W"), b: t.params.get("lower.b"), up: t.params.get("upper.W") };
    for (let i = 0; i < 20; i++) t.step(BATCH);
    expect(t.params.get("lower.W")).toEqual(before.W);
    expect(t.params.get("lower.b")).toEqual(before.b);
    expect(t.params.get("upper.W")).not.toEqual(before.up);
  });

  it("refuses a scope that matches no param", () => {
    expect(() => compile(model, { outDir: tempBundleDir("nofreeze"), freeze: ["low"] })).toThrow(/freeze: "low" matches no param of "two"/);
  });
});
