// Every rewrite rule, before → after, as printed graphs (golden inline
// snapshots); each rewrite must verify and give bit-identical values. Also the
// rewrites that must not happen (x·0, x − x, exp∘log).
import { describe, expect, it } from "vitest";
import { ALGEBRA, FOLD, LAYOUT, MOVEMENT } from "../../../compiler/passes/rules.js";
import type { Rule } from "../../../compiler/passes/rewrite.js";
import { matmulT } from "../../../compiler/ops/matmul.js";
import { firedSoFar, outputsGraph, rewritten } from "./util.js";

const ALL: readonly Rule[] = [...FOLD, ...MOVEMENT, ...ALGEBRA, ...LAYOUT];

describe("algebra", () => {
  it("x·1 and 1·x are x; a broadcasting 1 leaves a broadcast", () => {
    const r = rewritten(
      outputsGraph((g) => {
        const x = g.input("x", [2, 3]);
        const v = g.input("v", [3]);
        return { a: x.mul(1), b: g.const(1).mul(x), c: v.mul(g.const(1, [2, 3])) };
      }),
      ALGEBRA,
    );
    expect(r.fired).toEqual({ mulOne: 2, oneMul: 1 });
    expect(r.after).toMatchInlineSnapshot(`
      "{ lambda t (x:f32[2,3], v:f32[3]; ) .
        a:f32[2,3] = broadcastTo[shape=[2,3]] v
        in (a=x, b=x, c=a) }"
    `);
  });

  it("x + 0, 0 + x, x − 0 and x / 1 are x", () => {
    const r = rewritten(
      outputsGraph((g) => {
        const x = g.input("x", [2, 3]);
        return { a: x.add(0), b: g.const(0).add(x), c: x.sub(0), d: x.div(1) };
      }),
      ALGEBRA,
    );
    expect(r.fired).toEqual({ addZero: 1, zeroAdd: 1, subZero: 1, divOne: 1 });
    expect(r.after).toMatchInlineSnapshot(`
      "{ lambda t (x:f32[2,3]; ) .
        in (a=x, b=x, c=x, d=x) }"
    `);
  });

  it("−(−x) is x; x·(−1) is −x; a + (−b), (−b) + a and a − (−b) lose the negation", () => {
    const r = rewritten(
      outputsGraph((g) => {
        const [a, b] = [g.input("a", [3]), g.input("b", [2, 3])];
        return { n: a.neg().neg(), m: a.mul(-1), s: a.add(b.neg()), t: b.neg().add(a), u: a.sub(b.neg()) };
      }),
      ALGEBRA,
    );
    expect(r.fired).toEqual({ negNeg: 1, mulMinusOne: 1, addNeg: 1, negAdd: 1, subNeg: 1 });
    expect(r.after).toMatchInlineSnapshot(`
      "{ lambda t (a:f32[3], b:f32[2,3]; ) .
        c:f32[3] = neg a
        d:f32[2,3] = sub a b
        e:f32[2,3] = add a b
        in (n=a, m=c, s=d, t=d, u=e) }"
    `);
  });

  it("where with a constant condition picks a branch; a cast to the same dtype is its input", () => {
    const r = rewritten(
      outputsGraph((g) => {
        const [a, b] = [g.input("a", [2, 3]), g.input("b", [3])];
        const yes = g.const(1, [], "bool");
        return { w: yes.where(a, b), v: g.const(0, [], "bool").where(a, b), c: a.ctx.apply("cast", [a], { dtype: "f32" }) };
      }),
      ALGEBRA,
    );
    expect(r.fired).toEqual({ whereConst: 2, castSame: 1 });
    expect(r.after).toMatchInlineSnapshot(`
      "{ lambda t (a:f32[2,3], b:f32[3]; ) .
        c:f32[2,3] = broadcastTo[shape=[2,3]] b
        in (w=a, v=c, c=a) }"
    `);
  });

  it("a uniform constant operand that only broadcasts becomes a scalar", () => {
    const r = rewritten(
      outputsGraph((g) => {
        const x = g.input("x", [4, 3]);
        // the [1,3] constant does not widen the result: a scalar does the same; the [5,4,3] one does
        return { a: x.mul(g.const(0.5, [1, 3])), b: x.add(g.const(2, [5, 4, 3])) };
      }),
      ALGEBRA,
    );
    expect(r.fired).toEqual({ scalarLiteral: 1 });
    expect(r.after).toMatchInlineSnapshot(`
      "{ lambda t (x:f32[4,3]; ) .
        a:f32[4,3] = mul x 0.5
        b:f32[5,4,3] = add x 2.0:f32[5,4,3]
        in (a=a, b=b) }"
    `);
  });

  it("a constant of +0 and −0 is not uniform: the zeros' signs reach the product", () => {
    const r = rewritten(
      outputsGraph((g) => {
        const x = g.input("x", [4, 3]);
        return { a: x.mul(g.const([0, -0, 0], [1, 3])) };
      }),
      ALGEBRA,
    );
    expect(r.fired).toEqual({});
    expect(r.after).toContain("mul x");
    expect(r.after).not.toMatch(/mul x 0\.0\b/);
  });

  it("Σ over broadcast axes is a scale by their count (and not when the count is 0)", () => {
    const r = rewritten(
      outputsGraph((g) => {
        const s = g.input("s", []);
        const v = g.input("v", [1, 3]);
        const e = g.input("e", [2]);
        return {
          all: s.broadcastTo([4, 3]).sum(),
          rows: v.broadcastTo([5, 4, 3]).sum([0, 1], true),
          kept: v.broadcastTo([4, 3]).sum(0),
          // a reduced axis that is not broadcast: no rewrite
          mixed: v.broadcastTo([4, 3]).sum(1),
          empty: e.reshape([1, 2]).broadcastTo([0, 2]).sum(0),
        };
      }),
      ALGEBRA,
      undefined,
      1e-15,
    );
    expect(r.fired).toEqual({ sumBroadcast: 3 });
    expect(r.after).toMatchInlineSnapshot(`
      "{ lambda t (s:f32[], v:f32[1,3], e:f32[2]; ) .
        a:f32[] = mul s 12.0
        b:f32[1,1,3] = reshape[shape=[1,1,3]] v
        c:f32[1,1,3] = mul b 20.0
        d:f32[4,3] = broadcastTo[shape=[4,3]] v
        f:f32[3] = reshape[shape=[3]] v
        g:f32[3] = mul f 4.0
        h:f32[4] = sum[axes=[1] keepDims=false] d
        i:f32[1,2] = reshape[shape=[1,2]] e
        j:f32[0,2] = broadcastTo[shape=[0,2]] i
        k:f32[2] = sum[axes=[0] keepDims=false] j
        in (all=a, rows=c, kept=g, mixed=h, empty=k) }"
    `);
  });
});

