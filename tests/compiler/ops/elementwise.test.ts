// Forward values of the elementwise ops in the reference interpreter, checked
// against Math and against broadcasting worked out coordinate by coordinate.
import { describe, expect, it } from "vitest";
import { evalOutputs, expectAllClose, errorMessage, randomArray } from "../../helpers.js";
import type { Tensor } from "../../../compiler/ir/node.js";

const X = [-2.5, -1, -0.25, 0, 0.3, 1, 4];
const POS = [0.1, 0.5, 1, 2, 9];

/** Runs `f` on a f64 constant holding `values` and returns the result's data. */
function unary(values: readonly number[], f: (t: Tensor) => Tensor): number[] {
  return Array.from(evalOutputs((g) => ({ y: f(g.const(values, [values.length], "f64")) })).y!.data);
}

/** numpy broadcasting done the slow, obvious way: one output coordinate at a time. */
function broadcastRef(aShape: number[], a: ArrayLike<number>, bShape: number[], b: ArrayLike<number>, f: (x: number, y: number) => number) {
  const rank = Math.max(aShape.length, bShape.length);
  const pa = [...Array(rank - aShape.length).fill(1), ...aShape];
  const pb = [...Array(rank - bShape.length).fill(1), ...bShape];
  const out = pa.map((d, i) => Math.max(d, pb[i]!));
  const at = (shape: number[], data: ArrayLike<number>, coord: number[]) => {
    let flat = 0;
    for (let i = 0; i < rank; i++) flat = flat * shape[i]! + (shape[i] === 1 ? 0 : coord[i]!);
    return data[flat]!;
  };
  const values: number[] = [];
  const coord = Array(rank).fill(0);
  const total = out.reduce((x, y) => x * y, 1);
  for (let k = 0; k < total; k++) {
    let r = k;
    for (let i = rank - 1; i >= 0; i--) {
      coord[i] = r % out[i]!;
      r = Math.floor(r / out[i]!);
    }
    values.push(f(at(pa, a, coord), at(pb, b, coord)));
  }
  return { shape: out, values };
}

describe("unary ops", () => {
  const cases: [string, (t: Tensor) => Tensor, (x: number) => number, readonly number[]][] = [
    ["neg", (t) => t.neg(), (x) => -x, X],
    ["exp", (t) => t.exp(), Math.exp, X],
    ["log", (t) => t.log(), Math.log, POS],
    ["sqrt", (t) => t.sqrt(), Math.sqrt, POS],
    ["rsqrt", (t) => t.rsqrt(), (x) => 1 / Math.sqrt(x), POS],
    ["abs", (t) => t.abs(), (x) => (x < 0 ? -x : x), X],
    ["sign", (t) => t.sign(), (x) => (x > 0 ? 1 : x < 0 ? -1 : 0), X],
    ["sin", (t) => t.sin(), Math.sin, X],
    ["cos", (t) => t.cos(), Math.cos, X],
    ["tanh", (t) => t.tanh(), (x) => (Math.exp(2 * x) - 1) / (Math.exp(2 * x) + 1), X],
    ["sigmoid", (t) => t.sigmoid(), (x) => 1 / (1 + Math.exp(-x)), X],
    ["relu", (t) => t.relu(), (x) => (x > 0 ? x : 0), X],
    ["softplus", (t) => t.softplus(), (x) => Math.log(1 + Math.exp(x)), X],
    ["pow 3", (t) => t.pow(3), (x) => x * x * x, X],
    ["pow 0.5", (t) => t.pow(0.5), Math.sqrt, POS],
    ["square", (t) => t.square(), (x) => x * x, X],
    ["leakyRelu 0.1", (t) => t.leakyRelu(0.1), (x) => (x > 0 ? x : 0.1 * x), X],
    ["leakyRelu default 0.2", (t) => t.leakyRelu(), (x) => (x > 0 ? x : 0.2 * x), X],
    ["stopGradient", (t) => t.stopGradient(), (x) => x, X],
  ];
  for (const [name, f, ref, xs] of cases) {
    it(`${name} matches its definition`, () => {
      expectAllClose(unary(xs, f), xs.map(ref), 1e-12);
    });
  }

  it("keeps the input's shape and dtype", () => {
    const out = evalOutputs((g) => ({ y: g.input("x", [2, 3]).exp() }), { x: randomArray(6, 3) });
    expect(out.y!.shape).toEqual([2, 3]);
    expect(out.y!.dtype).toBe("f32");
  });

  it("sigmoid and softplus are stable for |x| = 1000", () => {
    const big = [-1000, 1000];
    expect(unary(big, (t) => t.sigmoid())).toEqual([0, 1]);
    const sp = unary(big, (t) => t.softplus());
    expect(sp[0]).toBeGreaterThanOrEqual(0);
    expect(sp[0]).toBeLessThan(1e-300);
    expect(sp[1]).toBe(1000);
  });

  it("cast to i32 truncates toward zero and cast to bool maps non-zero to 1", () => {
    const out = evalOutputs((g) => {
      const x = g.const([-1.7, -0.2, 0, 0.9, 2.5, NaN], [6]);
      return { i: x.cast("i32"), b: x.cast("bool") };
    });
    expect(out.i!.dtype).toBe("i32");
    expect(Array.from(out.i!.data)).toEqual([-1, 0, 0, 0, 2, 0]);
    expect(out.b!.dtype).toBe("bool");
    // NaN is non-zero, as the emitted `x != 0` says
    expect(Array.from(out.b!.data)).toEqual([1, 1, 0, 1, 1, 1]);
  });

  it("float-only ops refuse integers", () => {
    const msg = errorMessage(() => evalOutputs((g) => ({ y: g.input("n", [3], "i32").exp() })));
    expect(msg).toMatch(/exp/);
    expect(msg).toMatch(/float/);
  });
});

