// Maths terms for `gradc inspect --math`: a small expression tree with
// constructors that tidy as they build (x + x = 2·x, −(−x) = x, 2·(0.25·x) =
// 0.5·x) and a renderer that writes ᵀ, ⊙, Σ and masks with few parentheses.

/** A chain-rule expression. `name` leaves are user names, printer letters or δ names. */
export type Term =
  | { readonly k: "name"; readonly text: string }
  | { readonly k: "num"; readonly v: number }
  /** c·a for a number c */
  | { readonly k: "scale"; readonly c: number; readonly a: Term }
  | { readonly k: "add"; readonly a: Term; readonly b: Term }
  | { readonly k: "sub"; readonly a: Term; readonly b: Term }
  | { readonly k: "neg"; readonly a: Term }
  /** elementwise product a ⊙ b */
  | { readonly k: "had"; readonly a: Term; readonly b: Term }
  | { readonly k: "div"; readonly a: Term; readonly b: Term }
  /** matrix product a · b */
  | { readonly k: "dot"; readonly a: Term; readonly b: Term }
  | { readonly k: "T"; readonly a: Term }
  /** a ⊙ [cond]: a where cond holds, else 0 */
  | { readonly k: "mask"; readonly a: Term; readonly cond: Term }
  | { readonly k: "cmp"; readonly op: string; readonly a: Term; readonly b: Term }
  | { readonly k: "not"; readonly a: Term }
  | { readonly k: "pow"; readonly a: Term; readonly e: number }
  | { readonly k: "call"; readonly f: string; readonly args: readonly Term[] };

export const name = (text: string): Term => ({ k: "name", text });
export const num = (v: number): Term => ({ k: "num", v });
export const T = (a: Term): Term => (a.k === "T" ? a.a : { k: "T", a });
export const dot = (a: Term, b: Term): Term => ({ k: "dot", a, b });
export const div = (a: Term, b: Term): Term => ({ k: "div", a, b });
export const pow = (a: Term, e: number): Term => (e === 1 ? a : { k: "pow", a, e });
export const call = (f: string, ...args: Term[]): Term => ({ k: "call", f, args });
export const cmp = (op: string, a: Term, b: Term): Term => ({ k: "cmp", op, a, b });
export const mask = (a: Term, cond: Term): Term => ({ k: "mask", a, cond });

/** c·a, merging numbers: 2·(0.25·x) = 0.5·x, 1·x = x, −1·x = −x. */
export function scale(c: number, a: Term): Term {
  if (a.k === "num") return num(c * a.v);
  if (a.k === "scale") return scale(c * a.c, a.a);
  if (a.k === "neg") return scale(-c, a.a);
  if (c === 1) return a;
  if (c === -1) return neg(a);
  return { k: "scale", c, a };
}

/** −a, cancelling double negation and folding into numbers and scales. */
export function neg(a: Term): Term {
  if (a.k === "neg") return a.a;
  if (a.k === "num") return num(-a.v);
  if (a.k === "scale") return scale(-a.c, a.a);
  return { k: "neg", a };
}

/** a + b; x + x = 2·x. */
export function add(a: Term, b: Term): Term {
  if (render(a) === render(b)) return scale(2, a);
  return { k: "add", a, b };
}

/** a − b. */
export function sub(a: Term, b: Term): Term {
  return { k: "sub", a, b };
}

/** a ⊙ b, with numbers written as scales. */
export function had(a: Term, b: Term): Term {
  if (a.k === "num") return scale(a.v, b);
  if (b.k === "num") return scale(b.v, a);
  return { k: "had", a, b };
}

/** ¬a; a negated comparison flips instead (¬(b > 0) is b ≤ 0). */
export function not(a: Term): Term {
  const flip: Record<string, string> = { ">": "≤", "≤": ">", "<": "≥", "≥": "<", "=": "≠", "≠": "=" };
  if (a.k === "cmp" && flip[a.op]) return cmp(flip[a.op]!, a.a, a.b);
  if (a.k === "not") return a.a;
  return { k: "not", a };
}

