// The DSL entry point: graph(name, build) runs the user's builder once and
// checks names, dtypes and the loss while the user's lines are on the stack.
import { Context, MAX_ELEMENTS, Tensor } from "../ir/node.js";
import { OPS } from "../ops/index.js";
import type { CustomVjp, TensorLike } from "../ir/node.js";
import { Graph } from "../ir/graph.js";
import type { InputSpec, ParamSpec } from "../ir/graph.js";
import type { DType } from "../ir/types.js";
import { GraphError, isFloat, shapeStr, sizeOf } from "../ir/types.js";
import { callerLocation } from "../ir/source.js";
import { hashString, initValues, resolveInit } from "./init.js";
import type { InitSpec } from "./init.js";

export interface ParamOptions {
  readonly init?: InitSpec;
  /** false freezes the parameter: no gradient, no update (fine-tuning). */
  readonly trainable?: boolean;
  readonly dtype?: DType;
}

/** Nested arrays of numbers, as accepted by `g.const`. */
export type NestedNumbers = number | readonly NestedNumbers[];

/** The builder a model's `build` function receives. */
export interface GraphBuilder {
  /** A value fed at every step (a batch of data). */
  input(name: string, shape: readonly number[], dtype?: DType): Tensor;
  /** A learned parameter. */
  param(name: string, shape: readonly number[], options?: ParamOptions): Tensor;
  /** A constant; a scalar or nested arrays, optionally reshaped. */
  const(value: NestedNumbers | ArrayLike<number>, shape?: readonly number[], dtype?: DType): Tensor;
  /** Wraps `f` so its gradient is `vjp` instead of the derivative of its ops. */
  customGrad(label: string, f: (...xs: Tensor[]) => Tensor, vjp: CustomVjp): (...xs: Tensor[]) => Tensor;
  /** Marks `t` as saved for the backward pass; with rematerialization, what lies between checkpoints is recomputed. */
  checkpoint(t: Tensor): Tensor;
  /**
   * Runs `build` with `name.` prefixed to the name of every param it creates
   * (scopes nest: `g.scope("block1", () => g.scope("attn", ...))` names
   * `block1.attn.q.W`). Returns what `build` returns.
   */
  scope<T>(name: string, build: () => T): T;
  /**
   * After each training step, the non-trainable `param` takes `value`,
   * computed in that step from the step's values (no gradient flows into
   * it); forward/predict and checkpoints see the param. Batch norm keeps its
   * moving statistics this way.
   */
  assign(param: Tensor, value: Tensor): void;
}

export interface BuildResult {
  readonly loss?: Tensor;
  readonly outputs?: Readonly<Record<string, Tensor>>;
}

const DTYPES: readonly DType[] = ["f32", "f64", "i32", "bool"];

/** The builders of the graphs being built, innermost last (a build may define another graph). */
const building: GraphBuilder[] = [];

/**
 * The builder of the graph being built, for layers that create nodes without
 * being handed a tensor or a builder (`nn.causalMask(seq)`). Throws, naming
 * `op`, outside a `graph(...)` build function.
 */
export function activeBuilder(op: string): GraphBuilder {
  const g = building.at(-1);
  if (!g) throw new GraphError(op, "must be called inside a graph(...) build function", callerLocation());
  return g;
}

function checkShape(op: string, name: string, shape: readonly number[]): number[] {
  if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new GraphError(op, `"${name}" has an invalid shape ${JSON.stringify(shape)}: sizes must be non-negative integers`, callerLocation());
  }
  const size = shape.reduce((a, b) => a * b, 1);
  if (size > MAX_ELEMENTS) {
    throw new GraphError(op, `"${name}" has shape ${shapeStr(shape)}: ${size.toExponential(2)} elements, more than the ${MAX_ELEMENTS} a bundle's arena can hold`, callerLocation());
  }
  return [...shape];
}

function flatten(v: NestedNumbers | ArrayLike<number>): { values: number[]; shape: number[] } {
  if (typeof v === "number") return { values: [v], shape: [] };
  const arr = Array.from(v as ArrayLike<NestedNumbers>);
  if (arr.length === 0 || typeof arr[0] === "number") return { values: arr as number[], shape: [arr.length] };
  const parts = arr.map((x) => flatten(x));
  const inner = parts[0]!.shape;
  if (parts.some((p) => shapeStr(p.shape) !== shapeStr(inner))) {
    throw new GraphError("const", "nested arrays are ragged", callerLocation());
  }
  return { values: parts.flatMap((p) => p.values), shape: [arr.length, ...inner] };
}

/**
 * Defines a model. `build` runs once, now; every op it calls is checked as it
 * is created, and errors name the op, the shapes and the line in `build`.
 */
