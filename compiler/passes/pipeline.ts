// The graph-level pass pipeline: named passes, each Graph → Graph, listed in
// the order they run. Read PIPELINE top to bottom to see what the compiler does.
import type { Graph } from "../ir/graph.js";
import { GraphError } from "../ir/types.js";
import { printGraph } from "../ir/printer.js";
import { verifyGraph } from "../ir/verify.js";
import type { Rule } from "./rewrite.js";
import { rewrite } from "./rewrite.js";
import { ALGEBRA, FOLD, LAYOUT, MOVEMENT } from "./rules.js";

/** One graph-to-graph pass. */
export interface Pass {
  readonly name: string;
  readonly run: (g: Graph) => Graph;
}

/** A pass that applies `rules` bottom-up to a fixpoint (and so also merges equal nodes and drops dead ones). */
function rulePass(name: string, rules: readonly Rule[]): Pass {
  return { name, run: (g) => rewrite(g, rules) };
}

/**
 * Dead code and duplicates: a plain replay keeps what the roots need, once.
 *   a = exp x; b = mul x 2.0 (unused)  in (y=a)   →   a = exp x  in (y=a)
 */
export function dcePass(): Pass {
  return rulePass("dce", []);
}

/**
 * Constants: a node computed from constants only becomes one.
 *   j:f32[] = div 1.0 4.0; k = broadcastTo[shape=[4,1]] j   →   0.25 (a uniform f32[4,1] literal)
 */
export function foldConstantsPass(): Pass {
  return rulePass("foldConstants", FOLD);
}

/**
 * Movement: transposes, reshapes and broadcasts compose or vanish.
 *   b = transpose[perm=[1,0]] a; c = transpose[perm=[1,0]] b   →   c = a
 *   b = reshape[shape=[1,8]] a; c = broadcastTo[shape=[4,8]] b  →   c = broadcastTo[shape=[4,8]] a
 */
export function movementPass(): Pass {
  return rulePass("movement", MOVEMENT);
}

/**
 * Algebra: identities that keep every value (NaN and ±Inf too).
 *   b = mul a 1.0; c = neg b; d = neg c; e = add x d   →   e = add x a
 *   s = sum[axes=[0]] (broadcastTo[shape=[4,8]] v:f32[8])  →   s = mul v 4.0
 */
export function algebraPass(): Pass {
  return rulePass("algebra", ALGEBRA);
}

/**
 * Layout: a transpose that feeds a matmul becomes the matmul's flag; a sum
 * over every batch of batched Aᵀ·B (a weight's gradient) is one 2-D product.
 *   t = transpose[perm=[1,0]] x; d = matmul t δ   →   d = matmul[transposeA=true] x δ
 *   s = sum[axes=[0]] (matmul[transposeA=true] x:f32[B,S,D] δ:f32[B,S,N])
 *     →   s = matmul[transposeA=true] (reshape[shape=[B·S,D]] x) (reshape[shape=[B·S,N]] δ)
 */
export function layoutPass(): Pass {
  return rulePass("layout", LAYOUT);
}

/**
 * Cleanup: every rule at once, to a fixpoint, for what one pass's rewrites
 * open up for another's (a fold that makes a literal 1, a reshape that meets a broadcast).
 */
export function cleanupPass(): Pass {
  return rulePass("cleanup", [...FOLD, ...MOVEMENT, ...ALGEBRA, ...LAYOUT]);
}

/** The passes, in the order they run. */
export const PIPELINE: readonly Pass[] = [foldConstantsPass(), movementPass(), algebraPass(), layoutPass(), cleanupPass()];

export interface PipelineOptions {
  /** Run `verifyGraph` on the input and after every pass (also on when GRADC_DEBUG is set). */
  readonly verify?: boolean;
  /** Print the graph before the first pass and after each one. */
  readonly dump?: boolean;
  /** The passes to run (default PIPELINE). */
  readonly passes?: readonly Pass[];
}

/** What one pass did. */
export interface PassStat {
  readonly pass: string;
  /** Nodes the roots need (sources and constants included), before and after. */
  readonly nodesBefore: number;
  readonly nodesAfter: number;
  readonly ms: number;
}

export interface PipelineResult {
  readonly graph: Graph;
  readonly stats: readonly PassStat[];
  /** With `dump`: the input graph ("input"), then the graph after each pass. */
  readonly dumps?: readonly { readonly pass: string; readonly text: string }[];
  /** The graph after each pass, in order (the bundle records them for `gradc inspect --stage`). */
  readonly stages: readonly { readonly pass: string; readonly graph: Graph }[];
}

/** `verifyGraph`, with the pass that broke the graph named in the error. */
function checked(g: Graph, after: string): void {
  try {
    verifyGraph(g);
  } catch (e) {
    if (!(e instanceof GraphError)) throw e;
    throw new GraphError("pipeline", `${after}: ${e.message}`, e.src);
  }
}

/** Runs the passes in order; see PipelineOptions. */
export function runPipeline(g: Graph, options: PipelineOptions = {}): PipelineResult {
  const verify = options.verify === true || Boolean(process.env["GRADC_DEBUG"]);
  const passes = options.passes ?? PIPELINE;
  const stats: PassStat[] = [];
  const dumps: { pass: string; text: string }[] = [];
  const stages: { pass: string; graph: Graph }[] = [];
  if (verify) checked(g, "the pipeline's input");
  if (options.dump) dumps.push({ pass: "input", text: printGraph(g) });
  let cur = g;
  for (const pass of passes) {
    const nodesBefore = cur.nodes.length;
    const t0 = performance.now();
    cur = pass.run(cur);
    const ms = performance.now() - t0;
    if (verify) checked(cur, `after pass "${pass.name}"`);
    stats.push({ pass: pass.name, nodesBefore, nodesAfter: cur.nodes.length, ms });
    stages.push({ pass: pass.name, graph: cur });
    if (options.dump) dumps.push({ pass: pass.name, text: printGraph(cur) });
  }
  return { graph: cur, stats, stages, ...(options.dump ? { dumps } : {}) };
}
