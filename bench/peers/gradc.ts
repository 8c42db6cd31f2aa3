// The workloads as gradc graphs, compiled into bundles whose step() runs on
// arenas filled with the workloads' weights and data, on the runtime's thread
// pool as a user's trainer runs it (default: every core).
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { graph } from "../../compiler/dsl/graph.js";
import type { GraphBuilder } from "../../compiler/dsl/graph.js";
import * as nn from "../../compiler/dsl/nn.js";
import type { Graph } from "../../compiler/ir/graph.js";
import type { Tensor } from "../../compiler/ir/node.js";
import { compile } from "../../compiler/compile.js";
import type { Manifest, StepModule } from "../../runtime/manifest.js";
import { floatArena } from "../../runtime/hostDevice.js";
import { threadProducts, wasmProductsOf } from "../../runtime/wasmThreads.js";
import { loadKernels, nodePool } from "../../runtime/nodeDevices.js";
import { BLOCK } from "./workloads.js";
import type { Workload } from "./workloads.js";

/** The workload's model: params named and shaped as the workload's, inputs x (and y or labels). */
export function workloadGraph(w: Workload): Graph {
  return graph(w.name, (g: GraphBuilder) => {
    const p = (name: string) => g.param(name, w.params[name]!.shape);
    const input = (name: string) => g.input(name, w.inputs[name]!.shape);
    const x = input("x");
    const labels = () => g.input("labels", [w.labels!.data.length], "i32");
    switch (w.name) {
      case "mlpSgd":
      case "mlpAdam": {
        let h: Tensor = x;
        for (let l = 1; l <= 3; l++) {
          h = h.matmul(p(`W${l}`)).add(p(`b${l}`));
          if (l < 3) h = h.relu();
        }
        return { loss: nn.softmaxCrossEntropy(h, labels()) };
      }
      case "xor":
        return { loss: nn.mse(x.matmul(p("W1")).add(p("b1")).tanh().matmul(p("W2")).add(p("b2")), input("y")) };
      case "transformer": {
        const { batch, seq, d, heads, eps } = BLOCK;
        const dh = d / heads;
        // [B, S, D] → [B, H, S, D/H] and back
        const split = (t: Tensor) => t.reshape([batch, seq, heads, dh]).transpose([0, 2, 1, 3]);
        const a = nn.layerNorm(x, p("ln1g"), p("ln1b"), eps);
        const [q, k, v] = ["Wq", "Wk", "Wv"].map((n) => split(a.matmul(p(n))));
        const scores = q!.matmul(k!.transpose([0, 1, 3, 2])).mul(1 / Math.sqrt(dh));
        const attn = nn.softmax(scores, -1).matmul(v!).transpose([0, 2, 1, 3]).reshape([batch, seq, d]).matmul(p("Wo"));
        const h = x.add(attn);
        const m = nn.layerNorm(h, p("ln2g"), p("ln2b"), eps).matmul(p("W1")).add(p("b1")).gelu().matmul(p("W2")).add(p("b2"));
        return { loss: nn.mse(h.add(m), input("y")) };
      }
      case "cnn": {
        const c = x.conv2d(p("K"), 1, "valid").add(p("kb")).relu().maxPool2d(2);
        const logits = c.reshape([c.shape[0]!, -1]).matmul(p("W")).add(p("b"));
        return { loss: nn.softmaxCrossEntropy(logits, labels()) };
      }
      default:
        return w.name satisfies never;
    }
  });
}

/** A compiled step bound to arenas holding the workload's weights and data. */
export interface GradcStep {
  readonly manifest: Manifest;
  /** compile()'s own timings of the bundle, in ms (`total` from graph to files written). */
  readonly compileMs: Readonly<Record<"lower" | "emit" | "transpile" | "write" | "total", number>>;
  /** Threads its kernels run on (1 where the bundle has nothing to split or the host cannot share memory). */
  readonly threads: number;
  /** ms from importing the step module (its WebAssembly compiled) to `create(F, I)` returned. */
  readonly loadMs: number;
  /** One update; returns the loss of the forward pass it ran. */
  step(): number;
  /** Closes its thread pool and removes the bundle. */
  dispose(): Promise<void>;
}

/**
 * Compiles the workload (default options unless given) into a temporary
 * folder and loads its step on `threads` threads (default
 * `os.availableParallelism()`, what a trainer runs on by default).
 */
export async function gradcStep(w: Workload, options: { wasm?: boolean; threads?: number } = {}): Promise<GradcStep> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "gradc-peers-"));
  const { threads = os.availableParallelism(), ...compileOptions } = options;
  try {
    const r = compile(workloadGraph(w), { optimizer: w.optimizer, ...compileOptions, outDir: path.join(dir, w.name) });
    const m = r.manifest;
    // loaded as the Node runtime loads kernel modules (relaxed SIMD on, compiled optimized at once)
    const t0 = performance.now();
    const mod = await loadKernels(async () => (await import(pathToFileURL(path.join(r.outDir, m.files.step)).href)) as StepModule);
    // the arena where the runtime places it: in the step module's WebAssembly memory when it offers one
    const F = floatArena(m, mod);
    const I = new Int32Array(Math.max(1, m.arena.ints));
    for (const p of m.params) F.set(w.params[p.name]!.data, p.offset);
    for (const input of m.inputs) {
      if (input.arena === "I") I.set(w.labels!.data, input.offset);
      else F.set(w.inputs[input.name]!.data, input.offset);
    }
    const kernels = mod.create(F, I);
    const loadMs = performance.now() - t0;
    const wasm = wasmProductsOf(mod, m.files.step);
    const pool = wasm ? await threadProducts([wasm], threads, nodePool) : undefined;
    let t = 0;
    return {
      manifest: m,
      compileMs: r.timings,
      threads: pool?.threads ?? 1,
      loadMs,
      step: () => {
        F[m.hyper.lr.offset] = w.optimizer.lr;
        I[m.hyper.step.offset] = ++t;
        kernels.step();
        return F[m.loss!.offset]!;
      },
      dispose: async () => {
        await pool?.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
