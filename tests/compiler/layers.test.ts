// The import graph of compiler/ and runtime/, read from the sources: no module
// imports itself through a chain of others, and the layers only point down:
// ir/ knows no op record, DSL, pass or backend; ops/ knows no backend; the
// runtime knows nothing of the compiler.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Every .ts file under `dir`, relative to the repository root with forward slashes. */
function sources(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(path.join(ROOT, rel), { withFileTypes: true })) {
      const sub = `${rel}/${e.name}`;
      if (e.isDirectory()) walk(sub);
      else if (e.name.endsWith(".ts")) out.push(sub);
    }
  };
  walk(dir);
  return out.sort();
}

/** Relative module specifiers of import and export-from statements, `import type` included, and of `import("...")`. */
function importSpecifiers(source: string): string[] {
  const text = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const found: string[] = [];
  for (const m of text.matchAll(/(?:^|[\n;])\s*(?:import|export)\b[^;'"]*?\bfrom\s*["']([^"']+)["']/g)) found.push(m[1]!);
  for (const m of text.matchAll(/(?:^|[\n;])\s*import\s*["']([^"']+)["']/g)) found.push(m[1]!);
  for (const m of text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)) found.push(m[1]!);
  return found.filter((s) => s.startsWith("."));
}

/** File → the files it imports (repository-relative), for compiler/ and runtime/. */
function importGraph(): Map<string, string[]> {
  const files = [...sources("compiler"), ...sources("runtime")];
  const known = new Set(files);
  const graph = new Map<string, string[]>();
  for (const f of files) {
    const deps = importSpecifiers(readFileSync(path.join(ROOT, f), "utf8")).map((s) =>
      path.posix.normalize(path.posix.join(path.posix.dirname(f), s)).replace(/\.js$/, ".ts"),
    );
    graph.set(
      f,
      deps.filter((d) => known.has(d)),
    );
  }
  return graph;
}

/** The strongly connected components with more than one file, or a file importing itself (Tarjan). */
function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || graph.get(v)?.includes(v)) found.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

/** Imports from files under `from` into files under any of `to`, as "a → b" lines. */
function crossings(graph: ReadonlyMap<string, readonly string[]>, from: string, to: readonly string[]): string[] {
  return [...graph].flatMap(([f, deps]) => (f.startsWith(from) ? deps.filter((d) => to.some((t) => d.startsWith(t))).map((d) => `${f} → ${d}`) : []));
}

describe("the import graph", () => {
  const graph = importGraph();

  it("reads the imports it is meant to read (the checker checks something)", () => {
    expect(graph.size).toBeGreaterThan(50);
    expect(importSpecifiers('import type { A } from "./a.js";\nimport { b,\n c } from "../b.js";\nexport { d } from "./d.js";\nconst e = await import("./e.js");\n// import { f } from "./f.js";\nimport "./g.js";'))
      .toEqual(["./a.js", "../b.js", "./d.js", "./g.js", "./e.js"]);
    expect(cycles(new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]], ["d", ["d"]], ["e", ["a"]]]))).toEqual([["a", "b", "c"], ["d"]]);
    expect(graph.get("compiler/compile.ts")).toContain("compiler/passes/pipeline.ts");
  });

  it("has no cycle anywhere in compiler/ and runtime/", () => {
    expect(cycles(graph)).toEqual([]);
  });

  it("ir/ imports no op record, DSL, pass, autodiff, lowering or backend", () => {
    const above = ["ops/", "dsl/", "passes/", "autodiff/", "interp/", "fusion/", "lower/", "kernel/", "plan/", "backends/", "bundle/", "inspect/", "viz/"];
    expect(crossings(graph, "compiler/ir/", above.map((d) => `compiler/${d}`))).toEqual([]);
  });

  it("ops/ imports no backend, nothing of fusion, lowering, planning or the bundle", () => {
    const above = ["backends/", "fusion/", "lower/", "plan/", "bundle/", "passes/", "inspect/", "viz/"];
    expect(crossings(graph, "compiler/ops/", above.map((d) => `compiler/${d}`))).toEqual([]);
  });

  it("autodiff is a stage of the pipeline: fusion, lowering, planning, backends and the bundle writer do not call it", () => {
    for (const dir of ["fusion/", "lower/", "kernel/", "plan/", "backends/", "bundle/", "inspect/", "viz/"]) {
      expect(crossings(graph, `compiler/${dir}`, ["compiler/autodiff/"]), dir).toEqual([]);
    }
  });

  it("inspect/ and viz/ run no stage again: no pipeline, fusion, lowering or emitting", () => {
    const stages = ["compiler/compile.ts", "compiler/autodiff/", "compiler/fusion/", "compiler/lower/schedule.ts", "compiler/plan/memory.ts", "compiler/backends/"];
    const runs = [...crossings(graph, "compiler/inspect/", stages), ...crossings(graph, "compiler/viz/", stages)];
    // type-only imports name what the bundle recorded; they run nothing
    const valueImports = runs.filter((line) => {
      const [from, to] = line.split(" → ") as [string, string];
      const src = readFileSync(path.join(ROOT, from), "utf8");
      const spec = path.posix.relative(path.posix.dirname(from), to).replace(/\.ts$/, ".js");
      const rel = spec.startsWith(".") ? spec : `./${spec}`;
      return new RegExp(`^import (?!type )[^;]*from "${rel.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}"`, "m").test(src);
    });
    expect(valueImports).toEqual([]);
  });

  it("runtime/ never imports compiler/", () => {
    expect(crossings(graph, "runtime/", ["compiler/"])).toEqual([]);
  });
});
