// The values one entry point computes: a DAG over graph nodes in which a
// forward value may appear twice, once in the forward pass and once as a copy
// recomputed inside the backward pass (rematerialization).
import type { Tensor } from "../ir/node.js";
import { OPS } from "../ops/index.js";
import type { OpDef } from "../ops/def.js";
import type { OpKind } from "../ir/kinds.js";
import type { Precision } from "../lower/lower.js";
import { uniformValue } from "../lower/lower.js";

/**
 * How a value is computed:
 * - source: an input, a param or a constant with a buffer of its own;
 * - literal: a uniform constant, written inline as a number;
 * - alias: the same elements as its first input (reshape, stopGradient, customGrad, checkpoint);
 * - pointwise: one element from its inputs' elements at the same (broadcast) index;
 * - index: a pure re-indexing (broadcastTo, transpose, oneHot);
 * - reduce: sum, max or min over axes; matmul; opaque: anything else (its record's `lower`).
 */
export type ValueKind = "source" | "literal" | "alias" | "pointwise" | "index" | "reduce" | "matmul" | "opaque";

/** Forward values run before backward ones; recomputed copies belong to the backward. */
export type Phase = "forward" | "backward";

/** One value of a program. */
export interface Value {
  /** Position in the program's topological order. */
  readonly key: number;
  readonly node: Tensor;
  /** A forward value recomputed in the backward pass instead of being kept. */
  readonly copy: boolean;
  readonly phase: Phase;
  readonly kind: ValueKind;
  /** The values it reads (an alias reads only its first input). */
  readonly inputs: readonly Value[];
  /** Distinct values that read it. */
  readonly users: Value[];
  /**
   * Scheduling priority (smaller runs earlier when several kernels are ready):
   * the node id, or for a recomputed copy the earliest of its readers'.
   */
  demand: number;
}

/** The values reachable from an entry point's roots, in topological order. */
export interface Program {
  readonly values: readonly Value[];
  readonly roots: readonly Value[];
}

/** Which forward values the backward pass reads from memory; the rest it recomputes. */
export interface SavePolicy {
  /** False: every forward value the backward reads is kept (no recomputation). */
  readonly recompute: boolean;
  /** With `recompute`, the forward nodes that are kept all the same. */
  readonly saved: (t: Tensor) => boolean;
}

/** Keeps every forward value (the default). */
export const KEEP_ALL: SavePolicy = { recompute: false, saved: () => true };

/** The kind of a graph node. */
export function kindOf(t: Tensor, precision: Precision): ValueKind {
  if (t.op === "input" || t.op === "param") return "source";
  if (t.op === "const") return uniformValue(t, precision) === undefined ? "source" : "literal";
  const def = OPS[t.op] as Pick<OpDef<OpKind>, "expr" | "fusion">;
  if (def.fusion) return def.fusion;
  return def.expr ? "pointwise" : "opaque";
}

/** Whether a node is a backward node (created by autodiff). */
export const phaseOf = (t: Tensor): Phase => (t.origin ? "backward" : "forward");

/**
 * Builds the program of `roots`. With a recomputing policy, a backward node
 * (or a copy) that reads an unsaved forward node reads its copy instead; the
 * copy reads copies of unsaved forward nodes in turn, down to saved values.
 */
export function buildProgram(roots: readonly Tensor[], precision: Precision, policy: SavePolicy = KEEP_ALL): Program {
  const made = new Map<string, Value>();
  const pending: { t: Tensor; copy: boolean }[] = [];
  const kinds = new Map<Tensor, ValueKind>();
  const kind = (t: Tensor): ValueKind => {
    let k = kinds.get(t);
    if (!k) kinds.set(t, (k = kindOf(t, precision)));
    return k;
  };
  const wantsCopy = (t: Tensor, fromBackward: boolean): boolean => {
    if (!fromBackward || !policy.recompute || phaseOf(t) === "backward") return false;
    const k = kind(t);
    return k !== "source" && k !== "literal" && !policy.saved(t);
  };
  // first the set of (node, copy) pairs, then the values in topological order
  const key = (t: Tensor, copy: boolean) => `${t.id}:${copy ? 1 : 0}`;
  const seen = new Set<string>();
  const stack: { t: Tensor; copy: boolean }[] = roots.map((t) => ({ t, copy: false }));
  while (stack.length) {
    const { t, copy } = stack.pop()!;
    const k = key(t, copy);
    if (seen.has(k)) continue;
    seen.add(k);
    pending.push({ t, copy });
    const reads = kind(t) === "alias" ? [t.inputs[0]!] : t.inputs;
    const fromBackward = copy || phaseOf(t) === "backward";
    for (const u of reads) stack.push({ t: u, copy: wantsCopy(u, fromBackward) });
  }
  // ids are a topological order of nodes, and a copy only reads lower ids
  pending.sort((a, b) => a.t.id - b.t.id || Number(a.copy) - Number(b.copy));
  const values: Value[] = [];
  for (const { t, copy } of pending) {
    const reads = kind(t) === "alias" ? [t.inputs[0]!] : t.inputs;
    const fromBackward = copy || phaseOf(t) === "backward";
    const inputs = reads.map((u) => made.get(key(u, wantsCopy(u, fromBackward)))!);
    const v: Value = {
      key: values.length,
      node: t,
      copy,
      phase: copy ? "backward" : phaseOf(t),
      kind: kind(t),
      inputs,
      users: [],
      demand: t.id,
    };
    for (const u of new Set(inputs)) u.users.push(v);
    made.set(key(t, copy), v);
    values.push(v);
  }
  // a copy is wanted just before its first reader
  for (let i = values.length - 1; i >= 0; i--) {
    const v = values[i]!;
    if (v.copy && v.users.length) v.demand = Math.min(...v.users.map((u) => u.demand));
  }
  return { values, roots: roots.map((r) => made.get(key(r, false))!) };
}

/** The value whose buffer holds `v`'s elements: aliases followed to their source. */
export function storageOf(v: Value): Value {
  let s = v;
  while (s.kind === "alias") s = s.inputs[0]!;
  return s;
}

/** The arithmetic cost of computing one element of `v` from its inputs (0 for pure re-indexing). */
export function opCost(v: Value): number {
  switch (v.kind) {
    case "pointwise": return OPS[v.node.op].cost ?? 1;
    case "index": return OPS[v.node.op].cost ?? 0;
    default: return 0;
  }
}