describe("movement", () => {
  it("transpose∘transpose composes its permutations, and vanishes when they cancel", () => {
    const r = rewritten(
      outputsGraph((g) => {
        const x = g.input("x", [2, 3, 4]);
        return { back: x.transpose([1, 2, 0]).transpose([2, 0, 1]), once: x.transpose([1, 0, 2]).transpose([0, 2, 1]) };
      }),
      MOVEMENT,
    );
    expect(r.fired).toEqual({ transposeTranspose: 2 });
    expect(r.after).toMatchInlineSnapshot(`
      "{ lambda t (x:f32[2,3,4]; ) .
        a:f32[3,4,2] = transpose[perm=[1,2,0]] x
        in (back=x, once=a) }"
    `);
  });

  it("an identity transpose, or one that moves only axes of size 1, is a reshape (or nothing)", () => {
    const r = rewritten(
      outputsGraph((g) => {
        const x = g.input("x", [2, 3]);
        const v = g.input("v", [1, 5]);
        return { same: x.transpose([0, 1]), column: v.transpose([1, 0]), real: x.transpose([1, 0]) };
      }),
      MOVEMENT,
    );
    expect(r.fired).toEqual({ transposeReshape: 2 });
    expect(r.after).toMatchInlineSnapshot(`
      "{ lambda t (x:f32[2,3], v:f32[1,5]; ) .
        a:f32[5,1] = reshape[shape=[5,1]] v
        b:f32[3,2] = transpose[perm=[1,0]] x
        in (same=x, column=a, real=b) }"
    `);
  });

  it("reshape∘reshape is one reshape; a reshape or broadcast to the same shape is its input", () => {
    const r = rewritten(
      outputsGraph((g) => {
        const x = g.input("x", [2, 6]);
        return { twice: x.reshape([3, 4]).reshape([12]), back: x.reshape([12]).reshape([2, 6]), r: x.reshape([2, 6]), b: x.broadcastTo([2, 6]) };
      }),
      MOVEMENT,
    );
    expect(r.fired).toEqual({ reshapeReshape: 2, reshapeSame: 1, broadcastSame: 1 });
    expect(r.after).toMatchInlineSnapshot(`
      "{ lambda t (x:f32[2,6]; ) .
        a:f32[12] = reshape[shape=[12]] x
        in (twice=a, back=x, r=x, b=x) }"
    `);
  });

  it("broadcast∘broadcast is one broadcast; a reshape that only adds leading 1s before a broadcast is not needed", () => {
    const r = rewritten(
      outputsGraph((g) => {
        const v = g.input("v", [3]);
        const s = g.input("s", []);
        return {
          bb: v.broadcastTo([2, 3]).broadcastTo([4, 2, 3]),
          rb: v.reshape([1, 3]).broadcastTo([4, 3]),
          scalar: s.reshape([1, 1]).broadcastTo([4, 1]),
          // an interior size-1 axis is not a leading one: kept
          inner: v.reshape([3, 1]).broadcastTo([3, 2]),
        };
      }),
      MOVEMENT,
    );
    expect(r.fired).toEqual({ broadcastBroadcast: 1, broadcastReshape: 2 });
    expect(r.after).toMatchInlineSnapshot(`
      "{ lambda t (v:f32[3], s:f32[]; ) .
        a:f32[4,2,3] = broadcastTo[shape=[4,2,3]] v
        b:f32[4,3] = broadcastTo[shape=[4,3]] v
        c:f32[4,1] = broadcastTo[shape=[4,1]] s
        d:f32[3,1] = reshape[shape=[3,1]] v
        e:f32[3,2] = broadcastTo[shape=[3,2]] d
        in (bb=a, rb=b, scalar=c, inner=e) }"
    `);
  });

  it("a reduction over no axes, or over axes of size 1, is a reshape of its input", () => {
    const r = rewritten(
      outputsGraph((g) => {
        const x = g.input("x", [4, 1, 3]);
        return { none: x.sum([]), one: x.sum(1), keep: x.max(1, true), min: x.min([1]), real: x.sum(2) };
      }),
      MOVEMENT,
    );
    expect(r.fired).toEqual({ reduceOnes: 4 });
    expect(r.after).toMatchInlineSnapshot(`
      "{ lambda t (x:f32[4,1,3]; ) .
        a:f32[4,3] = reshape[shape=[4,3]] x
        b:f32[4,1] = sum[axes=[2] keepDims=false] x
        in (none=x, one=a, keep=x, min=a, real=b) }"
    `);
  });
});

