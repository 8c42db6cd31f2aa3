// The browser runtime loads in a page as the bundle's own ES modules, with no
// bundler: everything runtime/browser/ imports, transitively, must be a
// relative module of the runtime with no Node import (type imports aside,
// which compile away).
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const RUNTIME = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../runtime");

/** The value imports of a module: `import ... from "x"` and `export ... from "x"`, `import type` and `export type` left out. */
function valueImports(source: string): string[] {
  const out: string[] = [];
  for (const m of source.matchAll(/^(import|export)\s+(type\s+)?[^;]*?\sfrom\s+"([^"]+)";/gms)) if (!m[2]) out.push(m[3]!);
  for (const m of source.matchAll(/^import\s+"([^"]+)";/gm)) out.push(m[1]!);
  for (const m of source.matchAll(/\bimport\(\s*"([^"]+)"\s*\)/g)) out.push(m[1]!);
  return out;
}

describe("the browser runtime's imports", () => {
  it("reach only the runtime's own modules, none of them a Node module", () => {
    const seen = new Set<string>();
    const bad: string[] = [];
    const visit = (file: string): void => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const spec of valueImports(readFileSync(file, "utf8"))) {
        if (!spec.startsWith(".")) {
          bad.push(`${path.relative(RUNTIME, file)} imports ${spec}`);
          continue;
        }
        visit(path.resolve(path.dirname(file), spec.replace(/\.js$/, ".ts")));
      }
    };
    for (const entry of ["index.ts", "page.ts"]) visit(path.join(RUNTIME, "browser", entry));
    expect(bad).toEqual([]);
    // the closure is the loader and its parts, not a stray module or two
    const names = [...seen].map((f) => path.relative(RUNTIME, f)).sort();
    for (const m of ["open.ts", "run.ts", "hostDevice.ts", "verify.ts", "checkpoint.ts", "safetensorsFormat.ts", "arrays.ts", "schema.ts"]) expect(names).toContain(m);
    for (const m of ["load.ts", "trainer.ts", "nodeIO.ts", "safetensors.ts", "sources.ts", "integrity.ts"]) expect(names).not.toContain(m);
  });

  it("would catch a Node import (the scanner sees value imports, not type imports)", () => {
    expect(valueImports('import { readFileSync } from "node:fs";\nimport type { X } from "./x.js";\nexport { y } from "./y.js";\nexport type { Z } from "./z.js";')).toEqual(["node:fs", "./y.js"]);
  });
});
