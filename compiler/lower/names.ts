// Names at the boundary of generated code: user text becomes sanitized
// identifiers or neutralized comment text, never code. Also the printed
// binding of each node ("c:f32[4,8] = relu b"), as graphs/backward.txt shows it.
import type { Graph } from "../ir/graph.js";
import type { Tensor } from "../ir/node.js";
import { printGraphWithNames } from "../ir/printer.js";
import { literalValue } from "../ir/constants.js";

/** JS words an identifier must not be, plus the names every emitted module uses itself (a target adds its own: LoweringTarget.reservedNames). */
const RESERVED = new Set(
  (
    "break case catch class const continue debugger default delete do else enum export extends false finally for function if " +
    "import in instanceof new null return super switch this throw true try typeof var void while with yield let static " +
    "implements interface package private protected public await arguments eval undefined NaN Infinity Math F I create KERNELS " +
    // arena H of mixed precision and its bfloat16 conversions (backends/ts/jsExpr.ts)
    "H HALVES halvesOf BF16_F32 BF16_U32 bf16Bits bf16Value bf16Round"
  ).split(" "),
);

/**
 * A user name as an identifier fragment: only [A-Za-z0-9_], at most `max`
 * characters, never empty. Uniqueness is the caller's (see `Namer`).
 */
export function sanitize(name: string, max = 24): string {
  // runs of other characters become one underscore; none at the ends
  const s = name.replace(/[^A-Za-z0-9_]+/g, "_").replace(/_{2,}/g, "_").replace(/^_+|_+$/g, "").slice(0, max);
  return s.length ? s : "_";
}

/** Hands out unique identifiers: a taken base gets `_2`, `_3`, ... */
export class Namer {
  private readonly used = new Set<string>();

  /** `reserved`: more names no identifier may take (module-level names of the target's emitted code). */
  constructor(private readonly reserved: readonly string[] = []) {}

  /** A fresh identifier from `base` (sanitized again, so any text is safe). */
  fresh(base: string): string {
    let id = sanitize(base, 64);
    if (id === "_") id = "kernel";
    if (/^[0-9]/.test(id) || RESERVED.has(id) || this.reserved.includes(id)) id = `k_${id}`;
    let name = id;
    for (let n = 2; this.used.has(name); n++) name = `${id}_${n}`;
    this.used.add(name);
    return name;
  }
}

// Characters that end a line, reorder text (bidi controls) or are invisible.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

/**
 * Text that is safe inside a `/* *\/` or `//` comment: no comment terminator,
 * no line or paragraph separators, no control or bidi characters (shown as \uXXXX).
 */
export function commentText(text: string): string {
  return text
    .replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
    .replace(/\*\//g, "*\\/");
}

/** A node's printed binding and its short name. */
export interface Printed {
  /** The binding's name (a letter), or the input/param name, or a literal. */
  readonly name: string;
  /** The whole binding as the printer writes it, e.g. `c:f32[4,8] = relu b`. */
  readonly binding: string;
}

/**
 * Printed names of every node of `g`, as `printGraphWithNames(g)` assigns
 * them, so kernels, comments and graphs/backward.txt agree: inputs and params
 * by their own names, bound nodes by their letters, literals by their value.
 */
export function printedNodes(g: Graph): Map<Tensor, Printed> {
  const out = new Map<Tensor, Printed>();
  for (const i of g.inputs) out.set(i.node, { name: i.name, binding: `input ${JSON.stringify(i.name)}` });
  for (const p of g.params) out.set(p.node, { name: p.name, binding: `param ${JSON.stringify(p.name)}` });
  const { names, bindings } = printGraphWithNames(g, { comments: false });
  for (const [t, binding] of bindings) out.set(t, { name: names.get(t)!, binding });
  // the rest are the scalar and uniform consts the printer writes inline as literals
  for (const t of g.nodes) {
    if (!out.has(t)) {
      const v = literalValue(t)!;
      out.set(t, { name: String(v), binding: `const ${String(v)}:${t.dtype}[${t.shape.join(",")}]` });
    }
  }
  return out;
}
