// Runs tests/probes/allocProbe.ts on a bundle in a child process and returns its measure.
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface AllocationMeasure {
  /** Heap growth per step and garbage collections, round by round. */
  readonly rounds: readonly { readonly bytes: number; readonly collections: number }[];
  /** The trainer's step count at the end. */
  readonly stepCount: number;
  readonly roundSteps: number;
}

/** Measures a bundle's training step in a process of its own (see allocProbe.ts). */
export function measureAllocation(bundleDir: string): AllocationMeasure {
  const probe = join(dirname(fileURLToPath(import.meta.url)), "allocProbe.ts");
  const flags = ["--expose-gc", "--no-concurrent-recompilation", "--max-semi-space-size=64", "--import", "tsx"];
  const out = execFileSync(process.execPath, [...flags, probe, bundleDir], { encoding: "utf8" });
  return JSON.parse(out) as AllocationMeasure;
}

/**
 * The least heap growth per step over the rounds that ran without a garbage
 * collection (a collection would hide garbage); Infinity if every round collected.
 */
export function bytesPerStep(m: AllocationMeasure): number {
  return Math.min(...m.rounds.filter((r) => r.collections === 0).map((r) => r.bytes), Infinity);
}
