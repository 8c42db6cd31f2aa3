// Elementwise primitives: each record has its shape rule, its value, its
// derivative and its code template side by side.
import type { OpDef, NodeOf } from "./def.js";
import type { OpKind } from "../ir/kinds.js";
import type { Tensor } from "../ir/node.js";
import { isFloat } from "../ir/types.js";
import { ShapeError } from "../ir/types.js";
import type { Expr } from "../kernel/kir.js";
import { bin, sel, un } from "../kernel/kir.js";
import { broadcastAll, broadcastIndex, requireFloat, requireNumeric, sameDtype } from "./broadcast.js";

type Vjp<K extends OpKind> = (ct: Tensor, node: NodeOf<K>) => readonly (Tensor | null)[];

/** A float → float function applied to every element. */
function unary<K extends OpKind>(
  f: (x: number, node: NodeOf<K>) => number,
  expr: (x: Expr, node: NodeOf<K>) => Expr,
  vjp: Vjp<K> | undefined,
  check: (t: Tensor) => void = requireFloat,
): OpDef<K> {
  return {
    infer: ([x]) => {
      check(x!);
      return { shape: x!.shape, dtype: x!.dtype };
    },
    eval: (node, [x]) => x!.data.map((v) => f(v, node)),
    ...(vjp ? { vjp } : {}),
    expr: ([x], node) => expr(x!, node),
  };
}

/** A function of two broadcast operands of one dtype. */
function binary<K extends OpKind>(
  f: (a: number, b: number, isInt: boolean) => number,
  expr: (a: Expr, b: Expr, node: NodeOf<K>) => Expr,
  vjp: Vjp<K> | undefined,
  compare = false,
): OpDef<K> {
  return {
    infer: (inputs) => {
      const dtype = sameDtype(inputs);
      if (!compare) requireNumeric(inputs[0]!);
      return { shape: broadcastAll(inputs), dtype: compare ? "bool" : dtype };
    },
    eval: (node, [a, b]) => {
      const ia = broadcastIndex(a!.shape, node.shape);
      const ib = broadcastIndex(b!.shape, node.shape);
      const isInt = !isFloat(a!.dtype);
      const out = new Float64Array(ia.length);
      for (let i = 0; i < out.length; i++) out[i] = f(a!.data[ia[i]!]!, b!.data[ib[i]!]!, isInt);
      return out;
    },
    ...(vjp ? { vjp } : {}),
    expr: ([a, b], node) => expr(a!, b!, node),
    scalarOperands: true,
  };
}

const b = (v: boolean): number => (v ? 1 : 0);
const sigmoid = (x: number): number => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
// softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^-|x|), stable for large |x|
const softplus = (x: number): number => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
const zerosLike = (t: Tensor): Tensor => t.lift(0, t.dtype);

