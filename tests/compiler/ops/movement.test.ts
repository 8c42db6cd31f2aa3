// Forward values of the movement ops: reshape (with -1), transpose, broadcastTo,
// and the expandDims / squeeze helpers built on reshape.
import { describe, expect, it } from "vitest";
import { evalOutputs, errorMessage } from "../../helpers.js";

const iota = (n: number) => Array.from({ length: n }, (_, i) => i);

describe("reshape", () => {
  it("keeps the row-major order of the data", () => {
    const out = evalOutputs((g) => ({ y: g.const(iota(6), [2, 3]).reshape([3, 2]) }));
    expect(out.y!.shape).toEqual([3, 2]);
    expect(Array.from(out.y!.data)).toEqual(iota(6));
  });

  it("resolves one -1 from the element count", () => {
    const out = evalOutputs((g) => {
      const x = g.const(iota(24), [2, 3, 4]);
      return { a: x.reshape([-1, 4]), b: x.reshape([2, -1]), c: x.reshape([-1]), d: x.reshape([4, -1, 3]) };
    });
    expect(out.a!.shape).toEqual([6, 4]);
    expect(out.b!.shape).toEqual([2, 12]);
    expect(out.c!.shape).toEqual([24]);
    expect(out.d!.shape).toEqual([4, 2, 3]);
  });

  it("reshapes a scalar to [1,1] and back", () => {
    const out = evalOutputs((g) => {
      const s = g.const(5).reshape([1, 1]);
      return { s, back: s.reshape([]) };
    });
    expect(out.s!.shape).toEqual([1, 1]);
    expect(out.back!.shape).toEqual([]);
    expect(Array.from(out.back!.data)).toEqual([5]);
  });

  it("refuses two -1s and a size that does not divide", () => {
    expect(errorMessage(() => evalOutputs((g) => ({ y: g.input("x", [6]).reshape([-1, -1]) })))).toMatch(/^reshape.*-1/);
    const msg = errorMessage(() => evalOutputs((g) => ({ y: g.input("x", [6]).reshape([4, -1]) })));
    expect(msg).toMatch(/^reshape/);
    expect(msg).toMatch(/\[6\]/);
  });
});

describe("transpose", () => {
  it("reverses the axes by default: a 2×3 matrix's transpose", () => {
    const out = evalOutputs((g) => ({ y: g.const([[1, 2, 3], [4, 5, 6]]).transpose() }));
    expect(out.y!.shape).toEqual([3, 2]);
    expect(Array.from(out.y!.data)).toEqual([1, 4, 2, 5, 3, 6]);
  });

  const perms = [[0, 1, 2], [2, 1, 0], [1, 0, 2], [0, 2, 1], [1, 2, 0], [2, 0, 1]];
  for (const perm of perms) {
    it(`permutes a [2,3,4] tensor by ${JSON.stringify(perm)}`, () => {
      const shape = [2, 3, 4];
      const out = evalOutputs((g) => ({ y: g.const(iota(24), shape).transpose(perm) }));
      const outShape = perm.map((p) => shape[p]!);
      expect(out.y!.shape).toEqual(outShape);
      // out[i0,i1,i2] = x[c] with c[perm[k]] = i_k
      const want: number[] = [];
      for (let i0 = 0; i0 < outShape[0]!; i0++) {
        for (let i1 = 0; i1 < outShape[1]!; i1++) {
          for (let i2 = 0; i2 < outShape[2]!; i2++) {
            const c = [0, 0, 0];
            [i0, i1, i2].forEach((v, k) => (c[perm[k]!] = v));
            want.push(c[0]! * 12 + c[1]! * 4 + c[2]!);
          }
        }
      }
      expect(Array.from(out.y!.data)).toEqual(want);
    });
  }

  it("refuses a perm that is not a permutation", () => {
    const msg = errorMessage(() => evalOutputs((g) => ({ y: g.input("x", [2, 3]).transpose([0, 0]) })));
    expect(msg).toMatch(/^transpose/);
    expect(msg).toMatch(/\[2,3\]/);
  });
});

describe("broadcastTo", () => {
  it("repeats size-1 axes and adds leading ones", () => {
    const out = evalOutputs((g) => {
      const col = g.const([[1], [2]]); // [2,1]
      return { a: col.broadcastTo([2, 3]), b: col.broadcastTo([2, 2, 2]), s: g.const(7).broadcastTo([2, 2]) };
    });
    expect(out.a!.shape).toEqual([2, 3]);
    expect(Array.from(out.a!.data)).toEqual([1, 1, 1, 2, 2, 2]);
    expect(out.b!.shape).toEqual([2, 2, 2]);
    expect(Array.from(out.b!.data)).toEqual([1, 1, 2, 2, 1, 1, 2, 2]);
    expect(Array.from(out.s!.data)).toEqual([7, 7, 7, 7]);
  });

  it("refuses to shrink or to change a non-1 axis", () => {
    expect(errorMessage(() => evalOutputs((g) => ({ y: g.input("x", [2, 3]).broadcastTo([3]) })))).toMatch(/^broadcastTo.*\[2,3\]/);
    expect(errorMessage(() => evalOutputs((g) => ({ y: g.input("x", [2, 3]).broadcastTo([4, 3]) })))).toMatch(/^broadcastTo.*\[4,3\]/);
  });
});

describe("expandDims and squeeze", () => {
  it("expandDims inserts a size-1 axis at a positive or negative position", () => {
    const out = evalOutputs((g) => {
      const x = g.const(iota(6), [2, 3]);
      return { a: x.expandDims(0), b: x.expandDims(1), c: x.expandDims(-1), d: x.expandDims(2) };
    });
    expect(out.a!.shape).toEqual([1, 2, 3]);
    expect(out.b!.shape).toEqual([2, 1, 3]);
    expect(out.c!.shape).toEqual([2, 3, 1]);
    expect(out.d!.shape).toEqual([2, 3, 1]);
    expect(Array.from(out.b!.data)).toEqual(iota(6));
  });

  it("squeeze drops all size-1 axes, or the ones named", () => {
    const out = evalOutputs((g) => {
      const x = g.const(iota(6), [1, 2, 1, 3, 1]);
      return { all: x.squeeze(), one: x.squeeze(2), neg: x.squeeze(-1), two: x.squeeze([0, -1]) };
    });
    expect(out.all!.shape).toEqual([2, 3]);
    expect(out.one!.shape).toEqual([1, 2, 3, 1]);
    expect(out.neg!.shape).toEqual([1, 2, 1, 3]);
    expect(out.two!.shape).toEqual([2, 1, 3]);
    expect(Array.from(out.all!.data)).toEqual(iota(6));
  });

  it("refuse axes out of range or not of size 1", () => {
    expect(errorMessage(() => evalOutputs((g) => ({ y: g.input("x", [2, 3]).expandDims(4) })))).toMatch(/^expandDims.*axis 4/);
    const msg = errorMessage(() => evalOutputs((g) => ({ y: g.input("x", [2, 3]).squeeze(1) })));
    expect(msg).toMatch(/^squeeze/);
    expect(msg).toMatch(/\[2,3\]/);
  });
});
