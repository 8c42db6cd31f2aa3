// `gradc check <dir>`: a bundle compiled for float64 checks its own
// gradients() against central finite differences of its own loss, per param,
// on the first training batch. Needs nothing from the compiler.
import { resolve } from "node:path";
import type { InputEntry, Manifest } from "./manifest.js";
import type { Column } from "./data.js";
import { Batcher, createRng } from "./data.js";
import type { FlagDefs } from "./flags.js";
import { flagNumber, flagsHelp, parseFlags, UsageError } from "./flags.js";
import { load, readManifest } from "./load.js";
import type { Trainer } from "./load.js";
import { loadTrainingData } from "./sources.js";
import { unravelIndex } from "./numerics.js";
import { checkDerivative, maxAbs, num, reportTable, sci } from "./finiteDiff.js";

/** Options of `checkBundle`; every field has a default. */
export interface CheckOptions {
  /** Largest relative error accepted (default 1e-6). */
  readonly tolerance?: number;
  /** Finite-difference step, scaled by max(1, |θᵢ|) (default 1e-3). */
  readonly step?: number;
  /** Elements checked per param: all of a param this small, else the largest gradients and seeded random ones (default 32). */
  readonly samples?: number;
  /** Seed of the sampled elements and of random inputs (default 0). */
  readonly seed?: number;
}

/** One param's worst comparison. */
export interface ParamCheck {
  readonly name: string;
  readonly shape: readonly number[];
  /** Elements compared, of `size`. */
  readonly checked: number;
  readonly size: number;
  /** The largest relative error (0 when nothing was compared). */
  readonly error: number;
  /** Where: `[i,j]`. */
  readonly index: string;
  readonly symbolic: number;
  readonly numeric: number;
  /** Elements at a kink (relu at 0, ties of max) whose gradient lies between the one-sided derivatives: accepted. */
  readonly kinks: number;
  readonly ok: boolean;
}

/** What `checkBundle` found. */
export interface CheckReport {
  readonly model: string;
  readonly dir: string;
  /** Where the batch came from. */
  readonly batch: string;
  readonly loss: number;
  readonly tolerance: number;
  readonly step: number;
  readonly ok: boolean;
  readonly params: readonly ParamCheck[];
}

/** Errors are relative to at least this fraction of the param's largest gradient component. */
const RELATIVE_FLOOR = 1e-4;

/** The model file named in the kernels' source lines, for the f64 hint. */
function modelFileOf(m: Manifest): string | undefined {
  for (const k of m.kernels) {
    const hit = k.src ? /(?:^| at )(\S+?):\d+$/.exec(k.src) : null;
    if (hit) return hit[1];
  }
  return undefined;
}

/** The first batch the trainer would take, or seeded random inputs when the bundle has no data. */
function firstBatch(trainer: Trainer, seed: number): { batch: Record<string, Column>; from: string } {
  const m = trainer.manifest;
  const inputs = m.inputs.filter((i) => i.usedBy.includes("train"));
  const spec = m.training;
  if (spec) {
    const data = loadTrainingData(spec.data, trainer.dir, m.inputs);
    const batcher = new Batcher(data.train, inputs, trainer.batchSize);
    if (batcher.fullBatches > 0) {
      batcher.fill(batcher.order(0, spec.shuffle ?? true, spec.seed ?? 0), 0);
      return { batch: { ...batcher.batch }, from: `the first training batch (${trainer.batchSize} examples)` };
    }
  }
  const next = createRng(seed);
  const random = (i: InputEntry): Column => {
    const n = i.shape.reduce((a, b) => a * b, 1);
    // integer inputs (labels, indices) are 0: always in range
    return i.arena === "F" ? Float64Array.from({ length: n }, () => 2 * next() - 1) : new Int32Array(n);
  };
  return { batch: Object.fromEntries(inputs.map((i) => [i.name, random(i)])), from: "random inputs (uniform in [-1, 1); integer inputs 0): the bundle has no training data" };
}

/** Which elements of a param to compare: all, or the largest |g| and seeded random others. */
function sampleIndices(g: ArrayLike<number>, samples: number, seed: number): number[] {
  const n = g.length;
  if (n <= samples) return Array.from({ length: n }, (_, i) => i);
  const byMagnitude = Array.from({ length: n }, (_, i) => i).sort((a, b) => Math.abs(g[b]!) - Math.abs(g[a]!));
  const picked = new Set(byMagnitude.slice(0, Math.ceil(samples / 2)));
  const next = createRng(seed);
  while (picked.size < samples) picked.add(Math.floor(next() * n));
  return [...picked].sort((a, b) => a - b);
}

/**
 * Loads the float64 bundle in `dir` and compares, for every trainable param,
 * its gradient from gradients() with finite differences of the loss that
 * gradients() reports, moving one element at a time through `params.set`.
 *
 * The derivative along element i is a central difference with one
 * Richardson step, R = (4·D(h/2) − D(h)) / 3 with D(h) = (L(θ+h) − L(θ−h)) / 2h,
 * and the relative error of the symbolic a against it (b) is
 *   max(0, |a − b| − η) / max(|a|, |b|, 1e-4 · max|g|)
 * with η = 32·ε·max|L| / h the rounding noise of the quotient. An element that
 * fails is tried again with h/1000 (a kink between θ−h and θ+h), and accepted
 * at a kink exactly at θ (relu at 0) when a lies between the one-sided derivatives
 * (runtime/finiteDiff.ts, shared with the compiler's `checkGrads`).
 */
