// Runs tests/probes/allocProbe.ts on a bundle in a child process and returns its measure.
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Heap bytes per step, round by round, and the trainer's final step count. */
export function allocationPerStep(bundleDir: string): { perStep: number[]; stepCount: number } {
  const probe = join(dirname(fileURLToPath(import.meta.url)), "allocProbe.ts");
  const out = execFileSync(process.execPath, ["--expose-gc", "--no-concurrent-recompilation", "--import", "tsx", probe, bundleDir], {
    encoding: "utf8",
  });
  return JSON.parse(out) as { perStep: number[]; stepCount: number };
}
