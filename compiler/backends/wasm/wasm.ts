// A small WebAssembly encoder and the SIMD matrix products emitted with it:
// C = A·B over f32 operands packed into the kernel's scratch memory (A in
// panels of 4 rows and B in panels of 8 columns, both walked p by p), in 4×8
// register tiles of eight f32x4 accumulators; A is broadcast with
// v128.load32_splat, B loaded whole. Sizes and offsets are baked in.

/** One product, with byte offsets in the module's memory. */
export interface WasmProduct {
  /** The exported function's name. */
  readonly name: string;
  /** Rows and columns of C that matter (the tiles round them up). */
  readonly m: number;
  readonly n: number;
  /** Panels of 4 rows of A (and C), panels of 8 columns of B (and C), and the summed size. */
  readonly rowPanels: number;
  readonly colPanels: number;
  readonly k: number;
  /** Byte offsets of packed A, packed B and C (row-major, colPanels·8 wide): the first batch's. */
  readonly a: number;
  readonly b: number;
  readonly c: number;
  /** A batched product: its batches (default 1) and the bytes from one batch's packed A, B and C to the next one's. */
  readonly batches?: number;
  readonly aBatch?: number;
  readonly bBatch?: number;
  readonly cBatch?: number;
}

/** Rows and columns of one register tile. */
export const TILE_ROWS = 4;
export const TILE_COLS = 8;

// The encoder's building blocks, shared by the products here and the SIMD math.
export const uleb = (n: number): number[] => {
  const out: number[] = [];
  let v = n >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
};

export const sleb = (n: number): number[] => {
  const out: number[] = [];
  let v = n | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
};

export const str = (s: string): number[] => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
export const section = (id: number, body: readonly number[]): number[] => [id, ...uleb(body.length), ...body];
export const vec = (items: readonly (readonly number[])[]): number[] => [...uleb(items.length), ...items.flat()];

export const I32 = 0x7f;
export const V128 = 0x7b;
export const LOOP = [0x03, 0x40];
export const END = 0x0b;
export const BR_IF = 0x0d;
export const get = (l: number) => [0x20, ...uleb(l)];
export const set = (l: number) => [0x21, ...uleb(l)];
export const i32 = (v: number) => [0x41, ...sleb(v)];
export const ADD = 0x6a;
export const NE = 0x47;
export const simd = (code: number) => [0xfd, ...uleb(code)];
export const memarg = (align: number, offset: number) => [...uleb(align), ...uleb(offset)];
export const v128Load = (offset: number) => [...simd(0x00), ...memarg(4, offset)];
export const v128Store = (offset: number) => [...simd(0x0b), ...memarg(4, offset)];
const splat32 = (offset: number) => [...simd(0x09), ...memarg(2, offset)];
export const F32X4_ADD = simd(0xe4);
export const F32X4_MUL = simd(0xe6);
export const ZERO = [...simd(0x0c), ...new Array<number>(16).fill(0)];
/** l += by */
export const bump = (l: number, by: number) => [...get(l), ...i32(by), ADD, ...set(l)];

/**
 * One product's body. Params 0, 1: the range [from, to) (a ranged product);
 * i32 locals: 2 ia (byte offset of the A panel in its batch), 3 jb (of the B
 * panel), 4 p, 5 pa, 6 pb, 7 pc (C tile), 8 row (C row block), 9 batch, 10
 * aBase, 11 bBase, 12 cBase (the batch's packed A, B and C); v128 locals: 13..20
 * accumulators, 21 b0, 22 b1, 23 a. An unbatched product's range is its column
 * panels: it computes only the columns of C in them, so threads can split one
 * product by column panels, each writing its own part of C. A batched
 * product's range is its batches, each computed whole. Without `ranged` the
 * params are absent and the range is everything.
 */
