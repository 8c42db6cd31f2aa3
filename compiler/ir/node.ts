// IR nodes: immutable, interned tensors. A Tensor is both a graph node and the
// handle a user's model calls methods on (add, matmul, sum, ...).
import type { DType, Shape, SourceLoc } from "./types.js";
import { GraphError, ShapeError, normAxes, shapeStr } from "./types.js";
import type { OpKind, OpParams } from "./kinds.js";
import { callerLocation } from "./source.js";

/** Why a backward node exists: the forward node it differentiates, and which input. */
export interface Origin {
  readonly of: Tensor;
  readonly input: number;
}

/** A scalar or a tensor; scalars become constants of the other operand's dtype. */
export type TensorLike = Tensor | number;

/** What the IR needs of an op's record: its shape and dtype rule (throws ShapeError with a plain message). */
export interface OpRule<K extends OpKind> {
  readonly infer: (inputs: readonly Tensor[], p: OpParams[K]) => { shape: Shape; dtype: DType };
}

/**
 * The shape rules of every op, handed to a graph's Context by whoever builds
 * the graph (the op table in ops/ is one): the IR checks nodes with them but
 * does not know the op records.
 */
export type OpRules = { readonly [K in OpKind]: OpRule<K> };

/**
 * The interning table of one graph: every node created for the graph, in
 * creation (hence topological) order. Same op + params + inputs = same node.
 */
export class Context {
  readonly nodes: Tensor[] = [];
  private readonly table = new Map<string, Tensor>();
  /** Set by autodiff while it builds the backward of one forward node. */
  origin: Origin | undefined;
  /** User VJPs of `customGrad` nodes, by the id in their params. */
  readonly customVjps: CustomVjp[] = [];

  constructor(
    readonly graphName: string,
    /** The ops' shape rules every node is checked with (ops/index.ts's OPS). */
    readonly ops: OpRules,
    /** The seed of the graph's random ops (see `graph(..., { seed })`). */
    readonly seed = 0,
  ) {}

  /** Creates (or finds) the node `op(inputs; params)`. `src` null = no source line (not the caller's). */
  apply<K extends OpKind>(op: K, inputs: readonly Tensor[], params: OpParams[K], src?: SourceLoc | null): Tensor {
    for (const t of inputs) {
      if (t.ctx !== this) {
        throw new GraphError(op, `an input belongs to another graph ("${t.ctx.graphName}", not "${this.graphName}")`, src ?? this.where());
      }
    }
    const key = `${op}|${stableJson(params)}|${inputs.map((t) => t.id).join(",")}`;
    const found = this.table.get(key);
    if (found) return found;
    const def = this.ops[op];
    const loc = src === null ? undefined : (src ?? this.where());
    let sig: { shape: Shape; dtype: DType };
    try {
      sig = def.infer(inputs, params as never);
    } catch (e) {
      if (e instanceof ShapeError) {
        const shapes = inputs.map((t) => `${t.dtype}${shapeStr(t.shape)}`).join(", ");
        throw new GraphError(op, `${e.message}; inputs: ${shapes || "none"}`, loc);
      }
      throw e;
    }
    // a bundle keeps every value in one typed-array arena: refuse here, at the user's line, not at load
    const size = sig.shape.reduce((a, b) => a * b, 1);
    if (size > MAX_ELEMENTS) {
      const shapes = inputs.map((t) => `${t.dtype}${shapeStr(t.shape)}`).join(", ");
      throw new GraphError(op, `its result ${sig.dtype}${shapeStr(sig.shape)} has ${size.toExponential(2)} elements, more than the ${MAX_ELEMENTS} a bundle's arena can hold; inputs: ${shapes || "none"}`, loc);
    }
    const node = new Tensor(this, this.nodes.length, op, inputs, params, sig.shape, sig.dtype, loc, this.origin);
    this.nodes.push(node);
    this.table.set(key, node);
    return node;
  }

  private where(): SourceLoc | undefined {
    return this.origin ? this.origin.of.src : callerLocation();
  }
}

/** The most elements one value may have: an arena is one typed array, indexed by 32-bit offsets. */
export const MAX_ELEMENTS = 2 ** 31 - 1;

/** A user-supplied VJP: cotangent of the output → cotangents of the inputs. */
export type CustomVjp = (ct: Tensor, inputs: readonly Tensor[], output: Tensor) => readonly (Tensor | null)[];

