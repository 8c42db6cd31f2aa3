// Lowers kernel IR to JavaScript/TypeScript source text (shared by the TS
// emitter and by tests that run one kernel). Buffer names map to array
// expressions and base offsets chosen by the caller.
import type { BinOp, BinOpTable, Expr, Stmt, UnOpTable } from "../../kernel/kir.js";

/** How a kernel buffer name appears in code: an array expression and a base offset. */
export interface BufferBinding {
  readonly array: string;
  readonly offset: number;
  /** Elements are bfloat16 bits (arena H): a load widens one to f32, a store rounds to bfloat16 (BF16_HELPERS). */
  readonly bf16?: boolean;
}

/**
 * The module-level functions that code over bfloat16 elements calls, in
 * TypeScript (`typed`) or JavaScript. bfloat16 is the upper half of a
 * float32: widening shifts its bits up; narrowing rounds a value to f32, then
 * to the nearest bfloat16, ties to even (a NaN stays a quiet NaN, overflow
 * gives ±Infinity).
 */
export function bf16Helpers(typed: boolean): string {
  const n = typed ? ": number" : "";
  return [
    "const BF16_F32 = new Float32Array(1);",
    "const BF16_U32 = new Uint32Array(BF16_F32.buffer);",
    `const bf16Bits = (x${n})${n} => {`,
    "  BF16_F32[0] = x;",
    `  const u = BF16_U32[0]${typed ? " as number" : ""};`,
    "  if ((u & 0x7fffffff) > 0x7f800000) return (u >>> 16) | 0x40;",
    "  return (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;",
    "};",
    `const bf16Value = (h${n})${n} => {`,
    "  BF16_U32[0] = h << 16;",
    `  return BF16_F32[0]${typed ? " as number" : ""};`,
    "};",
    `const bf16Round = (x${n})${n} => bf16Value(bf16Bits(x));`,
  ].join("\n");
}

/** Names `bf16Helpers` declares. */
export const BF16_NAMES: readonly string[] = ["BF16_F32", "BF16_U32", "bf16Bits", "bf16Value", "bf16Round"];

export type Bindings = (buf: string) => BufferBinding;

/** JS text of an `extern` statement, supplied by the backend whose pass placed it. */
export type ExternJs = (s: Stmt & { k: "extern" }) => string[];

const noExterns: ExternJs = (s) => {
  throw new Error(`emit: extern ${s.call} has no emitter in this backend`);
};

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

/** JS of each unary operator (see UN_OPS in kir.ts for what each means), given its operand's text. */
const UNARY: UnOpTable<(a: string) => string> = {
  // a negative literal under a minus is parenthesized: "-" + "-1" would read as the decrement "--1"
  neg: (a) => `(${minus(a)})`,
  exp: (a) => `Math.exp(${a})`,
  log: (a) => `Math.log(${a})`,
  log1p: (a) => `Math.log1p(${a})`,
  sqrt: (a) => `Math.sqrt(${a})`,
  rsqrt: (a) => `(1 / Math.sqrt(${a}))`,
  abs: (a) => `Math.abs(${a})`,
  sign: (a) => `Math.sign(${a})`,
  sin: (a) => `Math.sin(${a})`,
  cos: (a) => `Math.cos(${a})`,
  tanh: (a) => `Math.tanh(${a})`,
  sigmoid: (a) => `(1 / (1 + Math.exp(${minus(a)})))`,
  floor: (a) => `Math.floor(${a})`,
  not: (a) => `(${a} ? 0 : 1)`,
  toInt: (a) => `(${a} | 0)`,
  fround: (a) => `Math.fround(${a})`,
  bf16: (a) => `bf16Round(${a})`,
};

function minus(a: string): string {
  return a.startsWith("-") ? `-(${a})` : `-${a}`;
}

