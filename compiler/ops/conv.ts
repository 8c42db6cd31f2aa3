// Convolution and pooling over NHWC images, and their backward primitives.
import type { OpDef } from "./def.js";
import type { Tensor } from "../ir/node.js";
import type { Shape } from "../ir/types.js";
import { ShapeError, isFloat, shapeStr, shapesEqual, sizeOf, stridesOf } from "../ir/types.js";
import type { Pair, Padding } from "../ir/kinds.js";
import type { Expr, Stmt } from "../kernel/kir.js";
import { addE, affine, bin, if_, let_, load, mulE, num, parallel, reduce, ref, scatterAdd, set, store } from "../kernel/kir.js";

/** One spatial axis of a window op: its output size and the padding before the first input cell. */
export interface WindowAxis {
  readonly out: number;
  readonly padBefore: number;
}

/**
 * TensorFlow's sizes. "valid": ⌊(n − k)/s⌋ + 1 windows, no padding.
 * "same": ⌈n/s⌉ windows; total padding max((out − 1)s + k − n, 0), of which
 * ⌊total/2⌋ goes before (top/left) and the rest after.
 */
export function windowAxis(n: number, k: number, s: number, padding: Padding, axis: string): WindowAxis {
  if (padding === "valid") {
    if (n < k) throw new ShapeError(`the window (${k}) is larger than the input (${n}) along ${axis} with "valid" padding`);
    return { out: Math.floor((n - k) / s) + 1, padBefore: 0 };
  }
  const out = Math.ceil(n / s);
  const total = Math.max((out - 1) * s + k - n, 0);
  return { out, padBefore: Math.floor(total / 2) };
}

/** Everything a 2-D window op needs: image, window, strides, output and padding sizes. */
interface Geom {
  readonly n: number; readonly h: number; readonly w: number; readonly cin: number;
  readonly kh: number; readonly kw: number; readonly cout: number;
  readonly sh: number; readonly sw: number;
  readonly ho: number; readonly wo: number;
  /** Padding before the first row / column. */
  readonly pt: number; readonly pl: number;
}

const positive = (v: unknown): boolean => Number.isInteger(v) && (v as number) > 0;

function geometry(x: Shape, kh: number, kw: number, cout: number, strides: Pair, padding: Padding): Geom {
  if (!Array.isArray(strides) || strides.length !== 2 || !strides.every(positive)) {
    throw new ShapeError(`strides must be two positive integers, got ${JSON.stringify(strides)}`);
  }
  if (padding !== "same" && padding !== "valid") throw new ShapeError(`padding must be "same" or "valid", got ${JSON.stringify(padding)}`);
  if (!positive(kh) || !positive(kw)) throw new ShapeError(`the window must be at least 1x1, got ${kh}x${kw}`);
  const [n, h, w, cin] = x as [number, number, number, number];
  const [sh, sw] = strides;
  const row = windowAxis(h, kh, sh, padding, "the height");
  const col = windowAxis(w, kw, sw, padding, "the width");
  return { n, h, w, cin, kh, kw, cout, sh, sw, ho: row.out, wo: col.out, pt: row.padBefore, pl: col.padBefore };
}

function requireImage(shape: Shape, what: string): void {
  if (shape.length !== 4 || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new ShapeError(`${what} must be an NHWC image of rank 4, got ${shapeStr(shape)}`);
  }
}

/** Geometry of a convolution of x by a [fh, fw, cin, cout] filter, checking ranks and channels. */
function convGeom(x: Shape, f: Shape, strides: Pair, padding: Padding): Geom {
  requireImage(x, "the input");
  if (f.length !== 4) throw new ShapeError(`the filter must be [fh, fw, cin, cout], got ${shapeStr(f)}`);
  if (f[2] !== x[3]) {
    throw new ShapeError(`the filter ${shapeStr(f)} expects ${f[2]} input channels but the input ${shapeStr(x)} has ${x[3]}`);
  }
  return geometry(x, f[0]!, f[1]!, f[3]!, strides, padding);
}

