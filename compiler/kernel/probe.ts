// The checked form of a fused kernel, for --check-numerics: the same
// statements (so the same results), and after each local that holds a graph
// node's element, a test that records which node turned finite operands into
// NaN or infinity. A fused kernel stores only some of the nodes it computes;
// this names the one that made the value, not the first one stored after it.
import type { Expr, Stmt } from "./kir.js";
import { bin, if_, load, num, ref, store } from "./kir.js";

/** The name of the flags buffer a checked kernel writes: one element per node, 1 once that node made a non-finite value. */
export const PROBE_FLAGS = "$nf";

/** Non-zero where `e` is NaN or ±Infinity (e - e is NaN exactly then). */
const nonFinite = (e: Expr): Expr => bin("!=", bin("-", e, e), 0);
const finite = (e: Expr): Expr => bin("==", bin("-", e, e), 0);

/** The operands an expression reads, other than `self`: locals and loads (a load's index is not looked into). */
function leaves(e: Expr, self: string): Expr[] {
  const out = new Map<string, Expr>();
  const walk = (x: Expr): void => {
    switch (x.k) {
      case "var":
        if (x.name !== self) out.set(x.name, x);
        return;
      case "load":
        out.set(JSON.stringify(x), x);
        return;
      case "un": return walk(x.a);
      case "bin": walk(x.a); return walk(x.b);
      case "sel": walk(x.c); walk(x.a); return walk(x.b);
      case "num": case "base": case "form": return;
      default: return x satisfies never;
    }
  };
  walk(e);
  return [...out.values()];
}

/**
 * `body` with a test after every `let` or `set` of a local in `probes` (local
 * → the index of the node whose element it holds): when the local is not
 * finite but every operand of its expression is, flag `flags`[index] is set
 * to 1. An accumulator's own previous value is not an operand (`acc = acc + x`
 * is flagged when it overflows with x finite). Extern statements are left as
 * they are: the target's own code is not checked inside.
 */
export function probedBody(body: readonly Stmt[], probes: ReadonlyMap<string, number>, flags = PROBE_FLAGS): Stmt[] {
  const check = (name: string, value: Expr): Stmt[] => {
    const i = probes.get(name);
    // a literal (an accumulator's start) is what it is
    if (i === undefined || value.k === "num") return [];
    const tests = [nonFinite(ref(name)), bin("==", load(flags, i), 0), ...leaves(value, name).map(finite)];
    return [if_(tests.reduce((a, b) => bin("&&", a, b)), [store(flags, i, num(1))])];
  };
  const walk = (stmts: readonly Stmt[]): Stmt[] =>
    stmts.flatMap((s): Stmt[] => {
      switch (s.k) {
        case "let": return [s, ...check(s.name, s.init)];
        case "set": return [s, ...check(s.name, s.value)];
        case "for": return [{ ...s, body: walk(s.body) }];
        case "if": return [{ ...s, then: walk(s.then), ...(s.else ? { else: walk(s.else) } : {}) }];
        case "store": case "scatterAdd": case "extern": case "comment": return [s];
        default: return s satisfies never;
      }
    });
  return walk(body);
}
