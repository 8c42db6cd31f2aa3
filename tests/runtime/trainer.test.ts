// main(): the generated trainer run in-process on the hand-written bundle:
// epochs and steps, flags, the loss log, evaluation and checkpoints.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../../runtime/trainer.js";
import { load } from "../../runtime/load.js";
import { writeFixture } from "./fixture.js";
import type { FixtureOptions } from "./fixture.js";
import type { TrainingSpec } from "../../runtime/manifest.js";

const root = mkdtempSync(join(tmpdir(), "gradc-trainer-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

const spec: TrainingSpec = {
  data: { kind: "arrays", file: "data.safetensors", testFraction: 0.25, seed: 3 },
  epochs: 4,
  seed: 5,
  accuracy: { output: "logits", labels: "y" },
  logEvery: 10,
};
const bundle = (o: FixtureOptions = {}) => writeFixture(join(root, `t${n++}`), { examples: 96, batch: 8, training: spec, ...o }).dir;

/** Runs main quietly and keeps what it printed. */
async function run(dir: string, argv: string[] = []) {
  const lines: string[] = [];
  const summary = await main(dir, argv, { log: (l) => lines.push(l), progress: false });
  return { summary: summary!, lines };
}

describe("trainer main", () => {
  it("trains for the spec's epochs, logs, evaluates and checkpoints", async () => {
    const dir = bundle({ optimizer: { name: "adam", lr: 0.05 } });
    const { summary, lines } = await run(dir);
    // 72 training examples in batches of 8: 9 steps per epoch
    expect(summary.steps).toBe(36);
    expect(summary.epochs).toBe(4);
    expect(summary.accuracy).toBeGreaterThan(0.9);
    expect(summary.finalLoss).toBeLessThan(0.5);
    expect(lines.filter((l) => l.includes("test accuracy")).length).toBe(5);
    expect(lines.at(-1)).toBe(`gradient code: ${join(dir, "step.ts")}`);
    const csv = readFileSync(join(dir, "logs", "loss.csv"), "utf8").trim().split("\n");
    expect(csv[0]).toBe("step,epoch,loss,lr");
    expect(csv.slice(1).map((r) => r.split(",")[0])).toEqual(["10", "20", "30", "36"]);
    expect(Number(csv.at(-1)!.split(",")[2])).toBe(summary.finalLoss);
    expect(csv[1]!.split(",")[1]).toBe("2");
    // the checkpoint restores the trained params
    const t = await load(dir);
    t.restore(summary.checkpoint);
    expect(t.stepCount).toBe(36);
    const fresh = await load(dir);
    expect(Array.from(t.params.get("W"))).not.toEqual(Array.from(fresh.params.get("W")));
  });

  it("is reproducible for a seed and changes with it", async () => {
    const a = await run(bundle(), ["--steps", "12"]);
    const b = await run(bundle(), ["--steps", "12"]);
    const c = await run(bundle(), ["--steps", "12", "--seed", "99"]);
    expect(a.summary.finalLoss).toBe(b.summary.finalLoss);
    expect(c.summary.finalLoss).not.toBe(a.summary.finalLoss);
  });

  it("applies flags over the spec", async () => {
    const dir = bundle();
    const out = join(root, "elsewhere");
    const { summary, lines } = await run(dir, ["--steps", "5", "--lr=0.5", "--log-every", "2", "--checkpoint-every", "3", "--out", out]);
    expect(summary.steps).toBe(5);
    expect(summary.lossLog).toBe(join(out, "logs", "loss.csv"));
    expect(existsSync(join(out, "checkpoints", "latest.safetensors"))).toBe(true);
    expect(existsSync(join(dir, "logs"))).toBe(false);
    expect(lines[0]).toMatch(/5 steps, 72 examples, batches of 8, sgd lr 0.5/);
    const rows = readFileSync(summary.lossLog, "utf8").trim().split("\n").slice(1);
    expect(rows.map((r) => r.split(",")[0])).toEqual(["2", "4", "5"]);
    expect(rows.every((r) => r.endsWith(",0.5"))).toBe(true);
    // a partial epoch still ends with one evaluation
    expect(summary.accuracy).toBeGreaterThan(0);
    const epochs = await run(bundle(), ["--epochs", "2"]);
    expect(epochs.summary.steps).toBe(18);
  });

  it("--resume continues mid-epoch exactly where a checkpoint left off", async () => {
    const straight = await run(bundle({ optimizer: { name: "adam", lr: 0.05 } }), ["--steps", "20", "--log-every", "4"]);
    const dir = bundle({ optimizer: { name: "adam", lr: 0.05 } });
    await run(dir, ["--steps", "13", "--log-every", "4"]);
    const resumed = await run(dir, ["--steps", "20", "--log-every", "4", "--resume"]);
    expect(resumed.lines[0]).toMatch(/20 steps \(resuming at 13\)/);
    expect(resumed.summary.steps).toBe(20);
    expect(resumed.summary.finalLoss).toBe(straight.summary.finalLoss);
    const [a, b] = [await load(dir), await load(dir)];
    a.restore(straight.summary.checkpoint);
    b.restore(resumed.summary.checkpoint);
    expect(Array.from(b.params.get("W"))).toEqual(Array.from(a.params.get("W")));
    const rows = readFileSync(resumed.summary.lossLog, "utf8").trim().split("\n");
    expect(rows.map((r) => r.split(",")[0])).toEqual(["step", "4", "8", "12", "13", "16", "20"]);
    await expect(run(bundle(), ["--resume"])).rejects.toThrow(/--resume: no checkpoint at .*checkpoints\/latest.safetensors/);
  });

  it("prints help, and rejects bad flags and bundles without training", async () => {
    const lines: string[] = [];
    expect(await main(bundle(), ["--help"], { log: (l) => lines.push(l) })).toBeUndefined();
    expect(lines.join("\n")).toMatch(/--checkpoint-every N/);
    await expect(main(bundle(), ["--stepz", "3"])).rejects.toThrow(/unknown option --stepz for the trainer/);
    await expect(main(bundle(), ["--steps", "x"])).rejects.toThrow(/--steps of the trainer needs a whole number/);
    // a negative count is no way to finish with exit code 0
    await expect(main(bundle(), ["--steps", "-5"])).rejects.toThrow('option --steps of the trainer needs a whole number ≥ 0 (got "-5")');
    await expect(main(bundle(), ["--epochs", "2.5"])).rejects.toThrow('option --epochs of the trainer needs a whole number ≥ 0 (got "2.5")');
    await expect(main(bundle(), ["--lr", "-1", "--steps", "1"])).rejects.toThrow(/learning rate must be a finite number ≥ 0 \(got -1\)/);
    await expect(main(bundle(), ["--threads", "0", "--steps", "1"])).rejects.toThrow(/--threads must be at least 1 \(got 0\)/);
    const bare = writeFixture(join(root, `t${n++}`)).dir;
    await expect(main(bare, [])).rejects.toThrow(/the bundle has no training spec/);
    await expect(run(bundle({ examples: 6 }))).rejects.toThrow(/4 training examples are fewer than one batch of 8/);
  });

  it("stops with a clear error when the loss diverges", async () => {
    await expect(run(bundle(), ["--lr", "1e300", "--steps", "30"])).rejects.toThrow(/the loss is (NaN|Infinity) at step \d+; try a lower learning rate/);
  });
});
