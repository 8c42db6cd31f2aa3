// inspect --kernel and the FLOP counter: hand-built loop nests with known
// counts, then real kernels whose FLOPs follow from their shapes (2·M·N·K for
// a matrix product), their buffers and their source.
import { afterAll, describe, expect, it } from "vitest";
import { bin, let_, load, loop, num, ref, sel, set, store, un, if_ } from "../../../compiler/kernel/kir.js";
import { humanCount, kernelCost } from "../../../compiler/inspect/flops.js";
import { readBundle } from "../../../compiler/inspect/bundleData.js";
import { kernelText } from "../../../compiler/inspect/kernel.js";
import { inspectText } from "../../../compiler/inspect/command.js";
import { gradSlice } from "../../../compiler/inspect/slice.js";
import { exampleBundle, normalize, removeBundles } from "./bundles.js";

afterAll(removeBundles);

describe("kernelCost", () => {
  it("counts value arithmetic times trip counts, not index arithmetic", () => {
    // C[i,j] += A[i,p] * B[p,j] over 3×5×7
    const body = [
      loop("i", 3, [
        loop("j", 5, [
          let_("acc", 0),
          loop("p", 7, [set("acc", bin("+", ref("acc"), bin("*", load("in0", bin("+", bin("*", ref("i"), 7), ref("p"))), load("in1", bin("+", bin("*", ref("p"), 5), ref("j"))))))]),
          store("out", bin("+", bin("*", ref("i"), 5), ref("j")), ref("acc")),
        ]),
      ]),
    ];
    const c = kernelCost(body);
    expect(c.flops).toBe(2 * 3 * 5 * 7);
    expect(c.byOp).toEqual({ "*": 105, "+": 105 });
    expect(c.loads).toEqual({ in0: 105, in1: 105 });
    expect(c.stores).toEqual({ out: 15 });
    expect(c.branches).toBe(false);
  });

  it("counts += as an add and a load, selects as free, and the costlier branch of an if", () => {
    const body = [
      loop("i", 4, [
        let_("row", bin("*", ref("i"), 2)),
        store("out", ref("row"), un("exp", load("in0", ref("row"))), true),
        store("out1", ref("i"), sel(bin(">", load("in0", ref("i")), 0), load("in0", ref("i")), 0)),
        if_(bin("<", ref("i"), 2), [store("out2", ref("i"), un("neg", un("tanh", load("in1", ref("i")))))], [store("out2", ref("i"), num(0))]),
      ], 1),
    ];
    const c = kernelCost(body);
    // 3 trips: exp and += (2), > (1), neg and tanh on the costlier branch (2)
    expect(c.byOp).toEqual({ "+": 3, exp: 3, ">": 3, neg: 3, tanh: 3 });
    expect(c.flops).toBe(15);
    expect(c.loads).toEqual({ in0: 9, in1: 3, out: 3 });
    expect(c.branches).toBe(true);
  });

  it("writes big counts for people", () => {
    expect(humanCount(9999)).toBe("9999");
    expect(humanCount(12_845_056)).toBe("12.8M");
    expect(humanCount(201_000)).toBe("201k");
  });
});

