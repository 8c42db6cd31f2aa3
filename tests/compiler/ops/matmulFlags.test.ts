// matmul's transposition flags: every combination against an explicit
// transpose, its lowering against its eval, its VJPs against finite
// differences, and backward graphs without transposed copies.
import { describe, expect, it } from "vitest";
import { graph } from "../../../compiler/dsl/graph.js";
import type { Tensor } from "../../../compiler/ir/node.js";
import { grad } from "../../../compiler/autodiff/grad.js";
import { matmulT } from "../../../compiler/ops/matmul.js";
import { evalOutputs, errorMessage, expectAllClose, randomArray } from "../../helpers.js";
import { expectGradsMatchFD, expectHvpMatchesFD, expectLoweringMatches } from "./opChecks.js";

/** Swaps the last two sizes of a shape. */
const swap = (s: readonly number[]): number[] => [...s.slice(0, -2), s.at(-1)!, s.at(-2)!];

/** Swaps the last two axes with an explicit transpose (the reference). */
function swapAxes(t: Tensor): Tensor {
  const perm = t.shape.map((_, i) => i);
  perm.push(perm.splice(-2, 1)[0]!);
  return t.transpose(perm);
}

const FLAGS: readonly [boolean, boolean][] = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
];
const label = ([ta, tb]: readonly [boolean, boolean]) => `${ta ? "Aᵀ" : "A"}·${tb ? "Bᵀ" : "B"}`;

/** Shapes of op(A) and op(B): 2-D with sizes off the blocks of four, batched, broadcast batches, vectors. */
const CASES: readonly [number[], number[]][] = [
  [[5, 3], [3, 6]],
  [[4, 7], [7, 8]],
  [[9, 2], [2, 1]],
  [[1, 5], [5, 9]],
  [[2, 3, 4], [4, 5]],
  [[2, 1, 6, 3], [3, 3, 5]],
  [[3, 0], [0, 2]],
];

describe("matmul transposition flags", () => {
  for (const flags of FLAGS) {
    const [ta, tb] = flags;
    describe(label(flags), () => {
      it("equals the product of explicit transposes (eval)", () => {
        for (const [sa, sb] of CASES) {
          const a = randomArray(sa, 3);
          const b = randomArray(sb, 4);
          const out = evalOutputs((g) => {
            const A = g.const(a, sa, "f64");
            const B = g.const(b, sb, "f64");
            // store the operands transposed where a flag is set
            const As = ta ? swapAxes(A) : A;
            const Bs = tb ? swapAxes(B) : B;
            return { want: A.matmul(B), got: matmulT(As, Bs, ta, tb) };
          });
          expect(out.got!.shape).toEqual(out.want!.shape);
          expectAllClose(out.got!, out.want!, 1e-12);
        }
      });

      it("lowers to a kernel that matches eval", () => {
        for (const [sa, sb] of CASES) {
          const stA = ta ? swap(sa) : sa;
          const stB = tb ? swap(sb) : sb;
          expectLoweringMatches((g) => matmulT(g.input("a", stA, "f64"), g.input("b", stB, "f64"), ta, tb), {
            a: randomArray(stA, 5),
            b: randomArray(stB, 6),
          });
        }
      });

      it("has VJPs that match finite differences (first and second order)", () => {
        for (const [sa, sb] of CASES.slice(0, 6)) {
          const build = (g: Parameters<Parameters<typeof graph>[1]>[0]) => {
            const A = g.param("A", ta ? swap(sa) : sa, { dtype: "f64" });
            const B = g.param("B", tb ? swap(sb) : sb, { dtype: "f64" });
            // a nonlinear loss, so the second-order check is not trivially zero
            return matmulT(A, B, ta, tb).tanh().sum();
          };
          expectGradsMatchFD(build);
          expectHvpMatchesFD(build);
        }
      });
    });
  }

  it("prints only the flags that are set, and interns the plain product with the flag-free one", () => {
    const g = graph("flags", (b) => {
      const x = b.input("x", [4, 3]);
      const W = b.param("W", [4, 2]);
      const v = b.input("v", [3, 2]);
      const plain = x.matmul(v);
      expect(matmulT(x, v, false, false)).toBe(plain);
      return { outputs: { y: matmulT(x, W, true, false), plain } };
    });
    expect(g.outputs.y!.params).toEqual({ transposeA: true });
    expect(g.outputs.y!.shape).toEqual([3, 2]);
  });

  it("names flags in shape errors", () => {
    const msg = errorMessage(() => graph("bad", (b) => ({ outputs: { y: matmulT(b.input("x", [4, 3]), b.input("w", [4, 2]), false, false) } })));
    expect(msg).toMatch(/^matmul: inner sizes differ: \[4,3\] · \[4,2\] \(3 vs 4\)/);
    const flagged = errorMessage(() => graph("bad", (b) => ({ outputs: { y: matmulT(b.input("x", [4, 3]), b.input("w", [4, 2]), true, true) } })));
    expect(flagged).toMatch(/\[4,3\]ᵀ · \[4,2\]ᵀ \(4 vs 2\)/);
  });

  it("the backward of x·W is two flagged matmuls, with no transposed copy", () => {
    const g = grad(
      graph("dense", (b) => {
        const x = b.input("x", [4, 3]);
        const W = b.param("W", [3, 2]);
        const h = b.param("H", [2, 5]);
        return { loss: x.matmul(W).tanh().matmul(h).sum() };
      }),
    );
    const ops = g.nodes.map((t) => t.op);
    expect(ops).not.toContain("transpose");
    const flagged = g.nodes.filter((t) => t.op === "matmul" && t.origin).map((t) => t.params);
    // dH = tanhᵀ·δ; d(tanh) = δ·Hᵀ; dW = xᵀ·δ' (x is an input: no dx)
    expect(flagged).toEqual([{ transposeB: true }, { transposeA: true }, { transposeA: true }]);
  });
});
