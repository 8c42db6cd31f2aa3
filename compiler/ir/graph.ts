// A graph: named inputs and parameters, a scalar loss, named outputs and, once
// differentiated, one gradient per parameter. Plain data over interned nodes.
import type { DType, Shape } from "./types.js";
import type { Context, Tensor } from "./node.js";

export interface InputSpec {
  readonly name: string;
  readonly shape: Shape;
  readonly dtype: DType;
  readonly node: Tensor;
}

/** Initializers by name (as in TensorFlow.js); the DSL resolves a user's spec to an `Init`. */
export type InitName =
  | "zeros" | "ones" | "constant" | "normal" | "uniform"
  | "glorotUniform" | "glorotNormal" | "heUniform" | "heNormal";

/** A resolved initializer: plain data, stored in the manifest. */
export interface Init {
  readonly name: InitName | "values";
  readonly seed: number;
  readonly value?: number;
  readonly mean?: number;
  readonly stddev?: number;
  readonly min?: number;
  readonly max?: number;
  readonly values?: readonly number[];
}

export interface ParamSpec {
  readonly name: string;
  readonly shape: Shape;
  readonly dtype: DType;
  readonly init: Init;
  readonly trainable: boolean;
  readonly node: Tensor;
}

export class Graph {
  constructor(
    readonly name: string,
    readonly ctx: Context,
    readonly inputs: readonly InputSpec[],
    readonly params: readonly ParamSpec[],
    readonly loss: Tensor | undefined,
    readonly outputs: Readonly<Record<string, Tensor>>,
    /** dLoss/dParam by parameter name (empty until `grad`). */
    readonly grads: Readonly<Record<string, Tensor>> = {},
    /**
     * State updates by (non-trainable) parameter name: after each training
     * step the param takes this value, computed in that step (batch norm's
     * moving statistics). See `GraphBuilder.assign`.
     */
    readonly updates: Readonly<Record<string, Tensor>> = {},
  ) {}

  /** The roots the graph computes: loss, outputs, gradients, state updates. */
  roots(): Tensor[] {
    return [...(this.loss ? [this.loss] : []), ...Object.values(this.outputs), ...Object.values(this.grads), ...Object.values(this.updates)];
  }

  /** Every node that a root depends on, in topological order (by id). */
  get nodes(): Tensor[] {
    return reachable(this.roots());
  }

  input(name: string): InputSpec | undefined {
    return this.inputs.find((i) => i.name === name);
  }

  param(name: string): ParamSpec | undefined {
    return this.params.find((p) => p.name === name);
  }

  /** A graph with other roots over the same nodes. */
  with(parts: { loss?: Tensor | undefined; outputs?: Record<string, Tensor>; grads?: Record<string, Tensor>; updates?: Record<string, Tensor>; name?: string }): Graph {
    return new Graph(
      parts.name ?? this.name,
      this.ctx,
      this.inputs,
      this.params,
      "loss" in parts ? parts.loss : this.loss,
      parts.outputs ?? this.outputs,
      parts.grads ?? this.grads,
      parts.updates ?? this.updates,
    );
  }
}

/** Nodes reachable from `roots`, sorted by id (ids are a topological order). */
export function reachable(roots: readonly Tensor[]): Tensor[] {
  const seen = new Map<number, Tensor>();
  const stack = [...roots];
  while (stack.length) {
    const t = stack.pop()!;
    if (seen.has(t.id)) continue;
    seen.set(t.id, t);
    for (const i of t.inputs) if (!seen.has(i.id)) stack.push(i);
  }
  return [...seen.values()].sort((a, b) => a.id - b.id);
}

/**
 * Every node a faithful copy of `g` must hold, sorted by id: the nodes reached
 * from the roots (loss, outputs, gradients) and from every input and parameter
 * node (listed ones too when nothing uses them), following each node's inputs
 * and, for a backward node, the forward node named by its `origin`. Unlike
 * `g.nodes`, it keeps the origins and unused sources, so a rebuilt or
 * serialized graph still names them.
 */
export function neededNodes(g: Graph): Tensor[] {
  const seen = new Set<Tensor>();
  const stack: Tensor[] = [...g.roots(), ...g.inputs.map((i) => i.node), ...g.params.map((p) => p.node)];
  while (stack.length) {
    const t = stack.pop()!;
    if (seen.has(t)) continue;
    seen.add(t);
    stack.push(...t.inputs);
    if (t.origin) stack.push(t.origin.of);
  }
  return [...seen].sort((a, b) => a.id - b.id);
}