describe("binary ops", () => {
  const a = [1.5, -2, 0, 3, 7, -0.5];
  const b = [2, 4, -1, 3, -7, 0.25];
  const cases: [string, (x: Tensor, y: Tensor) => Tensor, (x: number, y: number) => number][] = [
    ["add", (x, y) => x.add(y), (x, y) => x + y],
    ["sub", (x, y) => x.sub(y), (x, y) => x - y],
    ["mul", (x, y) => x.mul(y), (x, y) => x * y],
    ["div", (x, y) => x.div(y), (x, y) => x / y],
    ["maximum", (x, y) => x.maximum(y), (x, y) => (x > y ? x : y)],
    ["minimum", (x, y) => x.minimum(y), (x, y) => (x < y ? x : y)],
  ];
  for (const [name, f, ref] of cases) {
    it(`${name} of equal shapes`, () => {
      const out = evalOutputs((g) => ({ y: f(g.const(a, [2, 3], "f64"), g.const(b, [2, 3], "f64")) }));
      expect(out.y!.shape).toEqual([2, 3]);
      expectAllClose(out.y!, a.map((x, i) => ref(x, b[i]!)), 1e-12);
    });
  }

  const shapes: [number[], number[]][] = [
    [[2, 1], [3]],
    [[3], [2, 1]],
    [[1, 3], [2, 1]],
    [[2, 3, 1], [1, 4]],
    [[], [2, 2]],
    [[4, 1, 2], [4, 3, 1]],
  ];
  for (const [sa, sb] of shapes) {
    it(`broadcasts ${JSON.stringify(sa)} with ${JSON.stringify(sb)}`, () => {
      const na = sa.reduce((x, y) => x * y, 1);
      const nb = sb.reduce((x, y) => x * y, 1);
      const va = randomArray(na, 11);
      const vb = randomArray(nb, 12);
      for (const [name, f, ref] of cases.slice(0, 3)) {
        const out = evalOutputs((g) => ({ y: f(g.const(va, sa, "f64"), g.const(vb, sb, "f64")) }));
        const want = broadcastRef(sa, va, sb, vb, ref);
        expect(out.y!.shape, name).toEqual(want.shape);
        expectAllClose(out.y!, want.values, 1e-12);
      }
    });
  }

  it("broadcasts [2,1] + [3] to the worked example", () => {
    const out = evalOutputs((g) => ({ y: g.const([[1], [2]]).add(g.const([10, 20, 30])) }));
    expect(out.y!.shape).toEqual([2, 3]);
    expect(Array.from(out.y!.data)).toEqual([11, 21, 31, 12, 22, 32]);
  });

  it("numbers become scalars of the tensor's dtype", () => {
    const out = evalOutputs((g) => {
      const x = g.const([1, 2, 3], [3], "f64");
      const n = g.const([7, -7], [2], "i32");
      return { a: x.mul(2).sub(1), b: x.div(4), c: n.add(1) };
    });
    expect(Array.from(out.a!.data)).toEqual([1, 3, 5]);
    expect(Array.from(out.b!.data)).toEqual([0.25, 0.5, 0.75]);
    expect(out.c!.dtype).toBe("i32");
    expect(Array.from(out.c!.data)).toEqual([8, -6]);
  });

  it("i32 division floors, toward −∞", () => {
    const out = evalOutputs((g) => ({ q: g.const([7, -7, 7, -7, 6], [5], "i32").div(g.const([2, 2, -2, -2, 3], [5], "i32")) }));
    expect(out.q!.dtype).toBe("i32");
    expect(Array.from(out.q!.data)).toEqual([3, -4, -4, 3, 2]);
  });

  it("maximum and minimum propagate NaN and handle infinities", () => {
    const out = evalOutputs((g) => {
      const x = g.const([NaN, 1, Infinity, -Infinity, 2], [5], "f64");
      const y = g.const([1, NaN, 5, 5, -Infinity], [5], "f64");
      return { mx: x.maximum(y), mn: x.minimum(y) };
    });
    expectAllClose(out.mx!, [NaN, NaN, Infinity, 5, 2]);
    expectAllClose(out.mn!, [NaN, NaN, 5, -Infinity, -Infinity]);
  });

  it("refuses operands of different dtypes, naming the op and both dtypes", () => {
    const msg = errorMessage(() => evalOutputs((g) => ({ y: g.input("a", [2]).add(g.input("b", [2], "i32")) })));
    expect(msg).toMatch(/^add/);
    expect(msg).toMatch(/f32/);
    expect(msg).toMatch(/i32/);
  });
});

