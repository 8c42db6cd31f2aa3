// A small WebAssembly encoder and the SIMD matrix products emitted with it:
// C = A·B over f32 operands packed into the kernel's scratch memory (A in
// panels of 4 rows and B in panels of 8 columns, both walked p by p), in 4×8
// register tiles of eight f32x4 accumulators; A is broadcast with
// v128.load32_splat, B loaded whole, each multiply-add either f32x4.mul then
// f32x4.add or relaxed SIMD's f32x4.relaxed_madd (FMA), the same bytes but
// for one patch at known sites (`assembleModule`, `fmaPatch`), so a kernel
// file chooses when it loads. Sizes
// and offsets are baked in. Every module names its functions (a name section)
// as it exports them, so profiles and stack traces show the kernels' names.

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

export const str = (s: string): number[] => {
  const utf8 = new TextEncoder().encode(s);
  return [...uleb(utf8.length), ...utf8];
};
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

/** How a product's micro-kernel is emitted: the tile's rows, the p's of one k-loop iteration, FMA or multiply then add. */
export interface KernelShape {
  /** Rows of A (and C) in a register tile (default TILE_ROWS); the packing must use the same. */
  readonly rows: number;
  /** The p's that one iteration of the k-loop computes (addressed by memarg offsets); the remainder of k after them straight-line. */
  readonly unroll: number;
  /** f32x4.relaxed_madd (a fused multiply-add where the CPU has one) instead of f32x4.mul then f32x4.add. */
  readonly fma: boolean;
}

/**
 * The shape the products are emitted in, the fastest measured under Node 20's
 * V8: TurboFan unrolls the one-p k-loop itself (each copy keeping its loads
 * beside its multiply-adds), where a k-loop unrolled here gets all its loads
 * hoisted to the top and its accumulators spilled (2 p's: -25%, 4: -45%), as
 * do 5×8 and 6×8 tiles (-20%). FMA is chosen where the module loads
 * (`fmaPatch`).
 */
export const KERNEL: KernelShape = { rows: TILE_ROWS, unroll: 1, fma: false };

const NOP = 0x01;
/**
 * acc += a·b, with a and b on the stack: `local.get acc; f32x4.add` after
 * `f32x4.mul`, or with FMA `local.get acc; f32x4.relaxed_madd` and three
 * nops, the same 8 bytes (`fmaPatch` turns one into the other).
 */
const madd = (acc: number, fma: boolean): number[] =>
  fma ? [...get(acc), ...simd(0x105), NOP, NOP, NOP, ...set(acc)] : [...F32X4_MUL, ...get(acc), ...F32X4_ADD, ...set(acc)];

/**
 * One product's body. Params 0, 1: the range [from, to) (a ranged product);
 * i32 locals: 2 ia (byte offset of the A panel in its batch), 3 jb (of the B
 * panel), 4 end (of the k-loop's A), 5 pa, 6 pb, 7 pc (C tile), 8 row (C row
 * block), 9 batch, 10 aBase, 11 bBase, 12 cBase (the batch's packed A, B and
 * C); v128 locals from 13: 2·rows accumulators, b0, b1, a. An unbatched
 * product's range is its column panels: it computes only the columns of C in
 * them, so threads can split one product by column panels, each writing its
 * own part of C. A batched product's range is its batches, each computed
 * whole. Without `ranged` the params are absent and the range is everything.
 * Every accumulator sums its p's in order, whatever the unroll.
 */