function productBody(x: WasmProduct, ranged: boolean): number[] {
  const [FROM, TO, IA, JB, P, PA, PB, PC, ROW, BAT, AB, BB, CB] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12] as const;
  const ACC = 13;
  const [B0, B1, A] = [21, 22, 23];
  // a batched product (even of one batch) is ranged over its batches
  const batched = x.batches !== undefined;
  const batches = x.batches ?? 1;
  const width = x.colPanels * TILE_COLS * 4;
  const aPanel = x.k * TILE_ROWS * 4;
  const bPanel = x.k * TILE_COLS * 4;
  const MUL = 0x6c;
  // the column panels: a ranged unbatched product's range, else all of them
  const panels = ranged && !batched;
  const firstJ = panels ? [...get(FROM), ...i32(bPanel), MUL] : i32(0);
  const firstC = panels ? [...get(ROW), ...get(FROM), ...i32(4 * TILE_COLS), MUL, ADD] : get(ROW);
  const lastJ = panels ? [...get(TO), ...i32(bPanel), MUL] : i32(bPanel * x.colPanels);
  const matrix: number[] = [...i32(0), ...set(IA), ...get(CB), ...set(ROW), ...LOOP];
  matrix.push(...firstJ, ...set(JB), ...firstC, ...set(PC), ...LOOP);
  for (let q = 0; q < 8; q++) matrix.push(...ZERO, ...set(ACC + q));
  if (x.k > 0) {
    matrix.push(...get(IA), ...get(AB), ADD, ...set(PA), ...get(JB), ...get(BB), ADD, ...set(PB), ...i32(x.k), ...set(P), ...LOOP);
    matrix.push(...get(PB), ...v128Load(0), ...set(B0), ...get(PB), ...v128Load(16), ...set(B1));
    for (let r = 0; r < TILE_ROWS; r++) {
      matrix.push(...get(PA), ...splat32(4 * r), ...set(A));
      for (const [q, b] of [[0, B0], [1, B1]] as const) {
        const acc = ACC + 2 * r + q;
        matrix.push(...get(acc), ...get(A), ...get(b), ...F32X4_MUL, ...F32X4_ADD, ...set(acc));
      }
    }
    matrix.push(...bump(PA, 4 * TILE_ROWS), ...bump(PB, 4 * TILE_COLS));
    matrix.push(...get(P), ...i32(-1), ADD, 0x22, ...uleb(P), ...i32(0), NE, BR_IF, 0, END);
  }
  for (let r = 0; r < TILE_ROWS; r++) {
    for (let q = 0; q < 2; q++) matrix.push(...get(PC), ...get(ACC + 2 * r + q), ...v128Store(16 * q + width * r));
  }
  matrix.push(...bump(PC, 4 * TILE_COLS), ...bump(JB, bPanel));
  matrix.push(...get(JB), ...lastJ, NE, BR_IF, 0, END);
  matrix.push(...bump(ROW, width * TILE_ROWS), ...bump(IA, aPanel));
  matrix.push(...get(IA), ...i32(aPanel * x.rowPanels), NE, BR_IF, 0, END);
  const code: number[] = [];
  if (!batched) {
    code.push(...i32(x.a), ...set(AB), ...i32(x.b), ...set(BB), ...i32(x.c), ...set(CB), ...matrix);
  } else {
    // batch from (or 0) to `to` (or all), each with its own packed A, B and C
    const base = (l: number, at: number, stride: number) => [...get(BAT), ...i32(stride), MUL, ...i32(at), ADD, ...set(l)];
    code.push(...(ranged ? get(FROM) : i32(0)), ...set(BAT), ...LOOP);
    code.push(...base(AB, x.a, x.aBatch ?? 0), ...base(BB, x.b, x.bBatch ?? 0), ...base(CB, x.c, x.cBatch ?? 0), ...matrix);
    code.push(...bump(BAT, 1), ...get(BAT), ...(ranged ? get(TO) : i32(batches)), NE, BR_IF, 0, END);
  }
  code.push(END);
  // without params, locals 0 and 1 are plain (unused) locals
  const locals = vec([[ranged ? 11 : 13, I32], [11, V128]].map(([n, t]) => [...uleb(n!), t!]));
  const body = [...locals, ...code];
  return [...uleb(body.length), ...body];
}

/** A function of a module besides its products: its parameter types and its body (locals and code, length first). */
export interface WasmFunction {
  readonly name: string;
  readonly params: readonly number[];
  readonly body: readonly number[];
}

/**
 * A module importing `env.memory` (at least `pages` of 64 KiB) and exporting
 * one function per product: `() => void`, or with `ranged`
 * `(from, to) => void` over the column panels [from, to) of an unbatched
 * product, the batches [from, to) of a batched one (an empty range must not
 * be passed). With `shared` the memory is a shared one (for worker threads),
 * of at most `maximum` pages (default `pages`). `functions` follow the
 * products, each with a type of its own.
 */
export function encodeModule(
  products: readonly WasmProduct[],
  pages: number,
  options: { ranged?: boolean; shared?: boolean; maximum?: number; functions?: readonly WasmFunction[] } = {},
): Uint8Array<ArrayBuffer> {
  const ranged = options.ranged ?? false;
  const maximum = options.maximum ?? pages;
  const limits = options.shared ? [0x03, ...uleb(pages), ...uleb(maximum)] : [0x00, ...uleb(pages)];
  const fns = options.functions ?? [];
  const types = [ranged ? [0x60, 0x02, I32, I32, 0x00] : [0x60, 0x00, 0x00], ...fns.map((f) => [0x60, ...uleb(f.params.length), ...f.params, 0x00])];
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(types)),
    ...section(2, vec([[...str("env"), ...str("memory"), 0x02, ...limits]])),
    ...section(3, vec([...products.map(() => [0x00]), ...fns.map((_, i) => uleb(i + 1))])),
    ...section(7, vec([...products.map((p, i) => [...str(p.name), 0x00, ...uleb(i)]), ...fns.map((f, i) => [...str(f.name), 0x00, ...uleb(products.length + i)])])),
    ...section(10, vec([...products.map((p) => productBody(p, ranged)), ...fns.map((f) => [...f.body])])),
  ];
  return Uint8Array.from(bytes);
}

/** Pages of 64 KiB that hold `bytes`. */
export const pagesFor = (bytes: number): number => Math.max(1, Math.ceil(bytes / 65536));

/**
 * The byte of a module from `encodeModule` that holds its memory import's
 * limits flag (0x03 shared with a maximum, 0x01 not shared with a maximum,
 * 0x00 neither): past the header and the type section, the import section's
 * size, its one entry's two names and the import kind.
 */
export function memoryLimitsAt(bytes: Uint8Array): number {
  const leb = (at: number): [number, number] => {
    let v = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[at++]!;
      v |= (b & 0x7f) << shift;
      shift += 7;
      if (!(b & 0x80)) return [v, at];
    }
  };
  let at = 8;
  if (bytes[at] !== 1) throw new Error("wasm: the module does not start with its type section");
  const [typeSize, afterType] = leb(at + 1);
  at = afterType + typeSize;
  if (bytes[at] !== 2) throw new Error("wasm: the module's second section is not its import section");
  [, at] = leb(at + 1); // section size
  [, at] = leb(at); // entries (one)
  for (let name = 0; name < 2; name++) {
    const [len, after] = leb(at);
    at = after + len;
  }
  if (bytes[at] !== 0x02) throw new Error("wasm: the module's import is not a memory");
  return at + 1;
}