describe("layout", () => {
  it("matmul(xᵀ, δ) and matmul(δ, Wᵀ) read the transposed operand through a flag: no transposed copy", () => {
    const r = rewritten(
      outputsGraph((g) => {
        const x = g.input("x", [4, 3]);
        const d = g.input("d", [4, 2]);
        const W = g.param("W", [5, 2]);
        const B = g.input("B", [6, 3, 4]);
        return {
          dW: x.transpose([1, 0]).matmul(d),
          dx: d.matmul(W.transpose()),
          both: g.input("e", [2, 4]).transpose().matmul(W.transpose()),
          batched: B.transpose([0, 2, 1]).matmul(g.input("C", [6, 3, 2])),
          // not a swap of the last two axes: kept
          other: B.transpose([1, 0, 2]).matmul(g.input("D", [4, 2])),
        };
      }),
      LAYOUT,
    );
    expect(r.fired).toEqual({ matmulTransposeA: 3, matmulTransposeB: 2 });
    expect(r.after).toMatchInlineSnapshot(`
      "{ lambda t (x:f32[4,3], d:f32[4,2], B:f32[6,3,4], e:f32[2,4], C:f32[6,3,2], D:f32[4,2]; W:f32[5,2]) .
        a:f32[3,2] = matmul[transposeA=true] x d
        b:f32[4,5] = matmul[transposeB=true] d W
        c:f32[4,5] = matmul[transposeA=true transposeB=true] e W
        f:f32[6,4,2] = matmul[transposeA=true] B C
        g:f32[3,6,4] = transpose[perm=[1,0,2]] B
        h:f32[3,6,2] = matmul g D
        in (dW=a, dx=b, both=c, batched=f, other=h) }"
    `);
  });

  it("a flagged matmul of a transpose clears the flag; false flags are dropped", () => {
    const r = rewritten(
      outputsGraph((g) => {
        const a = g.input("a", [3, 4]);
        const b = g.input("b", [4, 2]);
        const c = g.input("c", [3, 2]);
        return {
          tt: matmulT(a.transpose(), b, true, false),
          f: a.ctx.apply("matmul", [a.transpose(), c], { transposeA: false, transposeB: false }),
          // the same product as a·b: after the rewrite, one node
          same: a.ctx.apply("matmul", [a, b], { transposeA: false }),
        };
      }),
      LAYOUT,
    );
    expect(r.fired).toEqual({ matmulTransposeA: 2, matmulFlags: 1 });
    expect(r.after).toMatchInlineSnapshot(`
      "{ lambda t (a:f32[3,4], b:f32[4,2], c:f32[3,2]; ) .
        d:f32[3,2] = matmul a b
        e:f32[4,2] = matmul[transposeA=true] a c
        in (tt=d, f=e, same=d) }"
    `);
  });

  it("Σ over every batch of batched Aᵀ·B is one product over the rows of all batches (not when a batch broadcasts, is kept, or A is not read transposed)", () => {
    const r = rewritten(
      outputsGraph((g) => {
        const x = g.input("x", [2, 3, 4]);
        const d = g.input("d", [2, 3, 5]);
        const x4 = g.input("x4", [2, 2, 3, 4]);
        const d4 = g.input("d4", [2, 2, 3, 5]);
        return {
          // dW of x[2,3,4]·W[4,5] as autodiff writes it (unbroadcast keeps the summed axis, then reshapes)
          dW: matmulT(x, d, true, false).sum([0], true).reshape([4, 5]),
          rank4: matmulT(x4, d4, true, false).sum([0, 1]),
          // one batch axis of two summed: kept
          part: matmulT(x4, d4, true, false).sum([0]),
          // A's batch broadcasts against d4's: kept
          bcast: matmulT(x, d4, true, false).sum([0, 1]),
          // Σ_b A_b·B_b with A_b [4,3]: its batches' columns are not contiguous in A, kept
          plain: g.input("a", [2, 4, 3]).matmul(d).sum([0]),
        };
      }),
      LAYOUT,
      undefined,
      1e-12,
    );
    expect(r.fired).toEqual({ sumBatchedMatmul: 2 });
    expect(r.after).toMatchInlineSnapshot(`
      "{ lambda t (x:f32[2,3,4], d:f32[2,3,5], x4:f32[2,2,3,4], d4:f32[2,2,3,5], a:f32[2,4,3]; ) .
        b:f32[6,4] = reshape[shape=[6,4]] x
        c:f32[6,5] = reshape[shape=[6,5]] d
        e:f32[4,5] = matmul[transposeA=true] b c
        f:f32[1,4,5] = reshape[shape=[1,4,5]] e
        g:f32[4,5] = reshape[shape=[4,5]] f
        h:f32[2,2,4,5] = matmul[transposeA=true] x4 d4
        i:f32[12,4] = reshape[shape=[12,4]] x4
        j:f32[12,5] = reshape[shape=[12,5]] d4
        k:f32[4,5] = matmul[transposeA=true] i j
        l:f32[2,4,5] = sum[axes=[0] keepDims=false] h
        m:f32[2,2,4,5] = matmul[transposeA=true] x d4
        n:f32[4,5] = sum[axes=[0,1] keepDims=false] m
        o:f32[2,4,5] = matmul a d
        p:f32[4,5] = sum[axes=[0] keepDims=false] o
        in (dW=g, rank4=k, part=l, bcast=n, plain=p) }"
    `);
  });
});