function productBody(x: WasmProduct, ranged: boolean, shape: KernelShape): { bytes: number[]; madds: number[] } {
  const [FROM, TO, IA, JB, END_, PA, PB, PC, ROW, BAT, AB, BB, CB] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12] as const;
  const R = shape.rows;
  const ACC = 13;
  const [B0, B1, A] = [ACC + 2 * R, ACC + 2 * R + 1, ACC + 2 * R + 2];
  // a batched product (even of one batch) is ranged over its batches
  const batched = x.batches !== undefined;
  const batches = x.batches ?? 1;
  const width = x.colPanels * TILE_COLS * 4;
  const aPanel = x.k * R * 4;
  const bPanel = x.k * TILE_COLS * 4;
  const MUL = 0x6c;
  const U = Math.max(1, Math.min(shape.unroll, x.k));
  const loops = Math.floor(x.k / U);
  const rest = x.k - loops * U;
  // the column panels: a ranged unbatched product's range, else all of them
  const panels = ranged && !batched;
  const firstJ = panels ? [...get(FROM), ...i32(bPanel), MUL] : i32(0);
  const firstC = panels ? [...get(ROW), ...get(FROM), ...i32(4 * TILE_COLS), MUL, ADD] : get(ROW);
  const lastJ = panels ? [...get(TO), ...i32(bPanel), MUL] : i32(bPanel * x.colPanels);
  /** The multiply-adds of p (u-th after pa, pb), B's two vectors loaded once, A's rows broadcast, pushed onto `out` (its multiply-adds' offsets onto `at`). */
  const step = (u: number, out: number[], at: number[]): void => {
    out.push(...get(PB), ...v128Load(4 * TILE_COLS * u), ...set(B0), ...get(PB), ...v128Load(4 * TILE_COLS * u + 16), ...set(B1));
    for (let r = 0; r < R; r++) {
      out.push(...get(PA), ...splat32(4 * (R * u + r)), ...set(A));
      for (const [q, b] of [[0, B0], [1, B1]] as const) {
        out.push(...get(A), ...get(b));
        at.push(out.length);
        out.push(...madd(ACC + 2 * r + q, shape.fma));
      }
    }
  };
  // the code in order, the multiply-adds' offsets in it
  const code: number[] = [];
  const madds: number[] = [];
  /** One tile: its accumulators zeroed, the k-loop, then stored into C at pc. */
  const tile = () => {
    for (let q = 0; q < 2 * R; q++) code.push(...ZERO, ...set(ACC + q));
    if (x.k > 0) {
      code.push(...get(IA), ...get(AB), ADD, 0x22, ...uleb(PA), ...i32(4 * R * U * loops), ADD, ...set(END_));
      code.push(...get(JB), ...get(BB), ADD, ...set(PB), ...LOOP);
      for (let u = 0; u < U; u++) step(u, code, madds);
      code.push(...bump(PA, 4 * R * U), ...bump(PB, 4 * TILE_COLS * U));
      code.push(...get(PA), ...get(END_), NE, BR_IF, 0, END);
      for (let u = 0; u < rest; u++) step(u, code, madds);
    }
    for (let r = 0; r < R; r++) {
      for (let q = 0; q < 2; q++) code.push(...get(PC), ...get(ACC + 2 * r + q), ...v128Store(16 * q + width * r));
    }
  };
  const matrix = () => {
    code.push(...i32(0), ...set(IA), ...get(CB), ...set(ROW), ...LOOP);
    code.push(...firstJ, ...set(JB), ...firstC, ...set(PC), ...LOOP);
    tile();
    code.push(...bump(PC, 4 * TILE_COLS), ...bump(JB, bPanel));
    code.push(...get(JB), ...lastJ, NE, BR_IF, 0, END);
    code.push(...bump(ROW, width * R), ...bump(IA, aPanel));
    code.push(...get(IA), ...i32(aPanel * x.rowPanels), NE, BR_IF, 0, END);
  };
  if (!batched) {
    code.push(...i32(x.a), ...set(AB), ...i32(x.b), ...set(BB), ...i32(x.c), ...set(CB));
    matrix();
  } else {
    // batch from (or 0) to `to` (or all), each with its own packed A, B and C
    const base = (l: number, at: number, stride: number) => [...get(BAT), ...i32(stride), MUL, ...i32(at), ADD, ...set(l)];
    code.push(...(ranged ? get(FROM) : i32(0)), ...set(BAT), ...LOOP);
    code.push(...base(AB, x.a, x.aBatch ?? 0), ...base(BB, x.b, x.bBatch ?? 0), ...base(CB, x.c, x.cBatch ?? 0));
    matrix();
    code.push(...bump(BAT, 1), ...get(BAT), ...(ranged ? get(TO) : i32(batches)), NE, BR_IF, 0, END);
  }
  code.push(END);
  // without params, locals 0 and 1 are plain (unused) locals
  const locals = vec([[ranged ? 11 : 13, I32], [2 * R + 3, V128]].map(([n, t]) => [...uleb(n!), t!]));
  const head = [...uleb(locals.length + code.length), ...locals];
  return { bytes: [...head, ...code], madds: madds.map((at) => head.length + at) };
}

