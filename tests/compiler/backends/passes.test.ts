// The backend-passes stage of compile(): a target's kernel IR passes run in
// order over every kernel after lowering, the check (the verifier, in tests)
// sees the schedule after each, dumpPasses lists what each rewrote, and a
// pass that changes more than a kernel's body is refused.
import { describe, expect, it } from "vitest";
import { backendPasses, lowerGraph } from "../../../compiler/compile.js";
import { TARGETS } from "../../../compiler/backends/index.js";
import type { KernelPass, Target } from "../../../compiler/backends/target.js";
import type { Stmt } from "../../../compiler/kernel/kir.js";
import xor, { config as xorConfig } from "../../../examples/xor/model.js";
import { verifySchedule } from "../harness/harness.js";

/** Puts one comment in front of every kernel body. */
const note: KernelPass = { name: "note", run: (k) => ({ ...k, body: [{ k: "comment", text: "noted" } as Stmt, ...k.body] }) };
/** Rewrites only kernels whose name starts with "matmul". */
const onlyMatmuls: KernelPass = { name: "onlyMatmuls", run: (k) => (k.name.startsWith("matmul") ? { ...k, body: [...k.body] } : k) };

const withPasses = (passes: readonly KernelPass[]): Target => ({ ...TARGETS.ts, passes });

describe("backend passes", () => {
  it("run in order over every kernel, with the check after each", () => {
    const lowered = lowerGraph(xor, { ...xorConfig, backend: "ts" }).schedule;
    const seen: string[] = [];
    const { schedule, rewrote } = backendPasses(lowered, withPasses([note, onlyMatmuls, note]), (stage, s) => {
      seen.push(stage);
      verifySchedule(s);
    });
    expect(seen).toEqual(["backend:note", "backend:onlyMatmuls", "backend:note"]);
    expect(schedule.kernels.map((k) => k.name)).toEqual(lowered.kernels.map((k) => k.name));
    for (const [i, k] of schedule.kernels.entries()) {
      expect(k.body.slice(0, 2)).toEqual([{ k: "comment", text: "noted" }, { k: "comment", text: "noted" }]);
      expect(k.body.slice(2)).toEqual(lowered.kernels[i]!.body);
    }
    const matmuls = lowered.kernels.filter((k) => k.name.startsWith("matmul")).map((k) => k.name);
    expect(matmuls.length).toBeGreaterThan(0);
    expect(rewrote).toEqual([
      { pass: "note", kernels: lowered.kernels.map((k) => k.name) },
      { pass: "onlyMatmuls", kernels: matmuls },
      { pass: "note", kernels: lowered.kernels.map((k) => k.name) },
    ]);
  });

  it("refuse a pass that renames a kernel or rebinds its buffers", () => {
    const lowered = lowerGraph(xor, { ...xorConfig, backend: "ts" }).schedule;
    const rename: KernelPass = { name: "rename", run: (k) => ({ ...k, name: `${k.name}_x` }) };
    const rebind: KernelPass = { name: "rebind", run: (k) => ({ ...k, buffers: { ...k.buffers } }) };
    const first = lowered.kernels[0]!.name;
    expect(() => backendPasses(lowered, withPasses([rename]))).toThrow(`backend pass rename changed the name, buffers or entry points of kernel ${first}`);
    expect(() => backendPasses(lowered, withPasses([rebind]))).toThrow(`backend pass rebind changed the name, buffers or entry points of kernel ${first}`);
  });
});
