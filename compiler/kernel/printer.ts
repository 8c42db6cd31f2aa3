// The kernel IR printer: one kernel as indented loop nests, stable (the same
// kernel prints the same text) and readable, for golden files, errors and
// `gradc inspect --kir`. Expressions print infix with the fewest parentheses
// that keep their meaning.
import type { BinOp, Expr, Stmt } from "./kir.js";

/** Binding strength of a printed binary operator (higher binds tighter); calls print as max(a, b). */
const PRECEDENCE: Partial<Record<BinOp, number>> = {
  "||": 1, "&&": 2, "==": 3, "!=": 3, "<": 4, "<=": 4, ">": 4, ">=": 4, "+": 5, "-": 5, "*": 6, "/": 6, idiv: 6, mod: 6,
};
/** Infix spelling where it differs from the operator's name. */
const INFIX: Partial<Record<BinOp, string>> = { idiv: "//", mod: "%" };

/** A number as printed: integers plainly, others with enough digits to read back exactly. */
function numText(v: number): string {
  if (Object.is(v, -0)) return "-0";
  return String(v);
}

/** An expression as text; `outer` is the precedence of the context (0: none). */
export function printExpr(e: Expr, outer = 0): string {
  switch (e.k) {
    case "num": return e.v < 0 && outer > 0 ? `(${numText(e.v)})` : numText(e.v);
    case "var": return e.name;
    case "base": return `&${e.buf}`;
    case "form": return `form${e.form}`;
    case "load": return `${e.buf}${e.abs ? "@" : ""}[${printExpr(e.index)}]`;
    case "un": return e.op === "neg" ? `-${printExpr(e.a, 7)}` : `${e.op}(${printExpr(e.a)})`;
    case "bin": {
      const p = PRECEDENCE[e.op];
      if (p === undefined) return `${e.op}(${printExpr(e.a)}, ${printExpr(e.b)})`;
      // left-associative: the right operand of an equal-precedence operator keeps its parentheses
      const text = `${printExpr(e.a, p)} ${INFIX[e.op] ?? e.op} ${printExpr(e.b, p + 1)}`;
      return p < outer ? `(${text})` : text;
    }
    case "sel": {
      const text = `${printExpr(e.c, 1)} ? ${printExpr(e.a, 1)} : ${printExpr(e.b, 1)}`;
      return outer > 0 ? `(${text})` : text;
    }
    default: return e satisfies never;
  }
}

/** Statements as lines, indented two spaces per level. */
export function printStmts(stmts: readonly Stmt[], indent = 0): string[] {
  const pad = "  ".repeat(indent);
  const out: string[] = [];
  const block = (head: string, body: readonly Stmt[]) => out.push(`${pad}${head} {`, ...printStmts(body, indent + 1), `${pad}}`);
  for (const s of stmts) {
    switch (s.k) {
      case "for": {
        block(`for ${s.v} in ${s.from}..${s.to} ${s.mark}${s.vectorizable ? " vector" : ""}`, s.body);
        break;
      }
      case "let": out.push(`${pad}let ${s.name} = ${printExpr(s.init)}`); break;
      case "set": out.push(`${pad}${s.name} = ${printExpr(s.value)}`); break;
      case "store":
        out.push(`${pad}${s.buf}${s.abs ? "@" : ""}[${printExpr(s.index)}] ${s.add ? "+=" : "="} ${printExpr(s.value)}`);
        break;
      case "scatterAdd": out.push(`${pad}scatter-add ${s.buf}[${printExpr(s.index)}] += ${printExpr(s.value)}`); break;
      case "if":
        out.push(`${pad}if ${printExpr(s.c)} {`, ...printStmts(s.then, indent + 1));
        if (s.else) out.push(`${pad}} else {`, ...printStmts(s.else, indent + 1));
        out.push(`${pad}}`);
        break;
      case "extern": block(`extern ${s.call}`, s.reference); break;
      case "comment": out.push(`${pad}# ${s.text.replace(/[\r\n\u2028\u2029]+/g, " ")}`); break;
      default: s satisfies never;
    }
  }
  return out;
}

/** A buffer as a kernel's header lists it. */
export interface PrintedBuffer {
  readonly name: string;
  readonly size: number;
  /** What it holds (a node's printed name, a param, ...), if known. */
  readonly label?: string;
}

/**
 * One kernel: a header with its name and buffers (`name[size]` and, quoted,
 * what each holds), then its body.
 *
 *   kernel matmul_x_W1_add(out[32] = "h", in0[8] = "x", in1[16] = "W1") {
 *     for i in 0..4 parallel { ... }
 *   }
 */
export function printKernel(name: string, buffers: readonly PrintedBuffer[], body: readonly Stmt[]): string {
  const params = buffers.map((b) => `${b.name}[${b.size}]${b.label !== undefined && b.label !== b.name ? ` = ${JSON.stringify(b.label)}` : ""}`);
  return [`kernel ${name}(${params.join(", ")}) {`, ...printStmts(body, 1), "}", ""].join("\n");
}