describe("comparisons", () => {
  const a = [1, 2, 3, NaN, -Infinity];
  const b = [2, 2, 2, NaN, -Infinity];
  const cases: [string, (x: Tensor, y: Tensor) => Tensor, (x: number, y: number) => boolean][] = [
    ["greater", (x, y) => x.greater(y), (x, y) => x > y],
    ["greaterEqual", (x, y) => x.greaterEqual(y), (x, y) => x >= y],
    ["less", (x, y) => x.less(y), (x, y) => x < y],
    ["lessEqual", (x, y) => x.lessEqual(y), (x, y) => x <= y],
    ["equal", (x, y) => x.equal(y), (x, y) => x === y],
  ];
  for (const [name, f, ref] of cases) {
    it(`${name} gives bool 0/1, false for NaN`, () => {
      const out = evalOutputs((g) => ({ y: f(g.const(a, [5]), g.const(b, [5])) }));
      expect(out.y!.dtype).toBe("bool");
      expect(Array.from(out.y!.data)).toEqual(a.map((x, i) => (ref(x, b[i]!) ? 1 : 0)));
    });
  }

  it("compares integers and broadcasts", () => {
    const out = evalOutputs((g) => ({ y: g.const([[0], [1], [2]], undefined, "i32").less(g.const([1, 2], [2], "i32")) }));
    expect(out.y!.shape).toEqual([3, 2]);
    expect(Array.from(out.y!.data)).toEqual([1, 1, 0, 1, 0, 0]);
  });
});

describe("where", () => {
  it("selects per element with broadcasting", () => {
    const out = evalOutputs((g) => {
      const c = g.const([1, -1, 2], [3]).greater(0); // [3]
      const x = g.const([[10], [20]]); // [2,1]
      return { y: c.where(x, -1) };
    });
    expect(out.y!.shape).toEqual([2, 3]);
    expect(Array.from(out.y!.data)).toEqual([10, -1, 10, 20, -1, 20]);
  });

  it("passes NaN and Inf through only from the chosen branch", () => {
    const out = evalOutputs((g) => {
      const c = g.const([1, 0, 1, 0], [4]).greater(0.5);
      return { y: c.where(g.const([NaN, NaN, Infinity, 1], [4]), g.const([0, 2, 0, -Infinity], [4])) };
    });
    expectAllClose(out.y!, [NaN, 2, Infinity, -Infinity]);
  });

  it("needs a bool condition", () => {
    const msg = errorMessage(() => evalOutputs((g) => ({ y: g.const([1, 0]).where(1, 2) })));
    expect(msg).toMatch(/^where/);
    expect(msg).toMatch(/bool/);
  });
});
