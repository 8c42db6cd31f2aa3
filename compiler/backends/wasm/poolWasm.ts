// Pooling in WebAssembly (f32): the runPools pass hands a maxPool2d,
// maxPool2dGrad, avgPool2d or avgPool2dGrad kernel whole to the module: its
// loops become an extern `run` that kirWasm.ts compiles to scalar
// WebAssembly over its buffers where the arena lies in the module's memory,
// else over copies of them in scratch (copied in before the call, the
// buffers it writes copied back after it). The values are the
// JavaScript kernel's bit for bit: floats are f64 between an f32 load and an
// f32 store, as they are in JavaScript.
import type { OpKind } from "../../ir/kinds.js";
import type { KernelPass } from "../target.js";
import { declaredNames, freshNames } from "../ts/productNest.js";
import { copyAt, kirFunctionBody, placeCopy } from "./kirWasm.js";

/** The ops whose kernels the pass hands to WebAssembly. */
const POOL_OPS: ReadonlySet<OpKind> = new Set<OpKind>(["maxPool2d", "maxPool2dGrad", "avgPool2d", "avgPool2dGrad"]);

/** Kernels whose buffers hold fewer elements than this stay in JavaScript (the copies and the call would not pay). */
export const WASM_MIN_POOL = 4096;

export const runPools: KernelPass = {
  name: "runPools",
  run: (k, cx) => {
    if (cx.precision !== "f32" || k.extern || !k.node || !POOL_OPS.has(k.node.op) || k.inplace.length) return k;
    const buffers = Object.entries(k.buffers);
    if (!buffers.every(([, b]) => b.arena === "F") || buffers.reduce((n, [, b]) => n + b.size, 0) < WASM_MIN_POOL) return k;
    const taken = declaredNames(k.body);
    for (const [name] of buffers) taken.add(name);
    const scratch = freshNames(taken)("W");
    const data: Record<string, number> = {};
    let end = 0;
    for (const [name, b] of buffers) end = placeCopy(data, name, b.size, end);
    if (!kirFunctionBody(k.body, (buf) => copyAt(data, scratch, buf))) return k;
    // the kernel's leading comments (what it computes) stay outside
    const lead = k.body.findIndex((s) => s.k !== "comment");
    return {
      ...k,
      body: [
        ...k.body.slice(0, lead),
        { k: "comment", text: `in WebAssembly, on ${buffers.map(([n]) => n).join(", ")} in the arena (or copies in the scratch memory ${scratch})` },
        { k: "extern", call: "run", reference: k.body.slice(lead) },
      ],
      extern: { data, scratch: { name: scratch, size: end } },
    };
  },
};