/** Geometry of a pooling window over x (channels unchanged). */
function poolGeom(x: Shape, size: Pair, strides: Pair, padding: Padding): Geom {
  requireImage(x, "the input");
  if (!Array.isArray(size) || size.length !== 2) throw new ShapeError(`the window size must be [height, width], got ${JSON.stringify(size)}`);
  return geometry(x, size[0], size[1], x[3]!, strides, padding);
}

const outShape = (g: Geom): number[] => [g.n, g.ho, g.wo, g.cout];

/** Both operands of one float dtype. */
function floatOperands(a: Tensor, b: Tensor): Tensor["dtype"] {
  if (a.dtype !== b.dtype || !isFloat(a.dtype)) throw new ShapeError(`needs float operands of one dtype, got ${a.dtype} and ${b.dtype}`);
  return a.dtype;
}

/** The cotangent (or gradient) `dy` must have the op's output shape. */
function requireOutShape(dy: Tensor, g: Geom): void {
  if (!shapesEqual(dy.shape, outShape(g))) {
    throw new ShapeError(`the output gradient is ${shapeStr(dy.shape)} but the forward output is ${shapeStr(outShape(g))}`);
  }
}

// ---- reference evaluation: windows and the taps of each that fall inside the image ----

/** Calls `visit(ky, kx, iy, ix)` for each tap of window (oy, ox) inside the image, in row-major order. */
function forTaps(g: Geom, oy: number, ox: number, visit: (ky: number, kx: number, iy: number, ix: number) => void): void {
  for (let ky = 0; ky < g.kh; ky++) {
    const iy = oy * g.sh + ky - g.pt;
    if (iy < 0 || iy >= g.h) continue;
    for (let kx = 0; kx < g.kw; kx++) {
      const ix = ox * g.sw + kx - g.pl;
      if (ix >= 0 && ix < g.w) visit(ky, kx, iy, ix);
    }
  }
}

/** Calls `visit(o, oy, ox, n)` for every window; `o` is its first element in the output. */
function forWindows(g: Geom, visit: (o: number, oy: number, ox: number, n: number) => void): void {
  for (let n = 0; n < g.n; n++) {
    for (let oy = 0; oy < g.ho; oy++) {
      for (let ox = 0; ox < g.wo; ox++) visit(((n * g.ho + oy) * g.wo + ox) * g.cout, oy, ox, n);
    }
  }
}

/** `xi` = the first element of pixel (n, iy, ix) of the input; `fi` = the first of tap (ky, kx) of the filter. */
const pixel = (g: Geom, n: number, iy: number, ix: number): number => ((n * g.h + iy) * g.w + ix) * g.cin;
const tap = (g: Geom, ky: number, kx: number): number => (ky * g.kw + kx) * g.cin * g.cout;

/** The three bilinear maps of a convolution, by which of x, filter, y they produce. */
function convEval(g: Geom, want: "y" | "x" | "f", a: Float64Array, b: Float64Array): Float64Array {
  const size = want === "y" ? g.n * g.ho * g.wo * g.cout : want === "x" ? g.n * g.h * g.w * g.cin : g.kh * g.kw * g.cin * g.cout;
  const out = new Float64Array(size);
  forWindows(g, (o, oy, ox, n) => {
    forTaps(g, oy, ox, (ky, kx, iy, ix) => {
      const xi = pixel(g, n, iy, ix);
      const fi = tap(g, ky, kx);
      for (let ci = 0; ci < g.cin; ci++) {
        for (let co = 0; co < g.cout; co++) {
          const k = fi + ci * g.cout + co;
          // y[o] = Σ x[xi] f[k]; dx[xi] = Σ dy[o] f[k]; df[k] = Σ x[xi] dy[o]
          if (want === "y") out[o + co]! += a[xi + ci]! * b[k]!;
          else if (want === "x") out[xi + ci]! += a[o + co]! * b[k]!;
          else out[k]! += a[xi + ci]! * b[o + co]!;
        }
      }
    });
  });
  return out;
}

// ---- lowering: loop nests in kernel IR ----

