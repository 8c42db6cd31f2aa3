// The suite itself: it must pass on a loaded 2-core machine, so no hook or
// test may run under vitest's 5 s / 10 s defaults.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import config from "../vitest.config.js";

describe("the test suite's own settings", () => {
  it("gives hooks and tests timeouts sized for a loaded machine", () => {
    const t = config.test!;
    expect(t.testTimeout).toBeGreaterThanOrEqual(120_000);
    expect(t.hookTimeout).toBeGreaterThanOrEqual(120_000);
  });

  it("sizes the slow training hooks explicitly", () => {
    // deep.test.ts compiles and trains two 16-layer nets in one beforeAll
    const deep = readFileSync(new URL("./examples/deep.test.ts", import.meta.url), "utf8");
    const hook = /beforeAll\(async \(\) => \{[\s\S]*?\n {2}\}, (\d[\d_]*)\);/.exec(deep);
    expect(hook, "deep.test.ts's beforeAll has an explicit timeout").not.toBeNull();
    expect(Number(hook![1]!.replaceAll("_", ""))).toBeGreaterThanOrEqual(300_000);
  });
});
