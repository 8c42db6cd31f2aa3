// The target registry: compile options map onto a target by name; wasm: false
// (--no-wasm) still picks the TypeScript backend; unknown backends are
// refused with errors that name them.
import { describe, expect, it } from "vitest";
import { TARGETS, targetFor, targetOptions } from "../../../compiler/backends/index.js";
import type { Target } from "../../../compiler/backends/target.js";

describe("targetFor", () => {
  it("picks wasm by default, ts with wasm: false, and either by name", () => {
    expect(targetFor({}).name).toBe("wasm");
    expect(targetFor({ wasm: false }).name).toBe("ts");
    expect(targetFor({ wasm: true }).name).toBe("wasm");
    expect(targetFor({ backend: "ts" }).name).toBe("ts");
    expect(targetFor({ backend: "wasm" }).name).toBe("wasm");
    expect(targetFor({ backend: "ts", wasm: false }).name).toBe("ts");
  });

  it("refuses unknown names and contradictions, naming them", () => {
    expect(targetFor({ backend: "gpu" }).name).toBe("gpu");
    expect(() => targetFor({ backend: "cuda" as never })).toThrow(/unknown backend "cuda"; use "ts" or "wasm" or "gpu"/);
    expect(() => targetFor({ backend: "wasm", wasm: false })).toThrow(/backend "wasm" with wasm: false/);
  });

  it("reads the CLI's flags", () => {
    expect(targetOptions({ "no-wasm": true })).toEqual({ wasm: false });
    expect(targetOptions({ backend: "ts" })).toEqual({ backend: "ts" });
    expect(targetOptions({})).toEqual({});
  });

  it("registers each target under its own name", () => {
    for (const [name, t] of Object.entries(TARGETS) as [string, Target][]) expect(t.name).toBe(name);
  });
});

describe("a target's device", () => {
  it("is the backend's own runtime device name, which manifest.backend records", () => {
    expect(TARGETS.ts.device).toBe("ts");
    expect(TARGETS.wasm.device).toBe("wasm");
  });
});