/** JSON with sorted keys, so equal params give equal interning keys. */
export function stableJson(v: unknown): string {
  // JSON writes NaN and ±Infinity as null and -0 as 0: keep them apart (1/-0 is not 1/0)
  if (typeof v === "number" && (!Number.isFinite(v) || Object.is(v, -0))) return Object.is(v, -0) ? "-0" : String(v);
  if (v === null || typeof v !== "object") return JSON.stringify(v) ?? "null";
  if (Array.isArray(v)) return `[${v.map(stableJson).join(",")}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .sort()
    .filter((k) => o[k] !== undefined)
    .map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`)
    .join(",")}}`;
}

/** A node of the graph and the user's handle on it. Immutable. */
export class Tensor {
  constructor(
    readonly ctx: Context,
    readonly id: number,
    readonly op: OpKind,
    readonly inputs: readonly Tensor[],
    readonly params: OpParams[OpKind],
    readonly shape: Shape,
    readonly dtype: DType,
    readonly src: SourceLoc | undefined,
    readonly origin: Origin | undefined,
  ) {
    Object.freeze(this);
  }

  get rank(): number {
    return this.shape.length;
  }

  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  /** Typed access to this node's params when its op is known. */
  p<K extends OpKind>(_op: K): OpParams[K] {
    return this.params as OpParams[K];
  }

  toString(): string {
    return `%${this.id}:${this.dtype}${shapeStr(this.shape)} = ${this.op}`;
  }

  // ---- elementwise ----
  add(b: TensorLike): Tensor { return this.bin("add", b); }
  sub(b: TensorLike): Tensor { return this.bin("sub", b); }
  mul(b: TensorLike): Tensor { return this.bin("mul", b); }
  div(b: TensorLike): Tensor { return this.bin("div", b); }
  maximum(b: TensorLike): Tensor { return this.bin("maximum", b); }
  minimum(b: TensorLike): Tensor { return this.bin("minimum", b); }
  greater(b: TensorLike): Tensor { return this.bin("greater", b); }
  greaterEqual(b: TensorLike): Tensor { return this.bin("greaterEqual", b); }
  less(b: TensorLike): Tensor { return this.bin("less", b); }
  lessEqual(b: TensorLike): Tensor { return this.bin("lessEqual", b); }
  equal(b: TensorLike): Tensor { return this.bin("equal", b); }
  neg(): Tensor { return this.un("neg"); }
  exp(): Tensor { return this.un("exp"); }
  log(): Tensor { return this.un("log"); }
  sqrt(): Tensor { return this.un("sqrt"); }
  rsqrt(): Tensor { return this.un("rsqrt"); }
  abs(): Tensor { return this.un("abs"); }
  sign(): Tensor { return this.un("sign"); }
  sin(): Tensor { return this.un("sin"); }
  cos(): Tensor { return this.un("cos"); }
  tanh(): Tensor { return this.un("tanh"); }
  sigmoid(): Tensor { return this.un("sigmoid"); }
  relu(): Tensor { return this.un("relu"); }
  softplus(): Tensor { return this.un("softplus"); }
  /** x * x. */
  square(): Tensor { return this.mul(this); }
  /** x ** exponent for a constant exponent. */
  pow(exponent: number): Tensor { return this.ctx.apply("pow", [this], { exponent }); }
  leakyRelu(alpha = 0.2): Tensor { return this.ctx.apply("leakyRelu", [this], { alpha }); }
  /** GELU, tanh approximation: 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))). */
  gelu(): Tensor {
    const inner = this.add(this.pow(3).mul(0.044715)).mul(Math.sqrt(2 / Math.PI));
    return this.mul(0.5).mul(inner.tanh().add(1));
  }
  cast(dtype: DType): Tensor { return dtype === this.dtype ? this : this.ctx.apply("cast", [this], { dtype }); }
  /** Identity forward; no gradient flows through it. */
  stopGradient(): Tensor { return this.ctx.apply("stopGradient", [this], {}); }
  /** `cond ? a : b` elementwise, with broadcasting; `this` is the condition. */
  where(a: TensorLike, b: TensorLike): Tensor {
    const ta = this.lift(a, typeof b === "number" ? undefined : b.dtype);
    const tb = this.lift(b, ta.dtype);
    return this.ctx.apply("where", [this, ta, tb], {});
  }

  // ---- reductions ----
  sum(axes?: number | readonly number[], keepDims = false): Tensor { return this.red("sum", axes, keepDims); }
  max(axes?: number | readonly number[], keepDims = false): Tensor { return this.red("max", axes, keepDims); }
  min(axes?: number | readonly number[], keepDims = false): Tensor { return this.red("min", axes, keepDims); }
  mean(axes?: number | readonly number[], keepDims = false): Tensor {
    const s = this.sum(axes, keepDims);
    const n = this.size / Math.max(1, s.size);
    return s.div(n);
  }
  argmax(axis = -1, keepDims = false): Tensor { return this.ctx.apply("argmax", [this], { axis, keepDims }); }

  // ---- movement ----
  reshape(shape: readonly number[]): Tensor {
    const s = inferReshape(this.shape, shape);
    return this.ctx.apply("reshape", [this], { shape: s });
  }
  transpose(perm?: readonly number[]): Tensor {
    const p = perm ?? this.shape.map((_, i) => this.rank - 1 - i);
    return this.ctx.apply("transpose", [this], { perm: [...p] });
  }
  broadcastTo(shape: readonly number[]): Tensor { return this.ctx.apply("broadcastTo", [this], { shape: [...shape] }); }
  expandDims(axis: number): Tensor {
    const r = this.rank + 1;
    const a = axis < 0 ? axis + r : axis;
    if (!Number.isInteger(a) || a < 0 || a >= r) {
      throw new GraphError("expandDims", `axis ${axis} is out of range for rank ${this.rank}`, callerLocation());
    }
    const s = [...this.shape];
    s.splice(a, 0, 1);
    return this.reshape(s);
  }
  squeeze(axes?: number | readonly number[]): Tensor {
    const list = axes === undefined ? this.shape.flatMap((d, i) => (d === 1 ? [i] : [])) : typeof axes === "number" ? [axes] : axes;
    const norm = list.map((a) => (a < 0 ? a + this.rank : a));
    for (const a of norm) {
      if (this.shape[a] !== 1) {
        throw new GraphError("squeeze", `axis ${a} has size ${this.shape[a] ?? "out of range"}, not 1; input: ${shapeStr(this.shape)}`, callerLocation());
      }
    }
    return this.reshape(this.shape.filter((_, i) => !norm.includes(i)));
  }
  /** `size` -1 means "to the end" along that axis. */
  slice(begin: readonly number[], size?: readonly number[]): Tensor {
    return this.ctx.apply("slice", [this], { begin: [...begin], size: size ? [...size] : begin.map(() => -1) });
  }
  pad(paddings: readonly (readonly [number, number])[], value = 0): Tensor {
    return this.ctx.apply("pad", [this], { paddings: paddings.map(([a, b]) => [a, b] as [number, number]), value });
  }
  /** Rows of this table (axis 0) picked by integer indices. */
  gather(indices: Tensor): Tensor { return this.ctx.apply("gather", [this, indices], {}); }
  /** Integer labels → one-hot f32 vectors along a new last axis. */
  oneHot(depth: number): Tensor { return this.ctx.apply("oneHot", [this], { depth }); }

  // ---- contraction ----
  /** Matrix product over the last two axes; leading axes broadcast. */
  matmul(b: Tensor): Tensor { return this.ctx.apply("matmul", [this, b], {}); }
  /** NHWC convolution with an [fh, fw, cin, cout] filter. */
  conv2d(filter: Tensor, strides: number | readonly [number, number] = 1, padding: "same" | "valid" = "valid"): Tensor {
    return this.ctx.apply("conv2d", [this, filter], { strides: pair(strides), padding });
  }
  maxPool2d(size: number | readonly [number, number], strides?: number | readonly [number, number], padding: "same" | "valid" = "valid"): Tensor {
    return this.ctx.apply("maxPool2d", [this], { size: pair(size), strides: pair(strides ?? size), padding });
  }
  avgPool2d(size: number | readonly [number, number], strides?: number | readonly [number, number], padding: "same" | "valid" = "valid"): Tensor {
    return this.ctx.apply("avgPool2d", [this], { size: pair(size), strides: pair(strides ?? size), padding });
  }

  // ---- helpers ----
  /** Turns a number into a scalar constant of `dtype` (default: this tensor's float dtype). */
  lift(v: TensorLike, dtype?: DType): Tensor {
    if (typeof v !== "number") return v;
    const dt = dtype ?? (this.dtype === "bool" || this.dtype === "i32" ? "f32" : this.dtype);
    return this.ctx.apply("const", [], { value: [v], shape: [], dtype: dt });
  }
  private bin(op: "add" | "sub" | "mul" | "div" | "maximum" | "minimum" | "greater" | "greaterEqual" | "less" | "lessEqual" | "equal", b: TensorLike): Tensor {
    return this.ctx.apply(op, [this, this.lift(b, this.dtype)], {});
  }
  private un(op: "neg" | "exp" | "log" | "sqrt" | "rsqrt" | "abs" | "sign" | "sin" | "cos" | "tanh" | "sigmoid" | "relu" | "softplus"): Tensor {
    return this.ctx.apply(op, [this], {});
  }
  private red(op: "sum" | "max" | "min", axes: number | readonly number[] | undefined, keepDims: boolean): Tensor {
    // normalized (sorted, non-negative) so that equal reductions intern to one node
    let list: number[] | null = null;
    if (axes !== undefined) {
      try {
        list = normAxes(axes, this.rank);
      } catch (e) {
        throw new GraphError(op, `${(e as Error).message}; input: ${this.dtype}${shapeStr(this.shape)}`, callerLocation());
      }
    }
    return this.ctx.apply(op, [this], { axes: list, keepDims });
  }
}

function pair(v: number | readonly [number, number]): [number, number] {
  return typeof v === "number" ? [v, v] : [v[0], v[1]];
}

/** Resolves one -1 in a reshape target; checks the element count. */
function inferReshape(from: Shape, to: readonly number[]): number[] {
  const total = from.reduce((a, b) => a * b, 1);
  const free = to.filter((d) => d === -1).length;
  if (free > 1) throw new GraphError("reshape", `at most one -1 is allowed in ${shapeStr(to)}`, callerLocation());
  const known = to.reduce((a, d) => (d === -1 ? a : a * d), 1);
  const out = to.map((d) => (d === -1 ? (known === 0 ? 0 : total / known) : d));
  const n = out.reduce((a, b) => a * b, 1);
  if (n !== total || out.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new GraphError("reshape", `cannot reshape ${shapeStr(from)} (${total} elements) to ${shapeStr(to)}`, callerLocation());
  }
  return out;
}
