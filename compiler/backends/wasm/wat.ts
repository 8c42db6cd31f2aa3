// The WebAssembly text format of the modules the wasm target emits, for
// `gradc inspect --wat`: a small disassembler over the instructions its
// encoders use (wasm.ts, simdMath.ts, simdLoops.ts, simdRows.ts, copyRows.ts). An opcode
// outside them is an error, so a new instruction cannot go unprinted.

/** One function of a module: its export name and its text. */
export interface WatFunction {
  readonly name: string;
  readonly text: string;
}

const TYPES: Readonly<Record<number, string>> = { 0x7f: "i32", 0x7e: "i64", 0x7d: "f32", 0x7c: "f64", 0x7b: "v128" };

/** Plain opcodes with no immediates. */
const PLAIN: Readonly<Record<number, string>> = {
  0x01: "nop", 0x45: "i32.eqz", 0x46: "i32.eq", 0x47: "i32.ne", 0x48: "i32.lt_s", 0x49: "i32.lt_u", 0x4a: "i32.gt_s", 0x4c: "i32.le_s", 0x4e: "i32.ge_s",
  0x6a: "i32.add", 0x6b: "i32.sub", 0x6c: "i32.mul", 0x6d: "i32.div_s", 0x6f: "i32.rem_s", 0x71: "i32.and", 0x72: "i32.or",
  0x74: "i32.shl", 0x75: "i32.shr_s", 0x76: "i32.shr_u", 0xb7: "f64.convert_i32_s",
  // the scalar data movement of kirWasm.ts
  0x1b: "select", 0x61: "f64.eq", 0x62: "f64.ne", 0x63: "f64.lt", 0x64: "f64.gt", 0x65: "f64.le", 0x66: "f64.ge",
  0x99: "f64.abs", 0x9a: "f64.neg", 0x9c: "f64.floor", 0x9f: "f64.sqrt", 0xa0: "f64.add", 0xa1: "f64.sub", 0xa2: "f64.mul", 0xa3: "f64.div", 0xa4: "f64.min", 0xa5: "f64.max",
  0xb6: "f32.demote_f64", 0xbb: "f64.promote_f32",
};

/** SIMD opcodes (after 0xfd) and their immediates: memory access, lane, 16 bytes, or none. */
const SIMD: Readonly<Record<number, readonly [string, "mem" | "memLane" | "bytes" | "lanes" | "none"]>> = {
  0x00: ["v128.load", "mem"], 0x09: ["v128.load32_splat", "mem"], 0x0b: ["v128.store", "mem"],
  0x0c: ["v128.const", "bytes"], 0x0d: ["i8x16.shuffle", "lanes"],
  0x13: ["f32x4.splat", "none"], 0x14: ["f64x2.splat", "none"],
  0x41: ["f32x4.eq", "none"], 0x42: ["f32x4.ne", "none"], 0x43: ["f32x4.lt", "none"], 0x44: ["f32x4.gt", "none"], 0x45: ["f32x4.le", "none"], 0x46: ["f32x4.ge", "none"],
  0x47: ["f64x2.eq", "none"], 0x48: ["f64x2.ne", "none"], 0x49: ["f64x2.lt", "none"], 0x4a: ["f64x2.gt", "none"], 0x4b: ["f64x2.le", "none"], 0x4c: ["f64x2.ge", "none"],
  0x4d: ["v128.not", "none"], 0x4e: ["v128.and", "none"], 0x4f: ["v128.andnot", "none"], 0x50: ["v128.or", "none"], 0x51: ["v128.xor", "none"], 0x52: ["v128.bitselect", "none"],
  0x56: ["v128.load32_lane", "memLane"], 0x5a: ["v128.store32_lane", "memLane"], 0x5c: ["v128.load32_zero", "mem"], 0x5d: ["v128.load64_zero", "mem"],
  0x5e: ["f32x4.demote_f64x2_zero", "none"], 0x5f: ["f64x2.promote_low_f32x4", "none"],
  0x67: ["f32x4.ceil", "none"], 0x68: ["f32x4.floor", "none"], 0x6a: ["f32x4.nearest", "none"], 0x75: ["f64x2.floor", "none"],
  0xab: ["i32x4.shl", "none"], 0xac: ["i32x4.shr_s", "none"], 0xad: ["i32x4.shr_u", "none"], 0xae: ["i32x4.add", "none"], 0xb1: ["i32x4.sub", "none"],
  0xe0: ["f32x4.abs", "none"], 0xe1: ["f32x4.neg", "none"], 0xe3: ["f32x4.sqrt", "none"], 0xe4: ["f32x4.add", "none"], 0xe5: ["f32x4.sub", "none"], 0xe6: ["f32x4.mul", "none"],
  0xe7: ["f32x4.div", "none"], 0xe8: ["f32x4.min", "none"], 0xe9: ["f32x4.max", "none"],
  0xec: ["f64x2.abs", "none"], 0xed: ["f64x2.neg", "none"], 0xef: ["f64x2.sqrt", "none"], 0xf0: ["f64x2.add", "none"], 0xf1: ["f64x2.sub", "none"], 0xf2: ["f64x2.mul", "none"],
  0xf3: ["f64x2.div", "none"], 0xf4: ["f64x2.min", "none"], 0xf5: ["f64x2.max", "none"],
  0xf8: ["i32x4.trunc_sat_f32x4_s", "none"], 0xfa: ["f32x4.convert_i32x4_s", "none"], 0x105: ["f32x4.relaxed_madd", "none"],
};