export function graph(name: string, build: (g: GraphBuilder) => BuildResult, options: { seed?: number } = {}): Graph {
  const ctx = new Context(name, OPS, options.seed ?? 0);
  const inputs: InputSpec[] = [];
  const params: ParamSpec[] = [];
  const names = new Map<string, string>();
  const baseSeed = options.seed ?? 0;
  const scopes: string[] = [];
  const updates: Record<string, Tensor> = {};

  const claim = (op: string, n: string) => {
    if (typeof n !== "string" || n.length === 0) throw new GraphError(op, "a name must be a non-empty string", callerLocation());
    // checkpoints store optimizer state as "state/<param>/<slot>" beside the params
    if (n.startsWith("state/")) throw new GraphError(op, `the name "${n}" starts with "state/", which checkpoints reserve for optimizer state`, callerLocation());
    const prior = names.get(n);
    if (prior) throw new GraphError(op, `the name "${n}" is already used by ${prior}`, callerLocation());
    names.set(n, op === "input" ? "an input" : "a param");
  };
  const checkDtype = (op: string, n: string, dtype: DType) => {
    if (!DTYPES.includes(dtype)) throw new GraphError(op, `"${n}" has unknown dtype "${dtype}" (use ${DTYPES.join(", ")})`, callerLocation());
  };

  const g: GraphBuilder = {
    input(n, shape, dtype = "f32") {
      claim("input", n);
      checkDtype("input", n, dtype);
      const s = checkShape("input", n, shape);
      const node = ctx.apply("input", [], { name: n, shape: s, dtype });
      inputs.push({ name: n, shape: s, dtype, node });
      return node;
    },
    param(local, shape, opts = {}) {
      if (typeof local !== "string" || local.length === 0) throw new GraphError("param", "a name must be a non-empty string", callerLocation());
      const n = [...scopes, local].join(".");
      claim("param", n);
      const dtype = opts.dtype ?? "f32";
      checkDtype("param", n, dtype);
      if (!isFloat(dtype)) throw new GraphError("param", `"${n}" must be a float (f32 or f64), got ${dtype}`, callerLocation());
      const s = checkShape("param", n, shape);
      const init = resolveInit(opts.init, s, (hashString(n) ^ baseSeed) >>> 0);
      try {
        initValues(init, s); // validates explicit values now, at the user's line
      } catch (e) {
        throw new GraphError("param", `"${n}": ${(e as Error).message}`, callerLocation());
      }
      const node = ctx.apply("param", [], { name: n, shape: s, dtype });
      params.push({ name: n, shape: s, dtype, init, trainable: opts.trainable ?? true, node });
      return node;
    },
    const(value, shape, dtype = "f32") {
      const flat = flatten(value);
      const s = shape ? [...shape] : flat.shape;
      if (flat.values.length !== 1 && flat.values.length !== sizeOf(s)) {
        throw new GraphError("const", `${flat.values.length} values do not fill shape ${shapeStr(s)}`, callerLocation());
      }
      return ctx.apply("const", [], { value: flat.values, shape: s, dtype });
    },
    customGrad(label, f, vjp) {
      return (...xs: Tensor[]) => {
        const y = f(...xs);
        const fn = ctx.customVjps.push(vjp) - 1;
        return ctx.apply("customGrad", [y, ...xs], { fn, label });
      };
    },
    checkpoint(t) {
      return ctx.apply("checkpoint", [t], {});
    },
    assign(param, value) {
      const spec = param instanceof Tensor ? params.find((p) => p.node === param) : undefined;
      if (!spec) throw new GraphError("assign", "the target must be a param of this graph", callerLocation());
      if (spec.trainable) throw new GraphError("assign", `"${spec.name}" is trainable: only a param declared with { trainable: false } can be assigned`, callerLocation());
      if (!(value instanceof Tensor) || value.ctx !== ctx) throw new GraphError("assign", `the value for "${spec.name}" must be a tensor of this graph`, callerLocation());
      if (shapeStr(value.shape) !== shapeStr(spec.shape) || value.dtype !== spec.dtype) {
        throw new GraphError("assign", `"${spec.name}" is ${spec.dtype}${shapeStr(spec.shape)}, the value is ${value.dtype}${shapeStr(value.shape)}`, callerLocation());
      }
      if (updates[spec.name]) throw new GraphError("assign", `"${spec.name}" is already assigned`, callerLocation());
      updates[spec.name] = value.stopGradient();
    },
    scope(n, inner) {
      if (typeof n !== "string" || n.length === 0 || n.startsWith(".") || n.endsWith(".")) {
        throw new GraphError("scope", `a scope name must be a non-empty string that neither starts nor ends with ".", got ${JSON.stringify(n)}`, callerLocation());
      }
      if (typeof inner !== "function") throw new GraphError("scope", `scope "${n}" needs a function to run`, callerLocation());
      scopes.push(n);
      try {
        return inner();
      } finally {
        scopes.pop();
      }
    },
  };

  building.push(g);
  let result: BuildResult;
  try {
    result = build(g);
  } finally {
    building.pop();
  }
  if (!result || typeof result !== "object") {
    throw new GraphError("graph", `"${name}": build must return { loss, outputs }`);
  }
  const { loss, outputs = {} } = result;
  if (loss !== undefined) {
    if (!(loss instanceof Tensor)) throw new GraphError("graph", `"${name}": loss is not a tensor`);
    if (loss.rank !== 0) throw new GraphError("graph", `"${name}": the loss must be a scalar, got shape ${shapeStr(loss.shape)}`, loss.src);
    if (!isFloat(loss.dtype)) throw new GraphError("graph", `"${name}": the loss must be a float, got ${loss.dtype}`, loss.src);
  }
  for (const [k, v] of Object.entries(outputs)) {
    if (!(v instanceof Tensor)) throw new GraphError("graph", `"${name}": output "${k}" is not a tensor`);
  }
  return new Graph(name, ctx, inputs, params, loss, { ...outputs }, {}, updates);
}

/** A scalar or tensor, for functions that accept either. */
export type { TensorLike };