/** JS of each binary operator, given its operands' text; comparisons give 1 or 0, not booleans. */
const BINARY: BinOpTable<(a: string, b: string) => string> = {
  "+": infix("+"),
  "-": infix("-"),
  "*": infix("*"),
  "/": infix("/"),
  max: (a, b) => `Math.max(${a}, ${b})`,
  min: (a, b) => `Math.min(${a}, ${b})`,
  pow: (a, b) => `Math.pow(${a}, ${b})`,
  "<": test("<"),
  "<=": test("<="),
  ">": test(">"),
  ">=": test(">="),
  "==": test("==="),
  "!=": test("!=="),
  "&&": test("&&"),
  "||": test("||"),
  idiv: (a, b) => `Math.floor(${a} / ${b})`,
  mod: (a, b) => `(${a} % ${b})`,
};

function infix(op: BinOp): (a: string, b: string) => string {
  return (a, b) => `(${a} ${op} ${b})`;
}

function test(op: string): (a: string, b: string) => string {
  return (a, b) => `(${a} ${op} ${b} ? 1 : 0)`;
}

/** An expression as JS source, fully parenthesized where precedence matters. */
export function exprJs(e: Expr, bind: Bindings): string {
  switch (e.k) {
    case "num": return numLit(e.v);
    case "var": return e.name;
    case "base": return numLit(bind(e.buf).offset);
    case "form": throw new Error(`emit: form placeholder form${e.form} left in a kernel`);
    case "load": {
      const b = bind(e.buf);
      const element = elementJs(b, e.index, bind, e.abs);
      return b.bf16 ? `bf16Value(${element})` : element;
    }
    case "un": return UNARY[e.op](exprJs(e.a, bind));
    case "bin": return BINARY[e.op](exprJs(e.a, bind), exprJs(e.b, bind));
    case "sel": return `(${exprJs(e.c, bind)} ? ${exprJs(e.a, bind)} : ${exprJs(e.b, bind)})`;
    default: return e satisfies never;
  }
}

/** `element = value` (or `+=`); a bfloat16 element is widened, added to and rounded back. */
function storeJs(b: BufferBinding, element: string, value: string, add: boolean): string {
  if (!b.bf16) return `${element} ${add ? "+=" : "="} ${value}`;
  return `${element} = bf16Bits(${add ? `bf16Value(${element}) + ${value}` : value})`;
}

/** Statements as JS source lines, indented by `indent` levels of two spaces. */
export function stmtsJs(stmts: readonly Stmt[], bind: Bindings, indent = 0, externs: ExternJs = noExterns): string[] {
  const pad = "  ".repeat(indent);
  const out: string[] = [];
  for (const s of stmts) {
    switch (s.k) {
      case "for":
        out.push(`${pad}for (let ${s.v} = ${s.from}; ${s.v} < ${s.to}; ${s.v}++) {`, ...stmtsJs(s.body, bind, indent + 1, externs), `${pad}}`);
        break;
      case "let": out.push(`${pad}let ${s.name} = ${exprJs(s.init, bind)};`); break;
      case "set": out.push(`${pad}${s.name} = ${exprJs(s.value, bind)};`); break;
      case "store":
        out.push(`${pad}${storeJs(bind(s.buf), elementJs(bind(s.buf), s.index, bind, s.abs), exprJs(s.value, bind), s.add === true)};`);
        break;
      case "scatterAdd":
        // one thread: the += is the whole of the scatter
        out.push(`${pad}${storeJs(bind(s.buf), elementJs(bind(s.buf), s.index, bind), exprJs(s.value, bind), true)};`);
        break;
      case "extern": out.push(...externs(s).map((line) => `${pad}${line}`)); break;
      case "if":
        out.push(`${pad}if (${exprJs(s.c, bind)}) {`, ...stmtsJs(s.then, bind, indent + 1, externs));
        if (s.else) out.push(`${pad}} else {`, ...stmtsJs(s.else, bind, indent + 1, externs));
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