export async function checkBundle(dir: string, options: CheckOptions = {}): Promise<CheckReport> {
  const root = resolve(dir);
  const manifest = readManifest(root);
  if (manifest.dtype !== "f64") {
    const model = modelFileOf(manifest) ?? "<model.ts>";
    throw new Error(
      `${root} is an ${manifest.dtype} bundle; finite differences need float64. Compile one for checking: gradc compile ${model} -o ${dir}-f64 --dtype f64, then gradc check ${dir}-f64`,
    );
  }
  if (!manifest.loss) throw new Error(`${root}: the bundle has no loss to differentiate`);
  const tolerance = options.tolerance ?? 1e-6;
  const step = options.step ?? 1e-3;
  const samples = Math.max(1, options.samples ?? 32);
  const seed = options.seed ?? 0;
  const trainer = await load(root);
  const { batch, from } = firstBatch(trainer, seed);
  const base = trainer.gradients(batch);
  const loss0 = base.loss;

  const params: ParamCheck[] = [];
  for (const p of manifest.params) {
    const g = base.grads[p.name];
    if (!g) continue;
    const theta = Float64Array.from(trainer.params.get(p.name));
    const gmax = maxAbs(g);
    const lossAt = (i: number, t: number): number => {
      const moved = theta.slice();
      moved[i] = theta[i]! + t;
      trainer.params.set(p.name, moved);
      return trainer.gradients(batch).loss;
    };
    let worst = { error: 0, index: "-", symbolic: 0, numeric: 0 };
    let kinks = 0;
    const indices = sampleIndices(g, samples, seed ^ p.offset);
    for (const i of indices) {
      const a = g[i]!;
      const h = step * Math.max(1, Math.abs(theta[i]!));
      const c = checkDerivative(a, (t) => lossAt(i, t), { h, loss0, scale: RELATIVE_FLOOR * gmax, kinkTolerance: tolerance });
      if (c.kink) kinks++;
      if (!(c.error <= worst.error) || worst.index === "-") worst = { error: c.error, index: unravelIndex(i, p.shape), symbolic: a, numeric: c.numeric };
    }
    trainer.params.set(p.name, theta);
    const size = g.length;
    params.push({ name: p.name, shape: p.shape, checked: indices.length, size, ...worst, kinks, ok: worst.error <= tolerance });
  }
  return { model: manifest.name, dir: root, batch: from, loss: loss0, tolerance, step, ok: params.every((q) => q.ok), params };
}

/** A text table: one row per param with its worst relative error and where. */
export function formatCheckReport(r: CheckReport): string {
  const head = [
    `gradient check of ${JSON.stringify(r.model)}: ${r.ok ? "ok" : "FAILED"} (loss ${num(r.loss)}, step ${r.step}, tolerance ${sci(r.tolerance)})`,
    `  on ${r.batch}`,
  ];
  const rows = [
    ["param", "shape", "checked", "rel. error", "at", "symbolic", "numeric", ""],
    ...r.params.map((p) => [
      p.name,
      `[${p.shape.join(",")}]`,
      `${p.checked}/${p.size}`,
      sci(p.error),
      p.index,
      num(p.symbolic),
      num(p.numeric),
      (p.ok ? "ok" : "FAIL") + (p.kinks ? ` (${p.kinks} at kinks)` : ""),
    ]),
  ];
  return [...head, ...reportTable(rows)].join("\n");
}

/** The flags of `gradc check`. */
export const CHECK_FLAGS: FlagDefs = {
  tol: { kind: "number", value: "X", help: "largest relative error accepted (default 1e-6)" },
  step: { kind: "number", value: "X", help: "finite-difference step, scaled by max(1, |θ|) (default 1e-3)" },
  samples: { kind: "int", value: "N", help: "elements checked per param (all of smaller params; default 32)" },
  seed: { kind: "int", value: "N", help: "seed of the sampled elements and of random inputs (default 0)" },
  help: { kind: "boolean", short: "h", help: "show this help" },
};

/** The usage text of `gradc check`. */
export function checkHelp(command = "gradc check <dir>"): string {
  return `Usage: ${command} [options]\n\nCompares a float64 bundle's gradients with central finite differences of its\nloss on its first training batch, and prints the worst relative error per param.\nExits with 1 when one exceeds the tolerance. Compile with --dtype f64 first.\n\nOptions:\n${flagsHelp(CHECK_FLAGS)}`;
}

/** Runs `gradc check` on `argv` (the bundle folder and flags); returns the exit code. */
export async function checkCommand(argv: readonly string[], out: (line: string) => void): Promise<number> {
  const { flags, positional } = parseFlags(argv, CHECK_FLAGS, "gradc check");
  if (flags["help"]) {
    out(checkHelp());
    return 0;
  }
  if (positional.length !== 1) throw new UsageError(`gradc check takes one bundle folder${positional.length ? `, got: ${positional.join(" ")}` : " (see gradc check --help)"}`);
  const tol = flagNumber(flags, "tol");
  const stepFlag = flagNumber(flags, "step");
  if (tol !== undefined && !(tol > 0)) throw new UsageError(`--tol must be > 0 (got ${tol})`);
  if (stepFlag !== undefined && !(stepFlag > 0)) throw new UsageError(`--step must be > 0 (got ${stepFlag})`);
  const samples = flagNumber(flags, "samples");
  const seed = flagNumber(flags, "seed");
  const report = await checkBundle(positional[0]!, {
    ...(tol !== undefined ? { tolerance: tol } : {}),
    ...(stepFlag !== undefined ? { step: stepFlag } : {}),
    ...(samples !== undefined ? { samples } : {}),
    ...(seed !== undefined ? { seed } : {}),
  });
  out(formatCheckReport(report));
  return report.ok ? 0 : 1;
}
