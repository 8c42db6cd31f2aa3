// Random corruptions of a compiled bundle and of its checkpoints: truncation,
// bit flips and field deletion of the manifest, the kernels, the weights and a
// checkpoint must give a clear error naming the file, never a TypeError and
// never a silently different result.
import { copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compile } from "../../compiler/compile.js";
import { graph } from "../../compiler/dsl/graph.js";
import * as nn from "../../compiler/dsl/nn.js";
import { load } from "../../runtime/load.js";
import { budget, fuzz } from "./settings.js";

const root = mkdtempSync(join(tmpdir(), "gradc-fuzz-corrupt-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const model = graph("corruptible", (g) => {
  const x = g.input("x", [3, 2]);
  const y = g.input("y", [3], "i32");
  const logits = x.matmul(g.param("W", [2, 4], { init: "heUniform" })).add(g.param("b", [4], { init: 0.1 }));
  return { loss: nn.softmaxCrossEntropy(logits, y), outputs: { logits } };
});
const feeds = { x: [0.5, -1, 2, 0.25, -0.75, 1.5], y: [0, 3, 1] };
const pristine = join(root, "pristine");
let expected: { loss: number; logits: number[]; W: number[] };

beforeAll(async () => {
  compile(model, { outDir: pristine, backend: "ts", optimizer: { name: "adam", lr: 0.01 } });
  const t = await load(pristine);
  const loss = t.step(feeds);
  t.save(join(pristine, "checkpoints", "latest.safetensors"));
  expected = { loss, logits: Array.from(t.predict({ x: feeds.x })["logits"]!), W: Array.from(t.params.get("W")) };
});

type Corruption = { kind: "truncate"; at: number } | { kind: "flip"; at: number; bit: number } | { kind: "delete"; at: number };

const corruption = fc.oneof(
  fc.record({ kind: fc.constant("truncate" as const), at: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }) }),
  fc.record({ kind: fc.constant("flip" as const), at: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat() }),
);

/** Applies a corruption to a file; "delete" drops one field of a JSON file (a byte elsewhere). */
function corrupt(file: string, c: Corruption): void {
  const bytes = readFileSync(file);
  if (c.kind === "truncate") return writeFileSync(file, bytes.subarray(0, Math.floor(c.at * bytes.length)));
  if (c.kind === "flip") {
    const i = Math.floor(c.at * bytes.length);
    bytes[i] = bytes[i]! ^ (1 << c.bit);
    return writeFileSync(file, bytes);
  }
  if (file.endsWith(".json")) {
    // drop one field anywhere in the tree
    const doc = JSON.parse(bytes.toString("utf8")) as unknown;
    const holders: [Record<string, unknown>, string][] = [];
    const walk = (v: unknown): void => {
      if (v && typeof v === "object") for (const [k, w] of Object.entries(v)) {
        holders.push([v as Record<string, unknown>, k]);
        walk(w);
      }
    };
    walk(doc);
    const [obj, key] = holders[c.at % holders.length]!;
    if (Array.isArray(obj)) obj.splice(Number(key), 1);
    else delete obj[key];
    return writeFileSync(file, JSON.stringify(doc));
  }
  return writeFileSync(file, Buffer.concat([bytes.subarray(0, c.at % bytes.length), bytes.subarray((c.at % bytes.length) + 1)]));
}

let n = 0;
/** A fresh copy of the pristine bundle. */
function copy(): string {
  const dir = join(root, `c${n++}`);
  cpSync(pristine, dir, { recursive: true });
  return dir;
}

/** Loads, restores and runs the bundle: an error must name `file`; success must give the pristine numbers. */
async function clearOrSame(dir: string, file: string): Promise<void> {
  try {
    const t = await load(dir);
    t.restore(join(dir, "checkpoints", "latest.safetensors"));
    expect(Array.from(t.params.get("W"))).toEqual(expected.W);
    expect(Array.from(t.predict({ x: feeds.x })["logits"]!)).toEqual(expected.logits);
  } catch (e) {
    expect(e).not.toBeInstanceOf(TypeError);
    expect(e).not.toBeInstanceOf(RangeError);
    expect((e as Error).message).toContain(file);
  }
}

describe("random corruptions of a bundle", () => {
  for (const file of ["manifest.json", "step.js", "forward.js", "weights.safetensors", "runtime/load.js"]) {
    it(`${file}: a clear error naming it, or the same results`, async () => {
      await fc.assert(
        fc.asyncProperty(corruption, async (c) => {
          const dir = copy();
          corrupt(join(dir, file), c);
          await clearOrSame(dir, file.split("/").at(-1)!);
          rmSync(dir, { recursive: true, force: true });
        }),
        fuzz(8),
      );
    }, budget(120_000));
  }

  it("checkpoints/latest.safetensors: a clear error naming it, or the same params", async () => {
    await fc.assert(
      fc.asyncProperty(corruption, async (c) => {
        const dir = copy();
        corrupt(join(dir, "checkpoints", "latest.safetensors"), c);
        await clearOrSame(dir, "latest.safetensors");
        rmSync(dir, { recursive: true, force: true });
      }),
      fuzz(24),
    );
  }, budget(120_000));

  it("kernels of another model copied in are refused", async () => {
    const other = join(root, "other");
    compile(model, { outDir: other, backend: "ts", optimizer: { name: "sgd", lr: 0.5 } });
    const dir = copy();
    copyFileSync(join(other, "step.js"), join(dir, "step.js"));
    await expect(load(dir)).rejects.toThrow(/step\.js: its content/);
  });
});