describe("constant folding", () => {
  it("folds div 1.0 4.0 to 0.25, a small constant tensor to its values, a large uniform one to one value", () => {
    const r = rewritten(
      outputsGraph((g) => {
        const x = g.input("x", [4, 1]);
        const q = g.const(1).div(4);
        return {
          y: q.reshape([1, 1]).broadcastTo([4, 1]).mul(x),
          small: g.const([1, 2, 3]).mul(g.const([[1], [10]])).exp(),
          big: g.const(2).broadcastTo([100, 10]).sqrt().add(g.input("z", [100, 10])),
        };
      }),
      FOLD,
    );
    expect(r.fired).toEqual({ foldConstants: 7 });
    expect(r.after).toMatchInlineSnapshot(`
      "{ lambda t (x:f32[4,1], z:f32[100,10]; ) .
        a:f32[4,1] = mul 0.25:f32[4,1] x
        b:f32[2,3] = const [2.718281828459045,7.38905609893065,20.085536923187668,22026.465794806718,485165195.4097903,10686474581524.463]
        c:f32[100,10] = add 1.4142135623730951:f32[100,10] z
        in (y=a, small=b, big=c) }"
    `);
  });

  it("rounds integer results, keeps NaN and infinities, and leaves large varied results alone", () => {
    const r = rewritten(
      outputsGraph((g) => {
        const n = g.const([7, -7], [2], "i32");
        return {
          idiv: n.div(g.const(2, [], "i32")),
          nan: g.const(0).div(0).add(g.input("x", [])),
          inf: g.const(-1).div(0).add(g.input("y", [])),
          big: g.const(Array.from({ length: 65 }, (_, i) => i)).exp(),
          argmax: g.const([[1, 5, 2], [7, 0, 7]]).argmax(1),
        };
      }),
      FOLD,
    );
    expect(r.fired).toEqual({ foldConstants: 4 });
    expect(r.after).toMatchInlineSnapshot(`
      "{ lambda t (x:f32[], y:f32[]; ) .
        a:i32[2] = const [3,-4]
        b:f32[] = add NaN x
        c:f32[] = add -Infinity y
        d:f32[65] = const [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,64]
        e:f32[65] = exp d
        f:i32[2] = const [1,0]
        in (idiv=a, nan=b, inf=c, big=e, argmax=f) }"
    `);
  });
});

