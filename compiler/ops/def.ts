// The shape of one op's record: shape rule, reference evaluation, VJP and
// code template live together (one op, one record).
import type { DType, Shape } from "../ir/types.js";
import type { Tensor } from "../ir/node.js";
import type { OpKind, OpParams } from "../ir/kinds.js";
import type { Expr, Stmt } from "../kernel/kir.js";
import type { Coord } from "../kernel/coords.js";

/**
 * A dense array for the reference interpreter. Values are kept as float64;
 * `dtype` says how they are rounded (f32 → Math.fround, i32 → integer, bool → 0/1).
 */
export interface NDArray {
  readonly shape: Shape;
  readonly dtype: DType;
  readonly data: Float64Array;
}

/**
 * What an op may read besides its inputs while it is evaluated: whether this
 * is the training step, and the step's number (1 for the first update).
 */
export interface EvalEnv {
  readonly training: boolean;
  readonly step: number;
  /** Mixed precision's loss scale (default 1). */
  readonly lossScale?: number;
  /** The run's seed, which random ops mix with the step's number (default 0). */
  readonly runSeed?: number;
}

/** A node whose op is known: typed params. */
export type NodeOf<K extends OpKind> = Tensor & { readonly op: K; readonly params: OpParams[K] };

export interface OpDef<K extends OpKind> {
  /** Shape and dtype of the result; throws ShapeError with a plain message. */
  readonly infer: (inputs: readonly Tensor[], p: OpParams[K]) => { shape: Shape; dtype: DType };
  /**
   * The reference semantics, in float64. Must not round: the interpreter rounds to `node.dtype`.
   * `env` is given by the interpreter; constant folding gives none (an op that needs it throws, and is not folded).
   */
  readonly eval: (node: NodeOf<K>, inputs: readonly NDArray[], env?: EvalEnv) => Float64Array;
  /**
   * Cotangents of the inputs given the output's cotangent `ct`, built from
   * ordinary ops (so gradients are differentiable again). `null` = no gradient.
   * Absent = the op is not differentiable (integer or boolean result).
   * A cotangent may have the input's broadcast shape: autodiff reduces it.
   */
  readonly vjp?: (ct: Tensor, node: NodeOf<K>) => readonly (Tensor | null)[];
  /** Elementwise ops: the value at one index from the inputs' values there. */
  readonly expr?: (args: readonly Expr[], node: NodeOf<K>) => Expr;
  /**
   * Other ops: a loop nest that reads `in0`, `in1`, ... and writes every
   * element of `out` (flat, row-major).
   */
  readonly lower?: (node: NodeOf<K>) => readonly Stmt[];
  /**
   * How fusion and lowering treat the op, beyond `expr` (elementwise) and
   * `lower` (a loop nest of its own): `alias`: its result is its first
   * input's buffer (no kernel, no copy); `index`: it re-indexes its input,
   * computed inline at other coordinates; `reduce`: a reduction that reduce
   * kernels fuse; `matmul`: a matrix product that matmul kernels fuse.
   */
  readonly fusion?: "alias" | "index" | "reduce" | "matmul";
  /**
   * Arithmetic cost of one element, in adds (an exp costs 8), which fusion
   * weighs to store a value or recompute it inline. Default: 1 for an
   * elementwise op, 0 for re-indexing.
   */
  readonly cost?: number;
  /**
   * Arithmetic operations to compute every element of the result once (the
   * compile report's FLOPs). Default: one per element of the result.
   */
  readonly flops?: (node: NodeOf<K>) => number;
  /**
   * For an op a kernel computes inline at other coordinates (`fusion`
   * "index" or "alias"): the coordinates of the input elements its element
   * at `out` reads (over `n` iteration axes), one list per input; undefined
   * when it needs its input's flat layout (which must then be in memory).
   * Default for an alias: the same coordinates.
   */
  readonly indexMap?: (node: NodeOf<K>, out: readonly Coord[], n: number) => Coord[][] | undefined;
  /** Its `expr` of i32 operands is an i32 in range already (a selection or a cast), so no wrap to i32 follows it. */
  readonly intInRange?: boolean;
  /** It only moves values (each element of the result is one of the input's): a uniform input gives the same uniform result. */
  readonly movesValues?: boolean;
  /** Its operands broadcast elementwise: one that is a uniform constant broadcast along may be written as a scalar. */
  readonly scalarOperands?: boolean;
  /**
   * How `gradc inspect --math` reads the op besides its `symbol`:
   * "through": it moves or retags a value, which stands for it;
   * "layer": its operands are a layer's cotangents, each named on a line of its own.
   */
  readonly math?: "through" | "layer";
  /** How `gradc inspect --math` writes the op, where that is not its name: σ for sigmoid, > for greater. */
  readonly symbol?: string;
  /** Its `lower` also reads the step's number and the run's seed, i32 scalars, from the buffers `step` and `runSeed`. */
  readonly readsStep?: boolean;
  /** Its `expr` reads mixed precision's loss scale, an f32 scalar, from the buffer `lossScale` (bound in every kernel that inlines it). */
  readonly readsLossScale?: boolean;
}

/** The table of all ops; the mapped type makes tsc reject a missing record. */
export type OpTable = { readonly [K in OpKind]: OpDef<K> };