/**
 * A copy of `bytes` with each multiply-add at `sites` turned into FMA:
 * `f32x4.mul; local.get acc; f32x4.add` into `local.get acc;
 * f32x4.relaxed_madd; nop; nop; nop` (the emitted kernel files do the same
 * where the engine validates relaxed SIMD).
 */
export function fmaPatch(bytes: Uint8Array, sites: readonly number[]): Uint8Array<ArrayBuffer> {
  const out = Uint8Array.from(bytes);
  for (const at of sites) out.set([0x20, out[at + 4]!, 0xfd, 0x85, 0x02, NOP, NOP, NOP], at);
  return out;
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
 * products, each with a type of its own. `kernel` overrides the products'
 * micro-kernel (`KERNEL`), FMA included. A name section names every function
 * as it is exported.
 */
export function encodeModule(
  products: readonly WasmProduct[],
  pages: number,
  options: { ranged?: boolean; shared?: boolean; maximum?: number; functions?: readonly WasmFunction[]; kernel?: Partial<KernelShape> } = {},
): Uint8Array<ArrayBuffer> {
  return assembleModule(products, pages, options).bytes;
}

/** `encodeModule`'s module, and the byte offset of each of its products' multiply-adds (`fmaPatch`'s sites). */
export function assembleModule(
  products: readonly WasmProduct[],
  pages: number,
  options: { ranged?: boolean; shared?: boolean; maximum?: number; functions?: readonly WasmFunction[]; kernel?: Partial<KernelShape> } = {},
): { bytes: Uint8Array<ArrayBuffer>; sites: number[] } {
  const ranged = options.ranged ?? false;
  const shape = { ...KERNEL, ...options.kernel };
  const maximum = options.maximum ?? pages;
  const limits = options.shared ? [0x03, ...uleb(pages), ...uleb(maximum)] : [0x00, ...uleb(pages)];
  const fns = options.functions ?? [];
  const names = [...products.map((p) => p.name), ...fns.map((f) => f.name)];
  const types = [ranged ? [0x60, 0x02, I32, I32, 0x00] : [0x60, 0x00, 0x00], ...fns.map((f) => [0x60, ...uleb(f.params.length), ...f.params, 0x00])];
  const head = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(types)),
    ...section(2, vec([[...str("env"), ...str("memory"), 0x02, ...limits]])),
    ...section(3, vec([...products.map(() => [0x00]), ...fns.map((_, i) => uleb(i + 1))])),
    ...section(7, vec(names.map((name, i) => [...str(name), 0x00, ...uleb(i)]))),
  ];
  const bodies = products.map((p) => productBody(p, ranged, shape));
  const code = vec([...bodies.map((b) => b.bytes), ...fns.map((f) => [...f.body])]);
  // the code section's products first: each one's multiply-adds past the section's header and the bodies before it
  const sites: number[] = [];
  let at = head.length + 1 + uleb(code.length).length + uleb(bodies.length + fns.length).length;
  for (const b of bodies) {
    sites.push(...b.madds.map((m) => at + m));
    at += b.bytes.length;
  }
  const bytes = [
    ...head,
    ...section(10, code),
    // the name section: each function named as it is exported, for profiles and stack traces
    ...section(0, [...str("name"), ...section(1, vec(names.map((name, i) => [...uleb(i), ...str(name)])))]),
  ];
  return { bytes: Uint8Array.from(bytes), sites };
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
