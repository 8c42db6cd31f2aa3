// Index expressions as affine functions of variables (Σ coefficient·variable
// + constant), for passes that re-address loads and stores. Indexes are
// integers far below 2^53, so rewriting one in another affine form computes
// the same number.
import type { Expr } from "./kir.js";
import { addE, mulE, num, ref } from "./kir.js";

/** Σ coefficient·variable + k, variables in first-seen order. */
export interface Affine {
  readonly terms: ReadonlyMap<string, number>;
  readonly k: number;
}

/** `e` as an affine function of the variables `allowed` accepts (all, by default), or undefined. */
export function affineOf(e: Expr, allowed: (name: string) => boolean = () => true): Affine | undefined {
  switch (e.k) {
    case "num": return Number.isInteger(e.v) ? { terms: new Map(), k: e.v } : undefined;
    case "var": return allowed(e.name) ? { terms: new Map([[e.name, 1]]), k: 0 } : undefined;
    case "bin": {
      if (e.op !== "+" && e.op !== "-" && e.op !== "*") return undefined;
      const a = affineOf(e.a, allowed);
      const b = a && affineOf(e.b, allowed);
      if (!a || !b) return undefined;
      if (e.op === "*") {
        const [x, y] = a.terms.size === 0 ? [b, a.k] : b.terms.size === 0 ? [a, b.k] : [undefined, 0];
        return x ? { terms: new Map([...x.terms].map(([v, c]) => [v, c * y])), k: x.k * y } : undefined;
      }
      const s = e.op === "+" ? 1 : -1;
      const terms = new Map(a.terms);
      for (const [v, c] of b.terms) terms.set(v, (terms.get(v) ?? 0) + s * c);
      return { terms, k: a.k + s * b.k };
    }
    default: return undefined;
  }
}

/** An affine function as an expression: Σ coefficient·variable + k (zero terms left out). */
export function affineExpr(a: Affine): Expr {
  let e: Expr = num(0);
  for (const [v, c] of a.terms) if (c !== 0) e = addE(e, mulE(ref(v), c));
  return addE(e, a.k);
}

/** An index in its shortest affine form (constants folded), or itself when it is not affine. */
export function foldIndex(e: Expr): Expr {
  const a = affineOf(e);
  return a ? affineExpr(a) : e;
}