/** A reader over a module's bytes. */
class Reader {
  at = 0;
  constructor(readonly bytes: Uint8Array) {}
  byte(): number {
    if (this.at >= this.bytes.length) throw new Error("wat: the module ends in the middle of an instruction");
    return this.bytes[this.at++]!;
  }
  u32(): number {
    let v = 0;
    let shift = 0;
    for (;;) {
      const b = this.byte();
      v += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if (!(b & 0x80)) return v;
    }
  }
  s32(): number {
    let v = 0;
    let shift = 0;
    let b: number;
    do {
      b = this.byte();
      v |= (b & 0x7f) << shift;
      shift += 7;
    } while (b & 0x80);
    return shift < 32 && b & 0x40 ? v | (-1 << shift) : v;
  }
  name(): string {
    const n = this.u32();
    const s = String.fromCharCode(...this.bytes.subarray(this.at, this.at + n));
    this.at += n;
    return s;
  }
}

/** A v128 constant: as four f32 or two f64 where that reads back exactly, else as bytes. */
function v128Text(b: Uint8Array): string {
  const f32 = new Float32Array(b.slice().buffer);
  const i32 = new Int32Array(b.slice().buffer);
  const f64 = new Float64Array(b.slice().buffer);
  const same = (xs: ArrayLike<number>) => Array.from(xs).every((x) => Object.is(x, xs[0]));
  if (same(i32) && (i32[0] === 0 || Math.abs(i32[0]!) < 1 << 23)) return `i32x4 ${Array.from(i32).join(" ")}`;
  if (same(f32)) return `f32x4 ${Array.from(f32).join(" ")}`;
  if (Number.isFinite(f64[0]!) && Number.isFinite(f64[1]!)) return `f64x2 ${f64[0]} ${f64[1]}`;
  return `i8x16 ${Array.from(b).join(" ")}`;
}

/** A function body's instructions as text, indented by block depth. */
function bodyText(r: Reader, end: number): string[] {
  const out: string[] = [];
  let depth = 1;
  const line = (s: string) => out.push(`${"  ".repeat(depth)}${s}`);
  while (r.at < end) {
    const op = r.byte();
    switch (op) {
      case 0x02: case 0x03: case 0x04: {
        const type = r.byte();
        line(`${op === 0x02 ? "block" : op === 0x03 ? "loop" : "if"}${type === 0x40 ? "" : ` (result ${TYPES[type] ?? type})`}`);
        depth++;
        break;
      }
      case 0x05: depth--; line("else"); depth++; break;
      case 0x0b:
        depth--;
        if (depth > 0) line("end");
        break;
      case 0x0c: line(`br ${r.u32()}`); break;
      case 0x0d: line(`br_if ${r.u32()}`); break;
      case 0x20: line(`local.get ${r.u32()}`); break;
      case 0x21: line(`local.set ${r.u32()}`); break;
      case 0x22: line(`local.tee ${r.u32()}`); break;
      case 0x41: line(`i32.const ${r.s32()}`); break;
      case 0x28: case 0x2a: case 0x36: case 0x38: {
        const align = r.u32();
        const offset = r.u32();
        const name = { 0x28: "i32.load", 0x2a: "f32.load", 0x36: "i32.store", 0x38: "f32.store" }[op];
        line(`${name}${offset ? ` offset=${offset}` : ""} align=${2 ** align}`);
        break;
      }
      case 0x44: {
        line(`f64.const ${new Float64Array(r.bytes.slice(r.at, r.at + 8).buffer)[0]}`);
        r.at += 8;
        break;
      }
      case 0xfd: {
        const code = r.u32();
        const known = SIMD[code];
        if (!known) throw new Error(`wat: unknown SIMD opcode 0xfd ${code.toString(16)} at byte ${r.at}`);
        const [name, imm] = known;
        if (imm === "mem" || imm === "memLane") {
          const align = r.u32();
          const offset = r.u32();
          const lane = imm === "memLane" ? ` ${r.byte()}` : "";
          line(`${name}${offset ? ` offset=${offset}` : ""} align=${2 ** align}${lane}`);
        } else if (imm === "bytes" || imm === "lanes") {
          const b = r.bytes.slice(r.at, r.at + 16);
          r.at += 16;
          line(imm === "bytes" ? `${name} ${v128Text(b)}` : `${name} ${Array.from(b).join(" ")}`);
        } else {
          line(name);
        }
        break;
      }
      default: {
        const name = PLAIN[op];
        if (!name) throw new Error(`wat: unknown opcode 0x${op.toString(16)} at byte ${r.at - 1}`);
        line(name);
      }
    }
  }
  return out;
}

