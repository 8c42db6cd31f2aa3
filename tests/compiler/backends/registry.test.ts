// The target registry: compile options map onto a target by name; wasm: false
// (--no-wasm) still picks the TypeScript backend; unknown backends are
// refused with errors that name them.
import { describe, expect, it } from "vitest";
import { TARGETS, targetFor, targetOptions } from "../../../compiler/backends/index.js";
import type { Target } from "../../../compiler/backends/target.js";
import { pickBackend } from "../../../compiler/backends/auto.js";

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

describe('backend "auto"', () => {
  const present = () => ({ adapter: "Test GPU" });
  const absent = () => ({ missing: "WebGPU (Dawn) found no adapter" });
  const never = () => {
    throw new Error("probed although the options rule the gpu backend out");
  };

  it("picks gpu when the probe finds an adapter, wasm when it finds none, and says why", () => {
    expect(pickBackend({}, present)).toEqual({ backend: "gpu", reason: "a WebGPU adapter answered: Test GPU" });
    expect(pickBackend({}, absent)).toEqual({ backend: "wasm", reason: "no WebGPU adapter: WebGPU (Dawn) found no adapter" });
  });

  it("picks wasm without probing when the options need what the gpu backend lacks", () => {
    expect(pickBackend({ dtype: "f64" }, never)).toEqual({ backend: "wasm", reason: 'dtype "f64": the gpu backend computes in float32 only' });
    expect(pickBackend({ precision: "mixed" }, never).backend).toBe("wasm");
    expect(pickBackend({ fusion: true }, never).backend).toBe("wasm");
    expect(() => pickBackend({ wasm: false }, never)).toThrow('compile: backend "auto" with wasm: false; name the backend ("ts")');
  });

  it("is a value of --backend", () => {
    expect(targetOptions({ backend: "auto" })).toEqual({ backend: "auto" });
  });
});

describe("a target's device", () => {
  it("is the backend's own runtime device name, which manifest.backend records", () => {
    expect(TARGETS.ts.device).toBe("ts");
    expect(TARGETS.wasm.device).toBe("wasm");
  });
});