describe("inspect --kernel", () => {
  it("shows a matmul gradient's buffers, FLOPs and source", async () => {
    const { dir } = await exampleBundle("xor");
    const view = readBundle(dir);
    const last = gradSlice(view, "W1").backward.at(-1)!;
    const text = kernelText(view, last.name);
    const [head, code] = text.split("\n\n");
    expect(head).toMatch(new RegExp(`^// kernel ${last.name}: run by gradients; source in .*step\\.ts`));
    expect(head).toMatch(/\/\/ computes one node:\n\/\/ {3}\w+:f32\[2,8\] = matmul\[transposeA=true\] x \w+ +# grad of matmul at examples\/xor\/model\.ts:10/);
    expect(head).toMatch(/\/\/ reads:\n\/\/ {3}x +"x" +f32\[4,2\] +input +F\[\d+:\d+\]\n\/\/ {3}\w+ +"\w+" +f32\[4,8\] +node +F\[\d+:\d+\]/);
    expect(head).toMatch(/\/\/ writes:\n\/\/ {3}\w+ +"dW1" +f32\[2,8\] +grad +F\[\d+:\d+\]/);
    // dW1 = xᵀ·q: 2·8 outputs, each a sum over 4 rows of a multiply and an add
    expect(head).toContain(`// flops: ${2 * 2 * 8 * 4} (* 64, + 64); elements loaded`);
    expect(head).toContain("// the gradients of W1 depend on it");
    expect(code).toMatch(new RegExp(`^/\\*\\* .* \\*/\\nfunction ${last.name}\\(F: Float32Array \\| Float64Array, I: Int32Array\\): void \\{`));
  });

  it("counts 2·M·N·K for every matmul gradient of MNIST", async () => {
    const { dir } = await exampleBundle("mnist");
    const view = readBundle(dir);
    const wanted: Record<string, number> = { W1: 2 * 784 * 256 * 32, W2: 2 * 256 * 256 * 32, W3: 2 * 256 * 10 * 32 };
    for (const [p, flops] of Object.entries(wanted)) {
      const k = gradSlice(view, p).backward.at(-1)!;
      expect(view.kernels.get(k.name)!.cost.flops, p).toBe(flops);
    }
    const text = inspectText(dir, { kernel: gradSlice(view, "W1").backward.at(-1)!.name });
    expect(text).toContain("// flops: 12.8M (* 6.42M, + 6.42M)");
  });

  it("finds forward-only kernels in forward.ts and names close matches for a wrong name", async () => {
    const { dir } = await exampleBundle("xor");
    const view = readBundle(dir);
    const fwd = view.manifest.kernels.find((k) => k.entry.length === 1 && k.entry[0] === "forward")!;
    expect(normalize(kernelText(view, fwd.name), dir)).toMatch(new RegExp(`^// kernel ${fwd.name}: run by forward; source in <bundle>/forward\\.ts`));
    expect(() => kernelText(view, "matmul_x")).toThrow(/no kernel "matmul_x" in xor; did you mean matmul_x_W1/);
    expect(() => kernelText(view, "zzz")).toThrow(/no kernel "zzz" in xor; gradc graph .* --stage kernels lists all \d+/);
    expect(() => inspectText(dir, { kernel: fwd.name, grad: "W1" })).toThrow(/--kernel shows one kernel/);
  });
});

describe("inspect --kernel NAME --kir", () => {
  it("prints the kernel IR the bundle recorded for that kernel, and only it", { timeout: 120_000 }, async () => {
    const { dir } = await exampleBundle("xor");
    const view = readBundle(dir);
    const name = view.manifest.kernels.find((k) => k.entry.includes("gradients") && k.name.startsWith("matmul"))!.name;
    const text = inspectText(dir, { kernel: name, kir: true });
    const lines = text.trimEnd().split("\n");
    expect(lines[0]).toMatch(new RegExp(`^kernel ${name}\\(`));
    expect(lines.at(-1)).toBe("}");
    expect(lines.filter((l) => l.startsWith("kernel "))).toHaveLength(1);
    expect(text).toMatch(/\n {2}for \w+ in 0\.\.\d+ parallel/);
    expect(text).toMatch(/ reduce \{/);
  });

  it("needs --kernel, and names close matches for a wrong name", { timeout: 120_000 }, async () => {
    const { dir } = await exampleBundle("xor");
    expect(() => inspectText(dir, { kir: true, grad: "W1" })).toThrow(/--kir prints one kernel's IR; name it with --kernel NAME/);
    expect(() => inspectText(dir, { kernel: "matmul_x", kir: true })).toThrow(/no kernel "matmul_x" in xor; did you mean matmul_x_W1/);
  });
});