/** A module (as the wasm target encodes them: one memory import, every function exported) as WebAssembly text: its memory import and each function. */
export function watModule(bytes: Uint8Array): { memory: string; functions: WatFunction[] } {
  const r = new Reader(bytes);
  if (bytes[0] !== 0 || String.fromCharCode(...bytes.subarray(1, 4)) !== "asm" || bytes[4] !== 1) throw new Error("wat: not a WebAssembly module");
  r.at = 8;
  const types: { params: string[]; results: string[] }[] = [];
  const funcTypes: number[] = [];
  const names = new Map<number, string>();
  let memory = "";
  const bodies: WatFunction[] = [];
  while (r.at < bytes.length) {
    const id = r.byte();
    const size = r.u32();
    const end = r.at + size;
    if (id === 1) {
      for (let n = r.u32(); n > 0; n--) {
        r.byte(); // 0x60
        const params = Array.from({ length: r.u32() }, () => TYPES[r.byte()]!);
        const results = Array.from({ length: r.u32() }, () => TYPES[r.byte()]!);
        types.push({ params, results });
      }
    } else if (id === 2) {
      for (let n = r.u32(); n > 0; n--) {
        const [mod, field, kind] = [r.name(), r.name(), r.byte()];
        const flags = r.byte();
        const min = r.u32();
        const max = flags & 1 ? ` ${r.u32()}` : "";
        if (kind === 2) memory = `(import "${mod}" "${field}" (memory ${min}${max}${flags & 2 ? " shared" : ""}))`;
      }
    } else if (id === 3) {
      for (let n = r.u32(); n > 0; n--) funcTypes.push(r.u32());
    } else if (id === 7) {
      for (let n = r.u32(); n > 0; n--) {
        const [name, kind, index] = [r.name(), r.byte(), r.u32()];
        if (kind === 0) names.set(index, name);
      }
    } else if (id === 10) {
      for (let f = 0, n = r.u32(); f < n; f++) {
        const fnEnd = r.u32() + r.at;
        const locals: string[] = [];
        for (let groups = r.u32(); groups > 0; groups--) {
          const count = r.u32();
          const type = TYPES[r.byte()]!;
          for (let i = 0; i < count; i++) locals.push(type);
        }
        const name = names.get(f) ?? `f${f}`;
        const type = types[funcTypes[f]!]!;
        const head = [`(func $${name} (export ${JSON.stringify(name)})`];
        if (type.params.length) head.push(`(param ${type.params.join(" ")})`);
        if (type.results.length) head.push(`(result ${type.results.join(" ")})`);
        if (locals.length) head.push(`(local ${locals.join(" ")})`);
        bodies.push({ name, text: [head.join(" "), ...bodyText(r, fnEnd), ")"].join("\n") });
        r.at = fnEnd;
      }
    }
    r.at = end;
  }
  return { memory, functions: bodies };
}

/** The file `gradc inspect --wat` reads: each kernel's functions, under a `;; kernel NAME (FILE)` line. */
export const WAT_FILE = "graphs/kernels.wat";

/**
 * The text of a file's module, each kernel's functions under its own header (a
 * product's function is named after its kernel, a loop's `KERNEL#N`); `notes`
 * are comment lines after the module's.
 */
export function kernelsWat(file: string, kernels: readonly string[], bytes: Uint8Array, notes: readonly string[] = []): string {
  const { memory, functions } = watModule(bytes);
  const of = (k: string) => functions.filter((f) => f.name === k || f.name.startsWith(`${k}#`) || f.name.startsWith(`${k}$`));
  const sections = kernels.filter((k) => of(k).length).map((k) => [`;; kernel ${k} (${file})`, ...of(k).map((f) => f.text)].join("\n"));
  return [[`;; ${file}'s module ${memory}`, ...notes.map((n) => `;; ${n}`)].join("\n"), ...sections].join("\n\n") + "\n";
}
