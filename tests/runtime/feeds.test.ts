// Feeds at the API boundary: labels outside [0, classes), values that do not
// fit i32, non-integers, strings, NaN and infinity are refused by name before
// they reach a kernel, and the params stay as they were.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { load } from "../../runtime/load.js";
import { errorMessage } from "../helpers.js";
import { blobs, writeFixture } from "./fixture.js";
import { graph, nn } from "../../index.js";
import { compile } from "../../compiler/compile.js";

const root = mkdtempSync(join(tmpdir(), "gradc-feeds-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const data = blobs(4, 2, 3, 5);

describe("checked feeds", () => {
  it("refuses class labels outside [0, classes) and values that do not fit i32", async () => {
    const t = await load(writeFixture(join(root, "labels")).dir);
    const W = Array.from(t.params.get("W"));
    const cases: [ArrayLike<number>, RegExp][] = [
      [Int32Array.of(0, 1, 3, 2), /input "y": value 3 at index 2 is not a class index in \[0, 3\)/],
      [Int32Array.of(0, -1, 2, 2), /value -1 at index 1 is not a class index in \[0, 3\)/],
      [[0, 1, 7, 2], /value 7 at index 2 is not a class index/],
      [[0, 1, 2 ** 31, 2], /value 2147483648 at index 2 does not fit in i32/],
      [[0, 1.5, 2, 2], /value 1\.5 at index 1 is not an integer/],
    ];
    for (const [y, msg] of cases) {
      expect(errorMessage(() => t.step({ x: data.x, y: y as Int32Array }))).toMatch(msg);
      expect(errorMessage(() => t.gradients({ x: data.x, y: y as Int32Array }))).toMatch(msg);
    }
    expect(Array.from(t.params.get("W"))).toEqual(W);
    expect(t.stepCount).toBe(0);
  });

  it("refuses NaN, infinity and strings in float inputs, typed or plain", async () => {
    const t = await load(writeFixture(join(root, "floats")).dir);
    const W = Array.from(t.params.get("W"));
    const x = Float32Array.from(data.x);
    x[5] = NaN;
    expect(errorMessage(() => t.step({ x, y: data.y }))).toMatch(/input "x": value NaN at index 5 is not finite/);
    x[5] = -Infinity;
    expect(errorMessage(() => t.predict({ x }))).toMatch(/input "x": value -Infinity at index 5 is not finite/);
    const plain: unknown[] = Array.from(data.x);
    plain[3] = "0.5";
    expect(errorMessage(() => t.step({ x: plain as number[], y: data.y }))).toMatch(/input "x": value "0\.5" at index 3 is string, not a number/);
    expect(Array.from(t.params.get("W"))).toEqual(W);
  });

  it("refuses NaN and infinity written into a param", async () => {
    const t = await load(writeFixture(join(root, "params")).dir);
    expect(errorMessage(() => t.params.set("b", [0, NaN, 0]))).toMatch(/param "b": value NaN at index 1 is not a finite number/);
    expect(errorMessage(() => t.params.set("b", Float32Array.of(0, 0, Infinity)))).toMatch(/param "b": value Infinity at index 2/);
    expect(Array.from(t.params.get("b"))).toEqual([0, 0, 0]);
  });

  it("an inherited key is no input: __proto__ and toString are looked up as own keys only", async () => {
    const t = await load(writeFixture(join(root, "proto")).dir);
    expect(errorMessage(() => t.step({ x: data.x }))).toMatch(/missing input "y"/);
    const feeds = JSON.parse('{"__proto__": [1]}') as Record<string, number[]>;
    expect(errorMessage(() => t.step({ ...feeds, x: data.x, y: data.y } as never))).toMatch(/unknown input "__proto__"/);
  });

  it("inputs named like Object.prototype members are looked up as own keys: missing ones are missing, not the inherited function", async () => {
    const model = graph("inherited", (g) => {
      const x = g.input("toString", [4, 2]);
      const y = g.input("constructor", [4, 1]);
      const W = g.param("W", [2, 1], { init: "glorotUniform" });
      const pred = x.matmul(W);
      return { loss: nn.mse(pred, y), outputs: { pred } };
    });
    const dir = join(root, "inherited");
    compile(model, { outDir: dir, backend: "ts" });
    const t = await load(dir);
    const x = Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8);
    const y = Float32Array.of(1, 0, 1, 0);
    expect(errorMessage(() => t.step({ toString: x } as never))).toMatch(/missing input "constructor"/);
    expect(errorMessage(() => t.step({ constructor: y } as never))).toMatch(/missing input "toString"/);
    expect(errorMessage(() => t.predict({}))).toMatch(/missing input "toString"/);
    expect(t.stepCount).toBe(0);
    const own = Object.create(null) as Record<string, Float32Array>;
    own["toString"] = x;
    own["constructor"] = y;
    expect(Number.isFinite(t.step(own))).toBe(true);
  });
});
