// Row loops that only move f32 words: a product's operand packing (gemmWasm.ts)
// without a prologue, the gather of a transpose. Each row's statements are
// stores whose values are loads or literals, directly in the row or in one
// inner loop, every index an affine function of the loops and the names from
// outside. Such a loop needs no arithmetic, so the module copies words (i32
// loads and stores: a copy keeps every bit, NaN payloads included) instead
// of widening each element to an f64 lane: the accesses that differ only by
// a constant share one address, advanced once per inner iteration and read
// at constant offsets, and four stores of consecutive words from four
// consecutive words become one v128 load and store. Packing a row-major
// operand into panels transposes: four rows' next four words, loaded as four
// v128, go out as four columns (a 4×4 transpose in eight shuffles), four
// iterations at once.
import type { Expr, Loop, Stmt } from "../../kernel/kir.js";
import { ADD, BR_IF, END, I32, LOOP, NE, V128, bump, get, i32, memarg, set, simd, uleb, vec } from "./wasm.js";
import { affineOf } from "../../kernel/affine.js";
import { BLOCK, BR, I32_GT_S } from "./simdRows.js";
import type { SimdRows } from "./simdRows.js";

/** One access: its buffer, its index's terms (none zero, by name) and constant, and the key of buffer and terms (accesses with one key differ by a constant). */
export interface Access {
  readonly buf: string;
  readonly key: string;
  readonly terms: ReadonlyMap<string, number>;
  readonly c: number;
}

