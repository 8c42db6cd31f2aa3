// Patterns over IR nodes, as data: an op with input patterns, any node, or a
// literal (a constant with one value repeated). Matching binds names to nodes.
import type { Tensor } from "../ir/node.js";
import type { OpKind } from "../ir/kinds.js";
import { uniformConst } from "../ir/constants.js";

/** A tree that matches a node and its inputs. A name bound twice must bind one node. */
export type Pattern =
  /** Any node. */
  | { readonly kind: "any"; readonly name?: string }
  /** A node of one of `ops` whose inputs match `inputs` (absent: any inputs) and that passes `where`. */
  | {
      readonly kind: "op";
      readonly ops: readonly OpKind[];
      readonly inputs?: readonly Pattern[];
      readonly name?: string;
      readonly where?: (t: Tensor) => boolean;
    }
  /** A constant holding one value everywhere; `value` absent = any value. */
  | { readonly kind: "lit"; readonly value?: number; readonly name?: string };

/** Names bound by a match. */
export type Bindings = Readonly<Record<string, Tensor>>;

/** Matches any node, binding it to `name`. */
export function any(name?: string): Pattern {
  return name === undefined ? { kind: "any" } : { kind: "any", name };
}

/** Matches a uniform constant (of `value`, when given), binding it to `name`. */
export function lit(value?: number, name?: string): Pattern {
  return { kind: "lit", ...(value !== undefined ? { value } : {}), ...(name !== undefined ? { name } : {}) };
}

/** Matches a node of `ops` whose inputs match `inputs`; `opts.name` binds the node, `opts.where` filters it. */
export function op(
  ops: OpKind | readonly OpKind[],
  inputs?: readonly Pattern[],
  opts: { readonly name?: string; readonly where?: (t: Tensor) => boolean } = {},
): Pattern {
  return {
    kind: "op",
    ops: typeof ops === "string" ? [ops] : ops,
    ...(inputs ? { inputs } : {}),
    ...(opts.name !== undefined ? { name: opts.name } : {}),
    ...(opts.where ? { where: opts.where } : {}),
  };
}

/** Whether a literal pattern's value matches a constant's (0 matches −0: adding −0 is exact too). */
function sameValue(want: number, got: number): boolean {
  return want === got || (Number.isNaN(want) && Number.isNaN(got));
}

/** Binds `name` to `t`, or checks an earlier binding is the same node. */
function bind(out: Record<string, Tensor>, name: string | undefined, t: Tensor): boolean {
  if (name === undefined) return true;
  const prior = out[name];
  if (prior !== undefined) return prior === t;
  out[name] = t;
  return true;
}

function walk(p: Pattern, t: Tensor, out: Record<string, Tensor>): boolean {
  switch (p.kind) {
    case "any":
      return bind(out, p.name, t);
    case "lit": {
      const v = uniformConst(t);
      if (v === undefined || (p.value !== undefined && !sameValue(p.value, v))) return false;
      return bind(out, p.name, t);
    }
    case "op": {
      if (!p.ops.includes(t.op)) return false;
      if (p.inputs) {
        if (p.inputs.length !== t.inputs.length) return false;
        for (let i = 0; i < p.inputs.length; i++) if (!walk(p.inputs[i]!, t.inputs[i]!, out)) return false;
      }
      if (p.where && !p.where(t)) return false;
      return bind(out, p.name, t);
    }
    default:
      return p satisfies never;
  }
}

/** The bindings of `p` matched against `t`, or undefined when it does not match. */
export function match(p: Pattern, t: Tensor): Bindings | undefined {
  const out: Record<string, Tensor> = {};
  return walk(p, t, out) ? out : undefined;
}
