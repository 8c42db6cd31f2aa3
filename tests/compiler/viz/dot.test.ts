// Graph drawings: DOT built from the training graph (styles, fused kernels as
// clusters, a gradient's path highlighted), rendered to SVG by Graphviz in
// WebAssembly, and hostile user names escaped in DOT, SVG and HTML.
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { grad } from "../../../compiler/autodiff/grad.js";
import { graph } from "../../../compiler/dsl/graph.js";
import { reachable } from "../../../compiler/ir/graph.js";
import { runPipeline } from "../../../compiler/passes/pipeline.js";
import { dotText, drawnNodes, graphDot } from "../../../compiler/viz/dot.js";
import { graphPage, htmlText, inlineSvg, renderSvg } from "../../../compiler/viz/render.js";
import { drawBundle } from "../../../compiler/viz/draw.js";
import { readBundle } from "../../../compiler/inspect/bundleData.js";
import { exampleBundle, removeBundles } from "../inspect/bundles.js";

afterAll(removeBundles);

/** The DOT statements of nodes: id → attribute text. */
function dotNodes(dot: string): Map<string, string> {
  return new Map([...dot.matchAll(/^\s*(n\d+) \[(.*)\];$/gm)].map((m) => [m[1]!, m[2]!]));
}

const xorTrain = async () => runPipeline(grad((await import("../../../examples/xor/model.js")).default)).graph;

