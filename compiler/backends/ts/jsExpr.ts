// Lowers kernel IR to JavaScript/TypeScript source text (shared by the TS
// emitter and by tests that run one kernel). Buffer names map to array
// expressions and base offsets chosen by the caller.
import type { Expr, Stmt } from "../../kernel/kir.js";
import { BASE_PREFIX } from "../../kernel/kir.js";

/** How a kernel buffer name appears in code: an array expression and a base offset. */
export interface BufferBinding {
  readonly array: string;
  readonly offset: number;
}

export type Bindings = (buf: string) => BufferBinding;

/** Numbers as JS literals (NaN and infinities included). */
export function numLit(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "Infinity";
  if (v === -Infinity) return "-Infinity";
  if (Object.is(v, -0)) return "-0";
  return String(v);
}

/** `array[offset + index]`, with a literal index folded into the offset (`abs`: the index is an arena offset). */
function elementJs(b: BufferBinding, index: Expr, bind: Bindings, abs = false): string {
  if (abs) return `${b.array}[${exprJs(index, bind)}]`;
  if (index.k === "num") return `${b.array}[${b.offset + index.v}]`;
  const idx = exprJs(index, bind);
  return `${b.array}[${b.offset ? `${b.offset} + ${idx}` : idx}]`;
}

const CALL: Partial<Record<string, string>> = {
  exp: "Math.exp", log: "Math.log", log1p: "Math.log1p", sqrt: "Math.sqrt", abs: "Math.abs", sign: "Math.sign",
  sin: "Math.sin", cos: "Math.cos", tanh: "Math.tanh", floor: "Math.floor", fround: "Math.fround",
};

/** An expression as JS source, fully parenthesized where precedence matters. */
export function exprJs(e: Expr, bind: Bindings): string {
  switch (e.k) {
    case "num": return numLit(e.v);
    case "var": return e.name.startsWith(BASE_PREFIX) ? numLit(bind(e.name.slice(BASE_PREFIX.length)).offset) : e.name;
    case "load": return elementJs(bind(e.buf), e.index, bind, e.abs);
    case "un": {
      const a = exprJs(e.a, bind);
      // a negative literal under a minus is parenthesized: "-" + "-1" would read as the decrement "--1"
      const minusA = a.startsWith("-") ? `-(${a})` : `-${a}`;
      switch (e.op) {
        case "neg": return `(${minusA})`;
        case "rsqrt": return `(1 / Math.sqrt(${a}))`;
        case "sigmoid": return `(1 / (1 + Math.exp(${minusA})))`;
        case "not": return `(${a} ? 0 : 1)`;
        case "toInt": return `(${a} | 0)`;
        default: return `${CALL[e.op]}(${a})`;
      }
    }
    case "bin": {
      const a = exprJs(e.a, bind);
      const b = exprJs(e.b, bind);
      switch (e.op) {
        case "max": return `Math.max(${a}, ${b})`;
        case "min": return `Math.min(${a}, ${b})`;
        case "pow": return `Math.pow(${a}, ${b})`;
        case "idiv": return `Math.floor(${a} / ${b})`;
        case "mod": return `(${a} % ${b})`;
        case "<": case "<=": case ">": case ">=": return `(${a} ${e.op} ${b} ? 1 : 0)`;
        case "==": return `(${a} === ${b} ? 1 : 0)`;
        case "!=": return `(${a} !== ${b} ? 1 : 0)`;
        case "&&": return `(${a} && ${b} ? 1 : 0)`;
        case "||": return `(${a} || ${b} ? 1 : 0)`;
        default: return `(${a} ${e.op} ${b})`;
      }
    }
    case "sel": return `(${exprJs(e.c, bind)} ? ${exprJs(e.a, bind)} : ${exprJs(e.b, bind)})`;
    default: return e satisfies never;
  }
}

/** Statements as JS source lines, indented by `indent` levels of two spaces. */
export function stmtsJs(stmts: readonly Stmt[], bind: Bindings, indent = 0): string[] {
  const pad = "  ".repeat(indent);
  const out: string[] = [];
  for (const s of stmts) {
    switch (s.k) {
      case "for":
        out.push(`${pad}for (let ${s.v} = ${s.from}; ${s.v} < ${s.to}; ${s.v}++) {`, ...stmtsJs(s.body, bind, indent + 1), `${pad}}`);
        break;
      case "let": out.push(`${pad}let ${s.name} = ${exprJs(s.init, bind)};`); break;
      case "set": out.push(`${pad}${s.name} = ${exprJs(s.value, bind)};`); break;
      case "store":
        out.push(`${pad}${elementJs(bind(s.buf), s.index, bind, s.abs)} ${s.add ? "+=" : "="} ${exprJs(s.value, bind)};`);
        break;
      case "if":
        out.push(`${pad}if (${exprJs(s.c, bind)}) {`, ...stmtsJs(s.then, bind, indent + 1));
        if (s.else) out.push(`${pad}} else {`, ...stmtsJs(s.else, bind, indent + 1));
        out.push(`${pad}}`);
        break;
      case "comment": out.push(`${pad}// ${s.text.replace(/[\r\n\u2028\u2029]+/g, " ")}`); break;
      default: s satisfies never;
    }
  }
  return out;
}

/**
 * Compiles statements to a function of its buffers, for tests and the
 * interpreter-vs-kernel checks: `fn(out, in0, in1, ...)` over plain arrays.
 */
export function kernelFunction(stmts: readonly Stmt[], inputs: number): (out: Float64Array, ...ins: Float64Array[]) => void {
  const params = ["out", ...Array.from({ length: inputs }, (_, i) => `in${i}`)];
  const body = stmtsJs(stmts, (buf) => ({ array: buf, offset: 0 })).join("\n");
  return new Function(...params, body) as (out: Float64Array, ...ins: Float64Array[]) => void;
}