const SUB_DIGITS = "₀₁₂₃₄₅₆₇₈₉";
const SUP_DIGITS = "⁰¹²³⁴⁵⁶⁷⁸⁹";

/** 12 → "₁₂"; axes [0, 2] → "₀,₂". */
export function subscript(n: number | readonly number[]): string {
  const one = (k: number) => [...String(k)].map((d) => SUB_DIGITS[Number(d)] ?? d).join("");
  return typeof n === "number" ? one(n) : n.map(one).join(",");
}

function superscript(e: number): string | undefined {
  if (!Number.isInteger(e) || e < 0) return undefined;
  return [...String(e)].map((d) => SUP_DIGITS[Number(d)]!).join("");
}

/** A number as maths: six significant digits at most, a true minus sign. */
export function numText(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "∞" : "−∞";
  const s = String(Number(v.toPrecision(6)));
  return s.replace("-", "−");
}

/** Binding strength: 5 atoms and postfix, 3 prefix minus, 2 products, 1 sums, 0 comparisons. */
function prec(t: Term): number {
  switch (t.k) {
    case "name":
    case "call":
    case "T":
    case "pow":
      return 5;
    case "num":
      return t.v < 0 || Object.is(t.v, -0) ? 3 : 5;
    case "neg":
    case "not":
      return 3;
    case "scale":
      return t.c < 0 ? 3 : 2;
    case "had":
    case "div":
    case "dot":
    case "mask":
      return 2;
    case "add":
    case "sub":
      return 1;
    case "cmp":
      return 0;
    default:
      return t satisfies never;
  }
}

/** `t` rendered, in parentheses unless it binds at least as tightly as `min`. */
function wrap(t: Term, min: number): string {
  const s = render(t);
  return prec(t) >= min ? s : `(${s})`;
}

/** Elementwise products chain without parentheses: a ⊙ b ⊙ [c]. */
const isHad = (t: Term): boolean => t.k === "had" || t.k === "mask";

/** The term as one line of maths. */
export function render(t: Term): string {
  switch (t.k) {
    case "name":
      return t.text;
    case "num":
      return numText(t.v);
    case "scale": {
      const c = numText(Math.abs(t.c));
      return `${t.c < 0 ? "−" : ""}${c}·${wrap(t.a, 3)}`;
    }
    case "add": {
      // a + (−x) reads as a − x
      if (t.b.k === "neg") return `${wrap(t.a, 1)} − ${wrap(t.b.a, 2)}`;
      if (t.b.k === "scale" && t.b.c < 0) return `${wrap(t.a, 1)} − ${render(scale(-t.b.c, t.b.a))}`;
      return `${wrap(t.a, 1)} + ${wrap(t.b, 2)}`;
    }
    case "sub":
      return `${wrap(t.a, 1)} − ${wrap(t.b, 2)}`;
    case "neg":
      return `−${wrap(t.a, 3)}`;
    case "not":
      return `¬${wrap(t.a, 3)}`;
    case "had":
      return `${isHad(t.a) ? render(t.a) : wrap(t.a, 3)} ⊙ ${isHad(t.b) ? render(t.b) : wrap(t.b, 3)}`;
    case "mask":
      return `${isHad(t.a) ? render(t.a) : wrap(t.a, 3)} ⊙ [${render(t.cond)}]`;
    case "div":
      return `${wrap(t.a, 3)} / ${wrap(t.b, 5)}`;
    case "dot":
      // a · b · c is (a · b) · c; a right operand that is a product keeps its parentheses
      return `${t.a.k === "dot" ? render(t.a) : wrap(t.a, 3)} · ${wrap(t.b, 3)}`;
    case "T":
      return `${wrap(t.a, 5)}ᵀ`;
    case "pow": {
      const sup = superscript(t.e);
      return sup ? `${wrap(t.a, 5)}${sup}` : `${wrap(t.a, 5)}^${numText(t.e)}`;
    }
    case "cmp":
      return `${wrap(t.a, 1)} ${t.op} ${wrap(t.b, 1)}`;
    case "call":
      return `${t.f}(${t.args.map(render).join(", ")})`;
    default:
      return t satisfies never;
  }
}