describe("graphDot", () => {
  it("draws one node per binding, sources and backward nodes in their own styles", async () => {
    const g = await xorTrain();
    const dot = graphDot(g);
    const nodes = dotNodes(dot);
    const drawn = drawnNodes(g, "backward");
    expect([...nodes.keys()]).toEqual(drawn.map((t) => `n${t.id}`));
    // every binding of the printed graph, and every input and param
    const bindings = g.nodes.filter((t) => !(t.op === "const" && t.p("const").value.length === 1) && t.op !== "input" && t.op !== "param");
    expect(drawn.length).toBe(bindings.length + g.inputs.length + g.params.length);
    expect(nodes.get(`n${g.input("x")!.node.id}`)).toMatch(/class="op_input input".*label="x: f32\[4,2\]\\lexamples\/xor\/model\.ts:6\\l".*fillcolor="#dbeafe"/);
    expect(nodes.get(`n${g.param("W1")!.node.id}`)).toMatch(/class="op_param param".*fillcolor="#fef3c7"/);
    const dW1 = g.grads["W1"]!;
    expect(nodes.get(`n${dW1.id}`)).toMatch(/class="op_matmul backward result".*label="\w+:f32\[2,8\] = matmul\[transposeA=true\] x \w+\\lgrad of matmul at examples\/xor\/model\.ts:10\\l→ dW1\\l".*fillcolor="#ede9fe"/);
    // edges follow inputs, once per distinct input
    const edges = [...dot.matchAll(/^\s*(n\d+) -> (n\d+)/gm)].map((m) => `${m[1]}>${m[2]}`);
    expect(edges).toContain(`n${g.input("x")!.node.id}>n${dW1.id}`);
    expect(new Set(edges).size).toBe(edges.length);
    // the forward stage has no backward node
    const fwd = dotNodes(graphDot(g, { stage: "forward" }));
    expect([...fwd.values()].some((a) => a.includes("backward"))).toBe(false);
    expect(fwd.size).toBeLessThan(nodes.size);
  });

  it("highlights exactly the backward nodes a gradient depends on, and the edges between them", async () => {
    const g = await xorTrain();
    const dot = graphDot(g, { highlightGrad: "W1" });
    const lit = [...dotNodes(dot)].filter(([, a]) => /class="[^"]*\bhl\b/.test(a)).map(([id]) => id);
    const drawn = new Set(drawnNodes(g, "backward"));
    const path = reachable([g.grads["W1"]!]).filter((t) => t.origin && drawn.has(t));
    expect(lit.sort()).toEqual([...path.map((t) => `n${t.id}`), `n${g.param("W1")!.node.id}`].sort());
    const hlEdges = [...dot.matchAll(/^\s*(n\d+) -> (n\d+) \[class="hl"/gm)].map((m) => [m[1]!, m[2]!]);
    expect(hlEdges.length).toBeGreaterThan(0);
    for (const [a, b] of hlEdges) expect(lit.includes(a) && lit.includes(b)).toBe(true);
    expect(() => graphDot(g, { highlightGrad: "nope" })).toThrow(/no gradient for "nope"; the gradients are W1, b1, W2, b2/);
  });

  it("groups the nodes of a multi-node kernel in a cluster named after it", async () => {
    const g = await xorTrain();
    const [a, b, c] = g.nodes.filter((t) => t.op === "matmul" || t.op === "add" || t.op === "relu");
    const dot = graphDot(g, { kernels: [{ name: "single", nodes: [a!] }, { name: "fused_abc", nodes: [a!, b!, c!] }] });
    const cluster = /subgraph "cluster_k1" \{\n\s+graph \[id="kernel_1", class="kernel", label="kernel fused_abc"[^\n]*\n((?:\s+n\d+ \[.*\n){3})\s+\}/.exec(dot);
    expect(cluster).not.toBeNull();
    expect([...cluster![1]!.matchAll(/^\s+(n\d+) /gm)].map((m) => m[1])).toEqual([a, b, c].map((t) => `n${t!.id}`));
    expect(dot).not.toContain("cluster_k0");
    // nodes appear once: in the cluster, not again outside
    expect(dot.match(new RegExp(`^\\s+n${a!.id} \\[`, "gm"))).toHaveLength(1);
  });

  it("renders to SVG with one group per node", async () => {
    const g = await xorTrain();
    const svg = await renderSvg(graphDot(g, { highlightGrad: "W1" }));
    expect(svg).toMatch(/^<\?xml/);
    expect((svg.match(/<g id="n\d+" class="node /g) ?? []).length).toBe(drawnNodes(g, "backward").length);
    expect(svg).toContain('class="node op_matmul backward hl result"');
    const inline = inlineSvg(svg);
    expect(inline.startsWith("<svg")).toBe(true);
    expect(inline).not.toContain("<!--");
    await expect(renderSvg("digraph { a -> }")).rejects.toThrow(/graphviz could not render the graph: error: syntax error/);
  });
});

describe("user text is escaped", () => {
  const EVIL = {
    graph: 'g"</title><script>alert(1)</script>',
    x: 'x" ]; evil [label="pwned',
    W: "<script>alert('W')</script>",
    b: "line\nbreak \\N \\G \\l end",
  };
  const evil = graph(EVIL.graph, (g) => {
    const x = g.input(EVIL.x, [2, 2]);
    const W = g.param(EVIL.W, [2, 2]);
    const b = g.param(EVIL.b, [2]);
    return { loss: x.matmul(W).add(b).tanh().sum() };
  });
  const train = runPipeline(grad(evil)).graph;

  it("in DOT: quotes and backslashes cannot end a string or spell a Graphviz escape", () => {
    expect(dotText('a"b\\N\nc')).toBe('a\\"b\\\\N\\\\u000ac');
    const dot = graphDot(train, { highlightGrad: EVIL.W });
    // one statement per drawn node: no label broke out into a statement of its own
    expect(dotNodes(dot).size).toBe(drawnNodes(train, "backward").length);
    expect(dot).not.toMatch(/^\s*evil /m);
    expect(dot).not.toContain("\n break");
  });

  it("in SVG and HTML: no markup from names, text shown literally", async () => {
    const svg = await renderSvg(graphDot(train, { highlightGrad: EVIL.W }));
    expect(svg).not.toMatch(/<script/i);
    expect(svg).toContain("&lt;script&gt;");
    // the backslash escapes are shown, not expanded into the node's id or a line break
    expect(svg).toContain("\\N \\G \\l end");
    const page = graphPage({ title: EVIL.graph, subtitle: EVIL.W, svg: inlineSvg(svg), text: `${EVIL.x}\n${EVIL.W}` });
    expect(page).not.toMatch(/<script/i);
    expect(page).toContain(`<title>${htmlText(EVIL.graph)}</title>`);
    expect(page).toContain("&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(page).toContain(`content="default-src 'none'; style-src 'unsafe-inline'; img-src data:"`);
    expect(page).not.toMatch(/\b(src|href)=/);
  });
});

describe("drawBundle", () => {
  it("draws a compiled bundle with its fused kernels as clusters, as DOT, SVG and HTML", async () => {
    const { dir } = await exampleBundle("xor");
    const view = readBundle(dir);
    const multi = view.manifest.kernels.filter((k) => (view.kernels.get(k.name)?.nodes?.length ?? 0) > 1);
    expect(multi.length).toBeGreaterThan(0);
    const dot = await drawBundle(dir, { format: "dot", stage: "backward", highlightGrad: "W1" });
    expect(dot.clusters).toBeGreaterThan(0);
    expect(dot.text).toContain(`label="kernel ${multi[0]!.name}"`);
    const svg = await drawBundle(dir, { format: "svg", stage: "forward" });
    expect(svg.text).toContain("<svg");
    const html = await drawBundle(dir, { format: "html", stage: "backward", highlightGrad: "W1" });
    expect(html.text).toMatch(/^<!DOCTYPE html>/);
    expect(html.text).toContain('<li class="legend-highlight">');
    expect(html.text).not.toContain('<li class="legend-const">');
    const printed = readFileSync(path.join(dir, "graphs", "backward.txt"), "utf8").trimEnd();
    expect(html.text).toContain(`<pre class="graph-text">${htmlText(printed)}</pre>`);
    await expect(drawBundle(dir, { format: "svg", stage: "input" })).rejects.toThrow(/draw the forward or backward stage/);
    await expect(drawBundle(dir, { format: "svg", stage: "backward", highlightGrad: "W9" })).rejects.toThrow(/no gradient "W9" to highlight in xor/);
  });
});