/** Nested parallel loops over (name, extent) pairs, outermost first: one iteration per element written. */
function nest(loops: readonly (readonly [string, number])[], body: readonly Stmt[]): Stmt[] {
  let stmts = body;
  for (let i = loops.length - 1; i >= 0; i--) stmts = [parallel(loops[i]![0], loops[i]![1], stmts)];
  return [...stmts];
}

const all = (conds: readonly Expr[]): Expr => conds.reduce((a, b) => bin("&&", a, b));

/** `let i = o·s + k − pad`, then `body` where 0 ≤ i < size; bounds that always hold are left out. */
function inImage(i: string, o: string, k: string, s: number, pad: number, size: number, last: number, body: readonly Stmt[]): Stmt[] {
  const conds: Expr[] = [];
  if (pad > 0) conds.push(bin(">=", ref(i), 0));
  // the largest index reached is last·s + (window − 1) − pad; `last` folds in the window
  if (last - pad >= size) conds.push(bin("<", ref(i), size));
  const e = addE(addE(mulE(ref(o), s), ref(k)), -pad);
  return [let_(i, e), ...(conds.length ? [if_(all(conds), body)] : body)];
}

/** Loops `ky`, `kx` over the taps of window (`oy`, `ox`) that land in the image, binding `iy`, `ix`. */
function tapLoops(g: Geom, body: readonly Stmt[]): Stmt[] {
  const lastY = (g.ho - 1) * g.sh + g.kh - 1;
  const lastX = (g.wo - 1) * g.sw + g.kw - 1;
  const inner = reduce("kx", g.kw, inImage("ix", "ox", "kx", g.sw, g.pl, g.w, lastX, body));
  return [reduce("ky", g.kh, inImage("iy", "oy", "ky", g.sh, g.pt, g.h, lastY, [inner]))];
}

/**
 * The window `o` whose tap `k` reads input cell `i`: t = i + pad − k must be a
 * non-negative multiple of the stride below outSize·s; then o = t / s.
 */
function sourceWindow(t: string, o: string, i: string, k: string, s: number, pad: number, outSize: number, body: readonly Stmt[]): Stmt[] {
  const conds = [bin(">=", ref(t), 0), bin("<", ref(t), outSize * s)];
  if (s > 1) conds.push(bin("==", bin("mod", ref(t), s), 0));
  const oe = s > 1 ? bin("idiv", ref(t), s) : ref(t);
  return [let_(t, bin("-", addE(ref(i), pad), ref(k))), if_(all(conds), [let_(o, oe), ...body])];
}

/** Loops over the windows (`oy`, `ox`) that read input cell (`iy`, `ix`), with their taps `ky`, `kx`. */
function sourceLoops(g: Geom, body: readonly Stmt[]): Stmt[] {
  const inner = reduce("kx", g.kw, sourceWindow("tx", "ox", "ix", "kx", g.sw, g.pl, g.wo, body));
  return [reduce("ky", g.kh, sourceWindow("ty", "oy", "iy", "ky", g.sh, g.pt, g.ho, [inner]))];
}

/** Row-major index expressions of the image, the output and the filter. */
const xAt = (g: Geom, c = "ci"): Expr => affine(["n", "iy", "ix", c], stridesOf([g.n, g.h, g.w, g.cin]));
const yAt = (g: Geom, c = "co"): Expr => affine(["n", "oy", "ox", c], stridesOf(outShape(g)));
const fAt = (g: Geom): Expr => affine(["ky", "kx", "ci", "co"], stridesOf([g.kh, g.kw, g.cin, g.cout]));
const accumulate = (e: Expr): Stmt => set("s", bin("+", ref("s"), e));

/** Cells of window (oy, ox) inside the image: the divisor of an average ("same" padding is not counted). */
function windowCount(g: Geom): Expr {
  const along = (o: string, s: number, pad: number, k: number, size: number) => {
    const start = addE(mulE(ref(o), s), -pad);
    return bin("-", bin("min", addE(start, k), size), bin("max", start, 0));
  };
  return bin("*", along("oy", g.sh, g.pt, g.kh, g.h), along("ox", g.sw, g.pl, g.kw, g.w));
}