export const ELEMENTWISE = {
  neg: unary<"neg">((x) => -x, (x) => un("neg", x), (ct) => [ct.neg()], requireNumeric),
  // d e^x = e^x: reuse the output
  exp: { ...unary<"exp">(Math.exp, (x) => un("exp", x), (ct, n) => [ct.mul(n)]), cost: 8 },
  log: { ...unary<"log">(Math.log, (x) => un("log", x), (ct, n) => [ct.div(n.inputs[0]!)]), cost: 8 },
  // d √x = 1 / (2√x)
  sqrt: { ...unary<"sqrt">(Math.sqrt, (x) => un("sqrt", x), (ct, n) => [ct.div(n.mul(2))]), cost: 4, symbol: "√" },
  // d x^-½ = -½ x^-3/2 = -½ rsqrt(x) / x
  rsqrt: { ...unary<"rsqrt">((x) => 1 / Math.sqrt(x), (x) => un("rsqrt", x), (ct, n) => [ct.mul(n).div(n.inputs[0]!).mul(-0.5)]), cost: 5 },
  abs: unary<"abs">(Math.abs, (x) => un("abs", x), (ct, n) => [ct.mul(n.inputs[0]!.sign())], requireNumeric),
  // sign is flat almost everywhere: no gradient
  sign: { ...unary<"sign">(Math.sign, (x) => un("sign", x), () => [null], requireNumeric), intInRange: true },
  sin: { ...unary<"sin">(Math.sin, (x) => un("sin", x), (ct, n) => [ct.mul(n.inputs[0]!.cos())]), cost: 8 },
  cos: { ...unary<"cos">(Math.cos, (x) => un("cos", x), (ct, n) => [ct.mul(n.inputs[0]!.sin()).neg()]), cost: 8 },
  // d tanh(x) = 1 - tanh(x)^2
  tanh: { ...unary<"tanh">(Math.tanh, (x) => un("tanh", x), (ct, n) => [ct.mul(n.square().neg().add(1))]), cost: 8 },
  // d σ(x) = σ(x)(1 - σ(x)): from the output
  sigmoid: { ...unary<"sigmoid">(sigmoid, (x) => un("sigmoid", x), (ct, n) => [ct.mul(n.mul(n.neg().add(1)))]), cost: 8, symbol: "σ" },
  // d relu(x) = [x > 0]
  relu: unary<"relu">((x) => Math.max(x, 0), (x) => bin("max", x, 0), (ct, n) => [n.inputs[0]!.greater(0).where(ct, 0)]),
  // d softplus(x) = σ(x)
  softplus: {
    ...unary<"softplus">(
      softplus,
      (x) => bin("+", bin("max", x, 0), un("log1p", un("exp", un("neg", un("abs", x))))),
      (ct, n) => [ct.mul(n.inputs[0]!.sigmoid())],
    ),
    cost: 12,
  },
  // d x^p = p x^(p-1)
  pow: {
    ...unary<"pow">(
      (x, n) => Math.pow(x, n.params.exponent),
      // small integer powers as products: Math.pow costs ~10× a multiply (the cube is GELU's)
      (x, n) => (n.params.exponent === 2 ? bin("*", x, x) : n.params.exponent === 3 ? bin("*", bin("*", x, x), x) : bin("pow", x, n.params.exponent)),
      (ct, n) => {
        const p = n.params.exponent;
        const x = n.inputs[0]!;
        if (p === 0) return [null];
        if (p === 1) return [ct];
        return [ct.mul(p === 2 ? x : x.pow(p - 1)).mul(p)];
      },
    ),
    cost: 8,
  },
  leakyRelu: unary<"leakyRelu">(
    (x, n) => (x > 0 ? x : n.params.alpha * x),
    (x, n) => sel(bin(">", x, 0), x, bin("*", x, n.params.alpha)),
    (ct, n) => [n.inputs[0]!.greater(0).where(ct, ct.mul(n.params.alpha))],
  ),
  cast: {
    math: "through",
    intInRange: true,
    infer: ([x], p) => ({ shape: x!.shape, dtype: p.dtype }),
    eval: (_n, [x]) => Float64Array.from(x!.data),
    // float → float passes the gradient back in the input's dtype; to or from integers: none
    vjp: (ct, n) => [isFloat(n.inputs[0]!.dtype) && isFloat(n.dtype) ? ct.cast(n.inputs[0]!.dtype) : null],
    expr: ([x], n) => (n.params.dtype === "i32" ? un("toInt", x!) : n.params.dtype === "bool" ? sel(bin("!=", x!, 0), 1, 0) : x!),
  } satisfies OpDef<"cast">,
  stopGradient: {
    fusion: "alias",
    intInRange: true,
    movesValues: true,
    math: "through",
    flops: () => 0,
    infer: ([x]) => ({ shape: x!.shape, dtype: x!.dtype }),
    eval: (_n, [x]) => Float64Array.from(x!.data),
    vjp: () => [null],
    expr: ([x]) => x!,
  } satisfies OpDef<"stopGradient">,

  add: binary<"add">((x, y) => x + y, (x, y) => bin("+", x, y), (ct) => [ct, ct]),
  sub: binary<"sub">((x, y) => x - y, (x, y) => bin("-", x, y), (ct) => [ct, ct.neg()]),
  mul: binary<"mul">((x, y) => x * y, (x, y) => bin("*", x, y), (ct, n) => [ct.mul(n.inputs[1]!), ct.mul(n.inputs[0]!)]),
  // d(a/b) = da/b - a db/b^2; integer division floors
  div: {
    ...binary<"div">(
      (x, y, isInt) => (isInt ? Math.floor(x / y) : x / y),
      (x, y, n) => (isFloat(n.dtype) ? bin("/", x, y) : un("floor", bin("/", x, y))),
      (ct, n) => {
        const [x, y] = n.inputs as [Tensor, Tensor];
        return [ct.div(y), ct.mul(x).div(y.square()).neg()];
      },
    ),
    cost: 4,
  },
  // ties send the gradient to the first operand
  maximum: {
    ...binary<"maximum">((x, y) => Math.max(x, y), (x, y) => bin("max", x, y), (ct, n) => {
      const first = n.inputs[0]!.greaterEqual(n.inputs[1]!);
      return [first.where(ct, 0), first.where(0, ct)];
    }),
    symbol: "max",
    intInRange: true,
  },
  minimum: {
    ...binary<"minimum">((x, y) => Math.min(x, y), (x, y) => bin("min", x, y), (ct, n) => {
      const first = n.inputs[0]!.lessEqual(n.inputs[1]!);
      return [first.where(ct, 0), first.where(0, ct)];
    }),
    symbol: "min",
    intInRange: true,
  },
  greater: { ...binary<"greater">((x, y) => b(x > y), (x, y) => bin(">", x, y), undefined, true), symbol: ">" },
  greaterEqual: { ...binary<"greaterEqual">((x, y) => b(x >= y), (x, y) => bin(">=", x, y), undefined, true), symbol: "≥" },
  less: { ...binary<"less">((x, y) => b(x < y), (x, y) => bin("<", x, y), undefined, true), symbol: "<" },
  lessEqual: { ...binary<"lessEqual">((x, y) => b(x <= y), (x, y) => bin("<=", x, y), undefined, true), symbol: "≤" },
  equal: { ...binary<"equal">((x, y) => b(x === y), (x, y) => bin("==", x, y), undefined, true), symbol: "=" },

  where: {
    scalarOperands: true,
    intInRange: true,
    infer: ([c, x, y]) => {
      if (c!.dtype !== "bool") throw new ShapeError(`the condition must be bool, got ${c!.dtype}`);
      const dtype = sameDtype([x!, y!]);
      return { shape: broadcastAll([c!, x!, y!]), dtype };
    },
    eval: (node, [c, x, y]) => {
      const [ic, ix, iy] = [c!, x!, y!].map((a) => broadcastIndex(a.shape, node.shape)) as [Int32Array, Int32Array, Int32Array];
      const out = new Float64Array(ic.length);
      for (let i = 0; i < out.length; i++) out[i] = c!.data[ic[i]!] ? x!.data[ix[i]!]! : y!.data[iy[i]!]!;
      return out;
    },
    vjp: (ct, n) => {
      const c = n.inputs[0]!;
      return [null, c.where(ct, zerosLike(ct)), c.where(zerosLike(ct), ct)];
    },
    expr: ([c, x, y]) => sel(c!, x!, y!),
  } satisfies OpDef<"where">,
} as const;

/** Used by tests: the ops whose records carry an `expr` template. */
export const ELEMENTWISE_OPS = Object.keys(ELEMENTWISE) as (keyof typeof ELEMENTWISE)[];

