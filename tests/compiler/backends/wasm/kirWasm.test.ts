// Kernel IR compiled to scalar WebAssembly (kirWasm.ts): integer index
// arithmetic (floor division and remainders of negative numbers, min, max,
// selects, comparisons), float maxima, divisions by integers and
// scatter-adds give what the same statements give as JavaScript over f32
// arrays, bit for bit; what the compiler does not take is refused.
import { describe, expect, it } from "vitest";
import type { Stmt } from "../../../../compiler/kernel/kir.js";
import { bin, if_, let_, load, num, parallel, reduce, ref, scatterAdd, sel, set, store, un } from "../../../../compiler/kernel/kir.js";
import { kirFunctionBody } from "../../../../compiler/backends/wasm/kirWasm.js";
import { encodeModule } from "../../../../compiler/backends/wasm/wasm.js";
import { stmtsJs } from "../../../../compiler/backends/ts/jsExpr.js";
import { randomArray } from "../../../helpers.js";

const N = 40;
const t = ref("t");
const program: Stmt[] = [
  parallel("i", 6 * N + 5, [store("out", ref("i"), num(0))]),
  parallel("i", N, [
    let_("t", bin("-", ref("i"), 20)),
    store("out", ref("i"), bin("idiv", t, 3)),
    // (+ 0.5: an integer zero is +0 in WebAssembly, where JavaScript's % gives -0 for a negative multiple)
    store("out", bin("+", ref("i"), N), bin("+", bin("mod", t, 3), 0.5)),
    store("out", bin("+", ref("i"), 2 * N), bin("+", bin("min", t, 3), bin("*", bin("max", t, -2), 10))),
    store("out", bin("+", ref("i"), 3 * N), sel(bin("||", bin(">", t, 4), bin("==", bin("mod", t, 7), 0)), load("in0", ref("i")), un("neg", load("in0", ref("i"))))),
    // a float running maximum, a division by an integer, a comparison of floats
    let_("m", -Infinity),
    reduce("k", 3, [set("m", bin("max", ref("m"), load("in0", bin("mod", bin("+", ref("i"), ref("k")), N))))]),
    store("out", bin("+", ref("i"), 4 * N), bin("/", ref("m"), bin("+", ref("i"), 1))),
    if_(bin(">", load("in0", ref("i")), 0.25), [store("out", bin("+", ref("i"), 5 * N), num(1.5))], [store("out", bin("+", ref("i"), 5 * N), load("in0", ref("i")), true)]),
  ]),
  reduce("i", N, [scatterAdd("out", bin("+", bin("mod", ref("i"), 5), 6 * N), bin("*", load("in0", ref("i")), 0.1))]),
];

/** `stmts` as JavaScript over Float32Arrays `out` and `in0`. */
function runJs(stmts: readonly Stmt[], input: Float32Array, outSize: number): Float32Array {
  const out = new Float32Array(outSize);
  new Function("out", "in0", stmtsJs(stmts, (buf) => ({ array: buf, offset: 0 })).join("\n"))(out, input);
  return out;
}

/** `stmts` as a WebAssembly function over a memory holding `in0` at float 0 and `out` after it. */
function runWasm(stmts: readonly Stmt[], input: Float32Array, outSize: number): Float32Array | undefined {
  const body = kirFunctionBody(stmts, (buf) => (buf === "in0" ? 0 : buf === "out" ? input.length : undefined));
  if (!body) return undefined;
  const bytes = encodeModule([], 1, { functions: [{ name: "run", params: [], body }] });
  expect(WebAssembly.validate(bytes)).toBe(true);
  const memory = new WebAssembly.Memory({ initial: 1 });
  const W = new Float32Array(memory.buffer);
  W.set(input, 0);
  (new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports["run"] as () => void)();
  return W.slice(input.length, input.length + outSize);
}

describe("kernel IR as WebAssembly", () => {
  it("computes what the JavaScript of the same statements computes, bit for bit", () => {
    const input = Float32Array.from(randomArray(N, 3, -1, 1));
    const want = runJs(program, input, 6 * N + 5);
    const got = runWasm(program, input, 6 * N + 5);
    expect(got).toBeDefined();
    const diff = Array.from(want).flatMap((w, i) => (Object.is(w, got![i]) ? [] : [[i, w, got![i]]]));
    expect(diff).toEqual([]);
    // floor division and remainders of negatives, as the kernel IR defines them
    expect(Array.from(got!.slice(0, 3))).toEqual([-7, -7, -6]);
    expect(Array.from(got!.slice(N, N + 3))).toEqual([-1.5, -0.5, 0.5]);
  });

  it("refuses what it does not compile: transcendental functions, a buffer it was not given, an index that is no integer", () => {
    const at = (buf: string) => (buf === "in0" ? 0 : buf === "out" ? 64 : undefined);
    expect(kirFunctionBody([store("out", 0, un("exp", load("in0", 0)))], at)).toBeUndefined();
    expect(kirFunctionBody([store("out", 0, load("in1", 0))], at)).toBeUndefined();
    expect(kirFunctionBody([store("out", bin("/", 4, 2), num(1))], at)).toBeUndefined();
    expect(kirFunctionBody([store("out", 0, load("in0", 0))], at)).toBeDefined();
  });
});