const zeroFill = (size: number): Stmt => parallel("i", size, [store("out", ref("i"), num(0))]);

const pairOf = (p: Pair): Pair => [p[0], p[1]];

/** The three bilinear convolution maps as graph nodes, with one node's strides and padding. */
type ConvParams = { readonly strides: Pair; readonly padding: Padding };
const convY = (x: Tensor, f: Tensor, p: ConvParams): Tensor => x.ctx.apply("conv2d", [x, f], { strides: pairOf(p.strides), padding: p.padding });
const convDx = (dy: Tensor, f: Tensor, inputShape: Shape, p: ConvParams): Tensor =>
  dy.ctx.apply("conv2dBackpropInput", [dy, f], { inputShape: [...inputShape], strides: pairOf(p.strides), padding: p.padding });
const convDf = (x: Tensor, dy: Tensor, filterShape: Shape, p: ConvParams): Tensor =>
  x.ctx.apply("conv2dBackpropFilter", [x, dy], { filterShape: [...filterShape], strides: pairOf(p.strides), padding: p.padding });

// ---- the gradient of maxPool2dGrad with respect to its cotangent ----

/** Each window's taps as channels: [N, H, W, C] → [N·C, Ho, Wo, kh·kw], zero where a tap is padding. */
function windowTaps(t: Tensor, p: { size: Pair; strides: Pair; padding: Padding }): Tensor {
  const [n, h, w, c] = t.shape as [number, number, number, number];
  const k = p.size[0] * p.size[1];
  // filter [kh, kw, 1, k] with f[ky, kx, 0, ky·kw + kx] = 1: a convolution that copies each tap out
  const eye = Array.from({ length: k * k }, (_, i) => (i % (k + 1) === 0 ? 1 : 0));
  const filter = t.ctx.apply("const", [], { value: eye, shape: [p.size[0], p.size[1], 1, k], dtype: t.dtype });
  const planes = t.transpose([0, 3, 1, 2]).reshape([n * c, h, w, 1]);
  return convY(planes, filter, p);
}

/**
 * ct at each window's first maximum of x: the transpose of maxPool2dGrad(x, ·),
 * written with ordinary ops so that it can be differentiated again.
 */
function gatherAtArgmax(x: Tensor, ct: Tensor, p: { size: Pair; strides: Pair; padding: Padding }): Tensor {
  const [n, , , c] = x.shape as [number, number, number, number];
  const pooled = x.maxPool2d(p.size, p.strides, p.padding);
  const [, ho, wo] = pooled.shape as [number, number, number, number];
  const k = p.size[0] * p.size[1];
  const m = pooled.transpose([0, 3, 1, 2]).reshape([n * c, ho, wo, 1]);
  const inside = windowTaps(x.lift(1, x.dtype).broadcastTo([...x.shape]), p);
  const hit = windowTaps(x, p).equal(m).cast(x.dtype).mul(inside);
  // the first hit wins: weight tap i by k − i and take the argmax
  const weights = x.ctx.apply("const", [], { value: Array.from({ length: k }, (_, i) => k - i), shape: [k], dtype: x.dtype });
  const first = hit.mul(weights).argmax(-1).oneHot(k).cast(x.dtype).mul(hit);
  const picked = first.mul(windowTaps(ct, p)).sum(-1);
  return picked.reshape([n, c, ho, wo]).transpose([0, 2, 3, 1]);
}

