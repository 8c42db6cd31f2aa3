// gradc inspect (--grad, --math, --stage, --kernel, --with-forward) and gradc
// graph --format dot|svg|html on a compiled XOR bundle: in-process through
// run(), and the HTML page once through bin/gradc.mjs as a child process.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { run } from "../../compiler/cli.js";
import { exampleBundle, removeBundles } from "../compiler/inspect/bundles.js";

afterAll(removeBundles);
const repo = resolve(import.meta.dirname, "../..");

/** Runs the CLI in-process and captures what it printed. */
async function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

describe("gradc inspect", () => {
  it("--grad prints the backward slice; --with-forward adds the forward kernels' code", async () => {
    const { dir } = await exampleBundle("xor");
    const r = await cli("inspect", dir, "--grad", "W1");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^\/\/ dLoss\/dW1 \(f32\[2,8\]\): (\d+) backward kernels in execution order/);
    const names = [...r.out.matchAll(/^function (\w+)/gm)].map((m) => m[1]!);
    expect(names.length).toBe(Number(/: (\d+) backward/.exec(r.out)![1]));
    const forward = [...r.out.matchAll(/^\/\/ {3}(\w+) /gm)].map((m) => m[1]!);
    expect(forward.length).toBeGreaterThan(0);
    const both = await cli("inspect", dir, "--grad", "W1", "--with-forward");
    expect([...both.out.matchAll(/^function (\w+)/gm)].map((m) => m[1])).toEqual([...forward, ...names]);
  });

  it("--math and --stage print the maths and the IR of the slice", async () => {
    const { dir } = await exampleBundle("xor");
    const math = await cli("inspect", dir, "--grad", "W1", "--math");
    expect(math.out.split("\n")[0]).toBe("dL/dW1 = xᵀ · ((δf · W2ᵀ) ⊙ [b > 0])");
    const ir = await cli("inspect", dir, "--grad", "W1", "--stage", "input");
    expect(ir.out).toMatch(/^# dLoss\/dW1 at stage input \(as autodiff built it, before the pass pipeline\): \d+ bindings/);
    expect(ir.out).toMatch(/broadcastTo/);
    const after = await cli("inspect", dir, "--grad", "W1", "--stage", "backward");
    expect(after.out).not.toMatch(/broadcastTo/);
    const bad = await cli("inspect", dir, "--grad", "W1", "--stage", "nope");
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/^gradc: --stage must be one of forward, input, foldConstants, .*, backward \(got "nope"\)$/);
  });

  it("--kernel prints one kernel with its buffers and FLOPs", async () => {
    const { dir } = await exampleBundle("xor");
    const m = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as { kernels: { name: string; src?: string }[] };
    const k = m.kernels.find((x) => x.src?.startsWith("grad of matmul at examples/xor/model.ts:10"))!;
    const r = await cli("inspect", dir, "--kernel", k.name);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/\/\/ reads:\n[\s\S]*\/\/ writes:\n\/\/ {3}\w+ +"dW1" +f32\[2,8\]/);
    expect(r.out).toContain("// flops: 128 (* 64, + 64)");
    expect(r.out).toContain(`\nfunction ${k.name}(F`);
    expect((await cli("inspect", dir, "--kernel", k.name, "--math")).err).toBe("gradc: --kernel shows one kernel; use it without --grad, --math or --stage");
    expect((await cli("inspect", dir, "--kernel", "nothing_here")).err).toMatch(/^gradc: no kernel "nothing_here" in xor; gradc graph .* --stage kernels lists all \d+$/);
  });

  it("explains its flags in --help", async () => {
    const help = (await cli("inspect", "--help")).out;
    for (const flag of ["--grad NAME", "--math", "--stage STAGE", "--kernel NAME", "--with-forward"]) expect(help).toContain(flag);
    const graphHelp = (await cli("graph", "--help")).out;
    for (const flag of ["--format FMT", "--highlight-grad NAME", "-o, --out FILE"]) expect(graphHelp).toContain(flag);
    expect((await cli("--help")).out).toMatch(/gradc inspect <dir> --kernel NAME/);
  });
});

describe("gradc graph --format", () => {
  it("writes DOT and SVG to stdout or -o, and checks its flags", async () => {
    const { dir } = await exampleBundle("xor");
    const dot = await cli("graph", dir, "--stage", "backward", "--format", "dot", "--highlight-grad", "W1");
    expect(dot.code).toBe(0);
    expect(dot.out).toMatch(/^digraph "xor" \{/);
    expect(dot.out).toMatch(/subgraph "cluster_k\d+"/);
    expect(dot.out).toContain('class="hl"');
    const svg = await cli("graph", dir, "--format", "svg");
    expect(svg.out).toMatch(/<svg [\s\S]*<\/svg>$/);
    expect(svg.out).toContain("forward graph");
    const file = join(dir, "drawing.svg");
    const wrote = await cli("graph", dir, "--stage", "kernels", "--format", "svg", "-o", file);
    expect(wrote.out).toMatch(/^wrote .*drawing\.svg \(backward graph: \d+ nodes, \d+ fused kernels as clusters\)$/);
    expect(readFileSync(file, "utf8")).toMatch(/^<\?xml[\s\S]*<svg/);
    expect((await cli("graph", dir, "--format", "png")).err).toBe('gradc: --format must be one of text, dot, svg, html (got "png")');
    expect((await cli("graph", dir, "--highlight-grad", "W1")).err).toMatch(/--highlight-grad and -o draw: use them with --format dot, svg or html/);
    expect((await cli("graph", dir, "--format", "html", "--highlight-grad", "Q")).err).toMatch(/no gradient "Q" to highlight in xor; the gradients are W1, b1, W2, b2/);
    // text stays the default
    expect((await cli("graph", dir, "--stage", "backward")).out).toBe(readFileSync(join(dir, "graphs", "backward.txt"), "utf8").trimEnd());
  });

  it("writes the HTML page to <dir>/graphs/graph.html (child process through bin/gradc.mjs)", async () => {
    const { dir } = await exampleBundle("xor");
    const page = join(dir, "graphs", "graph.html");
    rmSync(page, { force: true });
    const out = execFileSync(process.execPath, [join(repo, "bin", "gradc.mjs"), "graph", dir, "--stage", "backward", "--format", "html", "--highlight-grad", "W1"], {
      cwd: repo,
      encoding: "utf8",
    });
    expect(out.trim()).toBe(`wrote ${page} (backward graph: ${/(\d+) nodes/.exec(out)![1]} nodes, ${/(\d+) fused/.exec(out)![1]} fused kernels as clusters, dLoss/dW1 highlighted)`);
    expect(existsSync(page)).toBe(true);
    const html = readFileSync(page, "utf8");
    expect(html).toMatch(/^<!DOCTYPE html>/);
    expect(html).toContain("<title>xor: backward graph</title>");
    expect(html).toMatch(/<svg [\s\S]*class="node op_matmul backward hl result"[\s\S]*<\/svg>/);
  });
});