/** An access of `buf` at `index`, where the index is affine (kernel/affine.ts), or undefined. */
export function accessOf(buf: string, index: Expr): Access | undefined {
  const a = affineOf(index);
  if (!a) return undefined;
  const terms = new Map([...a.terms].filter(([, k]) => k !== 0).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
  return { buf, key: `${buf}|${[...terms].map(([v, k]) => `${v}*${k}`).join("+")}`, terms, c: a.k };
}

/** Code that leaves buffer `at`'s address plus 4·(the terms but `skip`'s, each name read from its local, + `constant`) on the stack. */
export const addressCode = (at: number, terms: ReadonlyMap<string, number>, skip: string | undefined, constant: number, local: (name: string) => number): number[] => [
  ...get(at),
  ...[...terms].flatMap(([v, k]) => (v === skip ? [] : [...get(local(v)), ...i32(4 * k), MUL, ADD])),
  ...i32(4 * constant),
  ADD,
];

/** One word moved: to `to`, from `from` or the f32 literal `value`. */
interface Move {
  readonly to: Access;
  readonly from?: Access;
  readonly value?: number;
}

/** A row loop that only moves words: its moves, and the inner loop they run in (if any). */
export interface CopyRows {
  readonly rows: SimdRows;
  readonly inner?: { readonly v: string; readonly from: number; readonly to: number };
  readonly moves: readonly Move[];
}

/** The moves of a row loop that only moves words (see the file header), or undefined. */
export function copyRows(r: SimdRows): CopyRows | undefined {
  const body = r.loop.body.filter((s) => s.k !== "comment");
  let stores: readonly Stmt[] = body;
  let inner: Loop | undefined;
  if (body.length === 1 && body[0]!.k === "for") {
    inner = body[0];
    stores = inner.body.filter((s) => s.k !== "comment");
  }
  const moves: Move[] = [];
  for (const s of stores) {
    if (s.k !== "store" || s.add || s.abs) return undefined;
    const to = accessOf(s.buf, s.index);
    if (!to) return undefined;
    if (s.value.k === "num") moves.push({ to, value: s.value.v });
    else if (s.value.k === "load" && !s.value.abs) {
      const from = accessOf(s.value.buf, s.value.index);
      if (!from) return undefined;
      moves.push({ to, from });
    } else return undefined;
  }
  if (!moves.length) return undefined;
  // nothing read is written: the words may move in any grouping
  const written = new Set(moves.map((m) => m.to.buf));
  if (moves.some((m) => m.from && written.has(m.from.buf))) return undefined;
  // every name an index reads is the row's, the inner loop's or a parameter
  const known = new Set([r.loop.v, ...(inner ? [inner.v] : []), ...r.indexVars]);
  if (moves.some((m) => [...m.to.terms.keys(), ...(m.from ? m.from.terms.keys() : [])].some((v) => !known.has(v)))) return undefined;
  return { rows: r, inner: inner && { v: inner.v, from: inner.from, to: inner.to }, moves };
}

/**
 * Where the moves of an inner loop are quads that transpose (each quad: four
 * consecutive destination words, from four sources a fixed stride apart, each
 * source walking on by one word an iteration: a row-major operand packed
 * into panels), the index of each quad's first move; else undefined.
 */
export function transposeQuads(c: CopyRows): number[] | undefined {
  const inner = c.inner?.v;
  if (inner === undefined || c.moves.length % 4) return undefined;
  const quads: number[] = [];
  for (let i = 0; i < c.moves.length; i += 4) {
    const ms = c.moves.slice(i, i + 4);
    const [m0, m1] = [ms[0]!, ms[1]!];
    if (!m0.from || !m1.from) return undefined;
    const stride = m1.from.c - m0.from.c;
    const ok = ms.every(
      (m, q) =>
        m.from !== undefined && m.from.key === m0.from!.key && m.from.c === m0.from!.c + q * stride && m.from.terms.get(inner) === 1 &&
        m.to.key === m0.to.key && m.to.c === m0.to.c + q && (m.to.terms.get(inner) ?? 0) >= 4,
    );
    if (!ok || Math.abs(stride) < 4) return undefined;
    quads.push(i);
  }
  // the quads run four iterations each, one quad after another: that keeps the order of the stores only where no
  // word is stored twice, so every move stores to one address pattern at distinct offsets within one iteration's step
  const to = c.moves[0]!.to;
  const step = to.terms.get(inner) ?? 0;
  const offsets = new Set(c.moves.map((m) => m.to.c));
  const [lo, hi] = [Math.min(...offsets), Math.max(...offsets)];
  if (c.moves.some((m) => m.to.key !== to.key) || offsets.size !== c.moves.length || hi - lo >= step) return undefined;
  return quads;
}

/** Words a copy loop moves per row. */
export const copyWords = (c: CopyRows): number => c.moves.length * (c.inner ? c.inner.to - c.inner.from : 1);

const [I32_LOAD, I32_STORE, I32_EQZ, MUL] = [0x28, 0x36, 0x45, 0x6c];

/**
 * The function of a copy loop, with rowsFunction's parameters (buffer
 * addresses and index names, i32; then the range of rows [from, to)).
 */
export function copyFunction(c: CopyRows): { params: number[]; body: number[] } {
  const r = c.rows;
  const nb = r.buffers.length;
  const ni = r.indexVars.length;
  const params = [...new Array<number>(nb + ni).fill(I32), ...new Array<number>(r.valueVars.length).fill(0x7c), I32, I32];
  const [FROM, TO] = [params.length - 2, params.length - 1];
  const ROW = params.length;
  const P = ROW + 1;
  // one address per key, at its smallest constant
  const keys = new Map<string, { local: number; access: Access; min: number }>();
  for (const m of c.moves) {
    for (const a of m.from ? [m.to, m.from] : [m.to]) {
      const g = keys.get(a.key);
      if (!g) keys.set(a.key, { local: P + 1 + keys.size, access: a, min: a.c });
      else g.min = Math.min(g.min, a.c);
    }
  }
  const varLocal = (v: string): number => (v === r.loop.v ? ROW : c.inner && v === c.inner.v ? P : nb + r.indexVars.indexOf(v));
  const code: number[] = [];
  /** Each address at the row's first inner iteration. */
  const start = (): number[] =>
    [...keys.values()].flatMap((g) => {
      const first = g.min + (c.inner ? (g.access.terms.get(c.inner.v) ?? 0) * c.inner.from : 0);
      return [...addressCode(r.buffers.indexOf(g.access.buf), g.access.terms, c.inner?.v, first, varLocal), ...set(g.local)];
    });
  const at = (a: Access) => keys.get(a.key)!;
  const offset = (a: Access) => 4 * (a.c - at(a).min);
  /** Whether moves i..i+3 store four consecutive words from four consecutive words (or four literals). */
  const four = (i: number): boolean => {
    if (i + 4 > c.moves.length) return false;
    const ms = c.moves.slice(i, i + 4);
    const [m0] = ms;
    return ms.every((m, q) => {
      if (m.to.key !== m0!.to.key || m.to.c !== m0!.to.c + q) return false;
      if (m0!.from) return m.from !== undefined && m.from.key === m0!.from.key && m.from.c === m0!.from.c + q;
      return m.value !== undefined;
    });
  };
  const moves = (): number[] => {
    const out: number[] = [];
    for (let i = 0; i < c.moves.length; ) {
      const m = c.moves[i]!;
      if (four(i)) {
        out.push(...get(at(m.to).local));
        if (m.from) out.push(...get(at(m.from).local), ...simd(0x00), ...memarg(0, offset(m.from)));
        else out.push(...simd(0x0c), ...new Uint8Array(Float32Array.from(c.moves.slice(i, i + 4), (x) => x.value!).buffer));
        out.push(...simd(0x0b), ...memarg(0, offset(m.to)));
        i += 4;
        continue;
      }
      out.push(...get(at(m.to).local));
      if (m.from) out.push(...get(at(m.from).local), I32_LOAD, ...memarg(2, offset(m.from)));
      else out.push(...i32(new Int32Array(Float32Array.of(m.value!).buffer)[0]!));
      out.push(I32_STORE, ...memarg(2, offset(m.to)));
      i += 1;
    }
    out.push(...advance(1));
    return out;
  };
  /** The addresses `by` inner iterations on. */
  const advance = (by: number): number[] =>
    [...keys.values()].flatMap((g) => {
      const step = c.inner ? (g.access.terms.get(c.inner.v) ?? 0) : 0;
      return step ? bump(g.local, 4 * step * by) : [];
    });
  const quads = transposeQuads(c);
  // v128 locals of the transposes: four rows in, four pairs, (their columns out are stored at once)
  const V = P + 1 + keys.size;
  /** Four inner iterations of the moves as 4×4 transposes: each quad's four sources, four words on, are the four destinations' columns. */
  const transposed = (): number[] => {
    const out: number[] = [];
    for (const q of quads ?? []) {
      const ms = c.moves.slice(q, q + 4);
      ms.forEach((m, r) => out.push(...get(at(m.from!).local), ...simd(0x00), ...memarg(0, offset(m.from!)), ...set(V + r)));
      // pairs of rows interleaved (lanes 0 1 of rows 0 and 1, of rows 2 and 3; then lanes 2 3), then the pairs' halves joined
      const shuffle = (a: number, b: number, lanes: readonly number[]): number[] => [...get(a), ...get(b), ...simd(0x0d), ...lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3])];
      out.push(...shuffle(V, V + 1, [0, 4, 1, 5]), ...set(V + 4), ...shuffle(V + 2, V + 3, [0, 4, 1, 5]), ...set(V + 5));
      out.push(...shuffle(V, V + 1, [2, 6, 3, 7]), ...set(V + 6), ...shuffle(V + 2, V + 3, [2, 6, 3, 7]), ...set(V + 7));
      const to = ms[0]!.to;
      const stride = to.terms.get(c.inner!.v)!;
      [[V + 4, V + 5, [0, 1, 4, 5]], [V + 4, V + 5, [2, 3, 6, 7]], [V + 6, V + 7, [0, 1, 4, 5]], [V + 6, V + 7, [2, 3, 6, 7]]].forEach(([a, b, lanes], d) =>
        out.push(...get(at(to).local), ...shuffle(a as number, b as number, lanes as number[]), ...simd(0x0b), ...memarg(0, offset(to) + 4 * stride * d)),
      );
    }
    out.push(...advance(4));
    return out;
  };
  // for row in [from, to): addresses, then the inner loop's iterations (or the row's moves)
  code.push(...get(FROM), ...set(ROW));
  // leave when !(to > row)
  code.push(...BLOCK, ...LOOP, ...get(TO), ...get(ROW), I32_GT_S, I32_EQZ, BR_IF, 1);
  code.push(...start());
  if (c.inner) {
    const { from, to } = c.inner;
    // four iterations at a time as transposes where the moves are quads of them, then one at a time
    const main = quads ? Math.floor((to - from) / 4) * 4 : 0;
    code.push(...i32(from), ...set(P));
    if (main > 0) code.push(...LOOP, ...transposed(), ...get(P), ...i32(4), ADD, 0x22, ...uleb(P), ...i32(from + main), NE, BR_IF, 0, END);
    if (from + main < to) code.push(...LOOP, ...moves(), ...get(P), ...i32(1), ADD, 0x22, ...uleb(P), ...i32(to), NE, BR_IF, 0, END);
  } else {
    code.push(...moves());
  }
  code.push(...get(ROW), ...i32(1), ADD, ...set(ROW), BR, 0, END, END, END);
  const declared = vec([[...uleb(2 + keys.size), I32], ...(quads ? [[...uleb(8), V128]] : [])]);
  const fnBody = [...declared, ...code];
  return { params, body: [...uleb(fnBody.length), ...fnBody] };
}