export const CONV = {
  /** y[n,oy,ox,co] = Σ_{ky,kx,ci} x[n, oy·sh + ky − pt, ox·sw + kx − pl, ci] · f[ky,kx,ci,co]. */
  conv2d: {
    flops: (n) => {
      const f = n.inputs[1]!.shape;
      return 2 * n.size * f[0]! * f[1]! * f[2]!;
    },
    infer: ([x, f], p) => {
      const dtype = floatOperands(x!, f!);
      return { shape: outShape(convGeom(x!.shape, f!.shape, p.strides, p.padding)), dtype };
    },
    eval: (node, [x, f]) => convEval(convGeom(x!.shape, f!.shape, node.params.strides, node.params.padding), "y", x!.data, f!.data),
    vjp: (ct, node) => {
      const [x, f] = node.inputs as [Tensor, Tensor];
      return [convDx(ct, f, x.shape, node.params), convDf(x, ct, f.shape, node.params)];
    },
    lower: (node) => {
      const [x, f] = node.inputs as [Tensor, Tensor];
      const g = convGeom(x.shape, f.shape, node.params.strides, node.params.padding);
      const mac = reduce("ci", g.cin, [accumulate(bin("*", load("in0", xAt(g)), load("in1", fAt(g))))]);
      const body = [let_("s", 0), ...tapLoops(g, [mac]), store("out", yAt(g), ref("s"))];
      return nest([["n", g.n], ["oy", g.ho], ["ox", g.wo], ["co", g.cout]], body);
    },
  } satisfies OpDef<"conv2d">,

  /** dx = Σ over the windows that read each cell of dy · f: (dy, f) → inputShape. */
  conv2dBackpropInput: {
    math: "layer",
    flops: (n) => {
      const f = n.inputs[1]!.shape;
      return 2 * n.inputs[0]!.size * f[0]! * f[1]! * f[3]!;
    },
    infer: ([dy, f], p) => {
      const dtype = floatOperands(dy!, f!);
      requireOutShape(dy!, convGeom(p.inputShape, f!.shape, p.strides, p.padding));
      return { shape: [...p.inputShape], dtype };
    },
    eval: (node, [dy, f]) => convEval(convGeom(node.shape, f!.shape, node.params.strides, node.params.padding), "x", dy!.data, f!.data),
    // bilinear: ⟨c, dx(dy, f)⟩ = ⟨conv2d(c, f), dy⟩ = ⟨dfilter(c, dy), f⟩
    vjp: (ct, node) => {
      const [dy, f] = node.inputs as [Tensor, Tensor];
      return [convY(ct, f, node.params), convDf(ct, dy, f.shape, node.params)];
    },
    // one output cell at a time: no accumulation across threads
    lower: (node) => {
      const f = node.inputs[1]!;
      const g = convGeom(node.shape, f.shape, node.params.strides, node.params.padding);
      const mac = reduce("co", g.cout, [accumulate(bin("*", load("in0", yAt(g)), load("in1", fAt(g))))]);
      const body = [let_("s", 0), ...sourceLoops(g, [mac]), store("out", xAt(g), ref("s"))];
      return nest([["n", g.n], ["iy", g.h], ["ix", g.w], ["ci", g.cin]], body);
    },
  } satisfies OpDef<"conv2dBackpropInput">,

  /** df[ky,kx,ci,co] = Σ_{n,oy,ox} x[n, oy·sh + ky − pt, ox·sw + kx − pl, ci] · dy[n,oy,ox,co]: (x, dy) → filterShape. */
  conv2dBackpropFilter: {
    math: "layer",
    flops: (n) => 2 * n.inputs[1]!.size * sizeOf(n.shape.slice(0, 3)),
    infer: ([x, dy], p) => {
      const dtype = floatOperands(x!, dy!);
      requireOutShape(dy!, convGeom(x!.shape, p.filterShape, p.strides, p.padding));
      return { shape: [...p.filterShape], dtype };
    },
    eval: (node, [x, dy]) => convEval(convGeom(x!.shape, node.shape, node.params.strides, node.params.padding), "f", x!.data, dy!.data),
    // bilinear: ⟨c, df(x, dy)⟩ = ⟨dx(dy, c), x⟩ = ⟨conv2d(x, c), dy⟩
    vjp: (ct, node) => {
      const [x, dy] = node.inputs as [Tensor, Tensor];
      return [convDx(dy, ct, x.shape, node.params), convY(x, ct, node.params)];
    },
    lower: (node) => {
      const x = node.inputs[0]!;
      const g = convGeom(x.shape, node.shape, node.params.strides, node.params.padding);
      const lastY = (g.ho - 1) * g.sh + g.kh - 1;
      const lastX = (g.wo - 1) * g.sw + g.kw - 1;
      const mac = accumulate(bin("*", load("in0", xAt(g)), load("in1", yAt(g))));
      const overX = reduce("ox", g.wo, inImage("ix", "ox", "kx", g.sw, g.pl, g.w, lastX, [mac]));
      const overY = reduce("oy", g.ho, inImage("iy", "oy", "ky", g.sh, g.pt, g.h, lastY, [overX]));
      const body = [let_("s", 0), reduce("n", g.n, [overY]), store("out", fAt(g), ref("s"))];
      return nest([["ky", g.kh], ["kx", g.kw], ["ci", g.cin], ["co", g.cout]], body);
    },
  } satisfies OpDef<"conv2dBackpropFilter">,

  /** The maximum of each window; padding cells never win. */
  maxPool2d: {
    infer: ([x], p) => {
      if (!isFloat(x!.dtype)) throw new ShapeError(`needs a float input, got ${x!.dtype}`);
      return { shape: outShape(poolGeom(x!.shape, p.size, p.strides, p.padding)), dtype: x!.dtype };
    },
    eval: (node, [x]) => {
      const g = poolGeom(x!.shape, node.params.size, node.params.strides, node.params.padding);
      const out = new Float64Array(sizeOf(node.shape)).fill(-Infinity);
      forWindows(g, (o, oy, ox, n) => {
        forTaps(g, oy, ox, (_ky, _kx, iy, ix) => {
          const xi = pixel(g, n, iy, ix);
          for (let c = 0; c < g.cin; c++) out[o + c] = Math.max(out[o + c]!, x!.data[xi + c]!);
        });
      });
      return out;
    },
    vjp: (ct, node) => [ct.ctx.apply("maxPool2dGrad", [node.inputs[0]!, ct], { ...node.params })],
    lower: (node) => {
      const x = node.inputs[0]!;
      const g = poolGeom(x.shape, node.params.size, node.params.strides, node.params.padding);
      const body = [let_("s", -Infinity), ...tapLoops(g, [set("s", bin("max", ref("s"), load("in0", xAt(g, "c"))))]), store("out", yAt(g, "c"), ref("s"))];
      return nest([["n", g.n], ["oy", g.ho], ["ox", g.wo], ["c", g.cout]], body);
    },
  } satisfies OpDef<"maxPool2d">,

  /** dx: each window's dy goes to the first maximum of x in that window (row-major), as in TensorFlow. */
  maxPool2dGrad: {
    infer: ([x, dy], p) => {
      floatOperands(x!, dy!);
      requireOutShape(dy!, poolGeom(x!.shape, p.size, p.strides, p.padding));
      return { shape: x!.shape, dtype: x!.dtype };
    },
    eval: (node, [x, dy]) => {
      const g = poolGeom(x!.shape, node.params.size, node.params.strides, node.params.padding);
      const out = new Float64Array(sizeOf(node.shape));
      const best = new Float64Array(g.cin);
      const arg = new Int32Array(g.cin);
      forWindows(g, (o, oy, ox, n) => {
        best.fill(-Infinity);
        arg.fill(-1);
        forTaps(g, oy, ox, (_ky, _kx, iy, ix) => {
          const xi = pixel(g, n, iy, ix);
          for (let c = 0; c < g.cin; c++) {
            const v = x!.data[xi + c]!;
            if (arg[c]! < 0 || v > best[c]!) {
              best[c] = v;
              arg[c] = xi + c;
            }
          }
        });
        for (let c = 0; c < g.cin; c++) if (arg[c]! >= 0) out[arg[c]!]! += dy!.data[o + c]!;
      });
      return out;
    },
    // piecewise constant in x; linear in dy, whose transpose reads ct at each window's argmax
    vjp: (ct, node) => [null, gatherAtArgmax(node.inputs[0]!, ct, node.params)],
    // zero, then each window adds its dy at its argmax
    lower: (node) => {
      const x = node.inputs[0]!;
      const g = poolGeom(x.shape, node.params.size, node.params.strides, node.params.padding);
      const better = bin("||", bin("<", ref("a"), 0), bin(">", ref("v"), ref("b")));
      const visit = [let_("v", load("in0", xAt(g, "c"))), if_(better, [set("b", ref("v")), set("a", xAt(g, "c"))])];
      const body = [let_("b", -Infinity), let_("a", -1), ...tapLoops(g, visit), if_(bin(">=", ref("a"), 0), [scatterAdd("out", ref("a"), load("in1", yAt(g, "c")))])];
      return [zeroFill(x.size), ...nest([["n", g.n], ["oy", g.ho], ["ox", g.wo], ["c", g.cout]], body)];
    },
  } satisfies OpDef<"maxPool2dGrad">,

  /** The mean of each window over the cells inside the image (padding is not counted). */
  avgPool2d: {
    infer: ([x], p) => {
      if (!isFloat(x!.dtype)) throw new ShapeError(`needs a float input, got ${x!.dtype}`);
      return { shape: outShape(poolGeom(x!.shape, p.size, p.strides, p.padding)), dtype: x!.dtype };
    },
    eval: (node, [x]) => {
      const g = poolGeom(x!.shape, node.params.size, node.params.strides, node.params.padding);
      const out = new Float64Array(sizeOf(node.shape));
      forWindows(g, (o, oy, ox, n) => {
        let count = 0;
        forTaps(g, oy, ox, (_ky, _kx, iy, ix) => {
          const xi = pixel(g, n, iy, ix);
          for (let c = 0; c < g.cin; c++) out[o + c]! += x!.data[xi + c]!;
          count++;
        });
        for (let c = 0; c < g.cin; c++) out[o + c]! /= count;
      });
      return out;
    },
    vjp: (ct, node) => [ct.ctx.apply("avgPool2dGrad", [ct], { inputShape: [...node.inputs[0]!.shape], ...node.params })],
    lower: (node) => {
      const x = node.inputs[0]!;
      const g = poolGeom(x.shape, node.params.size, node.params.strides, node.params.padding);
      const body = [let_("s", 0), ...tapLoops(g, [accumulate(load("in0", xAt(g, "c")))]), store("out", yAt(g, "c"), bin("/", ref("s"), windowCount(g)))];
      return nest([["n", g.n], ["oy", g.ho], ["ox", g.wo], ["c", g.cout]], body);
    },
  } satisfies OpDef<"avgPool2d">,

  /** dx[cell] = Σ over the windows containing the cell of dy / (the window's cell count): dy → inputShape. */
  avgPool2dGrad: {
    infer: ([dy], p) => {
      if (!isFloat(dy!.dtype)) throw new ShapeError(`needs a float input, got ${dy!.dtype}`);
      requireOutShape(dy!, poolGeom(p.inputShape, p.size, p.strides, p.padding));
      return { shape: [...p.inputShape], dtype: dy!.dtype };
    },
    eval: (node, [dy]) => {
      const { size, strides, padding } = node.params;
      const g = poolGeom(node.shape, size, strides, padding);
      const out = new Float64Array(sizeOf(node.shape));
      forWindows(g, (o, oy, ox, n) => {
        let count = 0;
        forTaps(g, oy, ox, () => count++);
        forTaps(g, oy, ox, (_ky, _kx, iy, ix) => {
          const xi = pixel(g, n, iy, ix);
          for (let c = 0; c < g.cin; c++) out[xi + c]! += dy!.data[o + c]! / count;
        });
      });
      return out;
    },
    // linear, and the transpose of avgPool2d: its VJP is avgPool2d itself
    vjp: (ct, node) => {
      const { size, strides, padding } = node.params;
      return [ct.avgPool2d(pairOf(size), pairOf(strides), padding)];
    },
    lower: (node) => {
      const { size, strides, padding } = node.params;
      const g = poolGeom(node.shape, size, strides, padding);
      const gather = accumulate(bin("/", load("in0", yAt(g, "c")), windowCount(g)));
      const body = [let_("s", 0), ...sourceLoops(g, [gather]), store("out", xAt(g, "c"), ref("s"))];
      return nest([["n", g.n], ["iy", g.h], ["ix", g.w], ["c", g.cin]], body);
    },
  } satisfies OpDef<"avgPool2dGrad">,
} as const;
