// The gradient slice: exactly the kernels dLoss/dW1 depends on (checked
// against the training graph's nodes and the kernels' stores), printed as the
// emitted TypeScript; goldens of `inspect --grad W1` for XOR and MNIST.
import { existsSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { graph } from "../../../compiler/dsl/graph.js";
import { lowerGraph } from "../../../compiler/compile.js";
import { reachable } from "../../../compiler/ir/graph.js";
import type { Tensor } from "../../../compiler/ir/node.js";
import { visitKir } from "../../../compiler/kernel/kir.js";
import type { Kernel } from "../../../compiler/lower/schedule.js";
import type { Buffer } from "../../../compiler/lower/lower.js";
import { readBundle } from "../../../compiler/inspect/bundleData.js";
import { gradSlice, sliceText } from "../../../compiler/inspect/slice.js";
import { inspectText } from "../../../compiler/inspect/command.js";
import { compileGraph, exampleBundle, normalize, removeBundles } from "./bundles.js";
import type { ExampleName } from "./bundles.js";

afterAll(removeBundles);

/** Buffer names a kernel body stores to (walked here, apart from the code under test). */
function storedNames(k: Kernel): Set<string> {
  const out = new Set<string>();
  visitKir(k.body, {
    stmt: (s) => {
      // a matmul kernel's scratch memory is private to it, not an arena buffer
      if ((s.k === "store" || s.k === "scatterAdd") && k.buffers[s.buf]) out.add(s.buf);
    },
  });
  return out;
}

/**
 * The kernels of gradients() that store a node dLoss/dNAME depends on: the
 * backward ones (or the gradient's own buffer), and the forward ones.
 */
const lowered = new Map<ExampleName, ReturnType<typeof lowerGraph>>();

async function expectedSlice(example: ExampleName, name: string): Promise<{ backward: string[]; forward: string[] }> {
  const { graph } = await exampleBundle(example);
  if (!lowered.has(example)) lowered.set(example, lowerGraph(graph, {}));
  const { schedule } = lowered.get(example)!;
  const needed = new Set<Tensor>(reachable([schedule.train.grads[name]!]));
  const gradBuffer = schedule.grads.get(name);
  // what a buffer holds: its node, or for a gradient buffer the gradient (and the nodes it reshapes)
  const held = (b: Buffer): Tensor[] => {
    const out = b.node ? [b.node] : [];
    for (const [p, gb] of schedule.grads) {
      if (gb !== b) continue;
      for (let t: Tensor | undefined = schedule.train.grads[p]; t; t = ["reshape", "stopGradient", "checkpoint"].includes(t.op) ? t.inputs[0] : undefined) out.push(t);
    }
    return out;
  };
  const backward: string[] = [];
  const forward: string[] = [];
  for (const k of schedule.kernels.filter((x) => x.entry.includes("gradients"))) {
    const written = [...storedNames(k)].flatMap((n) => held(k.buffers[n]!)).filter((t) => needed.has(t));
    if (written.some((t) => t.origin) || [...storedNames(k)].some((n) => k.buffers[n] === gradBuffer)) backward.push(k.name);
    else if (written.length) forward.push(k.name);
  }
  return { backward, forward };
}

const functionNames = (text: string): string[] => [...text.matchAll(/^function (\w+)/gm)].map((m) => m[1]!);

describe("the gradient slice", () => {
  for (const example of ["xor", "mnist", "neuron"] as const) {
    it(`${example}: exactly the kernels each gradient depends on, in execution order`, async () => {
      const { dir } = await exampleBundle(example);
      const view = readBundle(dir);
      for (const p of view.manifest.params) {
        const expected = await expectedSlice(example, p.name);
        const slice = gradSlice(view, p.name);
        expect(slice.exact).toBe(true);
        expect(slice.backward.map((k) => k.name)).toEqual(expected.backward);
        expect(slice.forward.map((k) => k.name)).toEqual(expected.forward);
        // printed: the backward kernels' functions, in the same order
        expect(functionNames(sliceText(view, p.name))).toEqual(expected.backward);
        expect(functionNames(sliceText(view, p.name, { withForward: true }))).toEqual([...expected.forward, ...expected.backward]);
      }
    });
  }

  it("leaves out kernels that only feed other gradients (the manifest's gradOf may list them)", async () => {
    const { dir } = await exampleBundle("xor");
    const view = readBundle(dir);
    const w1 = gradSlice(view, "W1").backward.map((k) => k.name);
    const others = ["b1", "W2", "b2"].flatMap((p) => gradSlice(view, p).backward.map((k) => k.name));
    const onlyOthers = others.filter((k) => !w1.includes(k));
    expect(onlyOthers.length).toBeGreaterThan(0);
    const text = sliceText(view, "W1");
    for (const k of onlyOthers) expect(text).not.toContain(`function ${k}(`);
    // every printed kernel says which op and user line it differentiates
    for (const fn of text.split("\n\n").slice(1)) expect(fn).toMatch(/^\/\*\* .* # grad of \w+ .*at examples\/xor\/model\.ts:\d+ \*\/\nfunction /);
  });

  it("names the forward kernels the slice reads in its header", async () => {
    const { dir } = await exampleBundle("xor");
    const text = sliceText(readBundle(dir), "W1");
    const head = text.split("\n\n")[0]!;
    expect(head).toMatch(/^\/\/ dLoss\/dW1 \(f32\[2,8\]\): \d+ backward kernels in execution order, from .*step\.ts/);
    expect(head).toMatch(/\/\/ forward inputs: \d+ forward kernels/);
    expect(head).toMatch(/\/\/ {3}\w+ +a:f32\[4,8\] = matmul x W1.*examples\/xor\/model\.ts:10/);
  });

  it("refuses unknown and frozen params", async () => {
    const { dir } = await exampleBundle("xor");
    expect(() => inspectText(dir, { grad: "W9" })).toThrow('no param "W9" in xor; the params are W1, b1, W2, b2');
    expect(() => inspectText(dir, {})).toThrow(/needs --grad NAME; the params are W1, b1, W2, b2 \(or --kernel NAME/);
  });

  it("says a frozen param has no gradient", async () => {
    const g = graph("frozen", (b) => {
      const x = b.input("x", [2, 2]);
      const F = b.param("F", [2, 2], { trainable: false });
      const W = b.param("W", [2, 2]);
      return { loss: x.matmul(F).matmul(W).tanh().sum() };
    });
    const dir = compileGraph("frozen", g);
    expect(() => inspectText(dir, { grad: "F" })).toThrow('param "F" is frozen (trainable: false); it has no gradient kernels');
    expect(() => inspectText(dir, { grad: "F", math: true })).toThrow('param "F" is frozen (trainable: false); it has no gradient');
    expect(gradSlice(readBundle(dir), "W").backward.length).toBeGreaterThan(0);
  });

  it("falls back to the manifest's gradOf for a bundle without graph data (customGrad)", async () => {
    const g = graph("custom", (b) => {
      const x = b.input("x", [2, 2]);
      const W = b.param("W", [2, 2]);
      const clipped = b.customGrad("clip", (t: Tensor) => t.mul(1), (ct) => [ct.maximum(-1).minimum(1)])(x.matmul(W));
      return { loss: clipped.tanh().sum() };
    });
    const dir = compileGraph("custom", g);
    expect(existsSync(path.join(dir, "graphs", "train.json"))).toBe(false);
    expect(existsSync(path.join(dir, "graphs", "kernels.json"))).toBe(true);
    const view = readBundle(dir);
    const slice = gradSlice(view, "W");
    expect(slice.exact).toBe(false);
    expect(slice.backward.map((k) => k.name)).toEqual(view.manifest.kernels.filter((k) => k.entry.includes("gradients") && k.gradOf?.includes("W")).map((k) => k.name));
    expect(sliceText(view, "W")).toContain("(this bundle has no graph data: forward and backward kernels are listed together");
    expect(() => inspectText(dir, { grad: "W", math: true })).toThrow(/has no graph data \(graphs\/train\.json, graphs\/grad\.json\)/);
    // kernels.json still describes every kernel's buffers and cost
    expect(inspectText(dir, { kernel: slice.backward.at(-1)!.name })).toMatch(/\/\/ flops: \d+/);
  });

  for (const example of ["xor", "mnist"] as const) {
    it(`golden: inspect --grad W1 of ${example}`, async () => {
      const { dir } = await exampleBundle(example);
      const text = normalize(inspectText(dir, { grad: "W1" }), dir);
      await expect(text + "\n").toMatchFileSnapshot(`./__snapshots__/${example}.grad-W1.ts.txt`);
    });
  }
});