describe("rewrites that must not happen", () => {
  it("x·0, 0·x, x − x, x / x, x + (−x), exp(log x) and log(exp x) stay: they are wrong for NaN, ±Inf or out of range", () => {
    const g = outputsGraph((b) => {
      const x = b.input("x", [3]);
      return { a: x.mul(0), b: b.const(0).mul(x), c: x.sub(x), d: x.div(x), e: x.add(x.neg()).neg(), f: x.log().exp(), h: x.exp().log() };
    });
    // x + (−x) becomes x − x (exact), and no further
    const r = rewritten(g, ALL, { x: [NaN, Infinity, -0] });
    expect(r.fired).toEqual({ addNeg: 1 });
    expect(r.after).toMatchInlineSnapshot(`
      "{ lambda t (x:f32[3]; ) .
        a:f32[3] = mul x 0.0
        b:f32[3] = mul 0.0 x
        c:f32[3] = sub x x
        d:f32[3] = div x x
        e:f32[3] = neg c
        f:f32[3] = log x
        g:f32[3] = exp f
        h:f32[3] = exp x
        i:f32[3] = log h
        in (a=a, b=b, c=c, d=d, e=e, f=g, h=i) }"
    `);
  });
});

describe("coverage", () => {
  it("every rule has a golden test above", () => {
    const names = ALL.map((r) => r.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names.filter((n) => !(n in firedSoFar))).toEqual([]);
  });
});
