// The safetensors reader against files built byte by byte as PyTorch's
// `safetensors` writer lays them out (u64 header size, space-padded JSON
// header, tensors back to back): F16, BF16, F32 and F64 values, and the header
// edge cases the reference reader accepts or refuses.
import { describe, expect, it } from "vitest";
import { decodeSafetensors, encodeSafetensors, halfToNumber } from "../../runtime/safetensors.js";
import { safetensorsBytes } from "./safetensorsBytes.js";

type Entry = { dtype: string; shape: number[]; data_offsets: [number, number] };

/** A file from a header object and the data bytes, the header padded with spaces to a multiple of 8 as the writer does. */
function file(header: Record<string, Entry | Record<string, string>>, data: Uint8Array, opts: { pad?: boolean; rawHeader?: string } = {}): Uint8Array {
  let json = opts.rawHeader ?? JSON.stringify(header);
  if (opts.pad !== false) json += " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  return safetensorsBytes(json, data);
}

/** Little-endian bytes of 16-bit patterns. */
const u16 = (bits: number[]): Uint8Array => new Uint8Array(Uint16Array.from(bits).buffer);
const bytes = (a: Float32Array | Float64Array): Uint8Array => new Uint8Array(a.buffer);

describe("safetensors dtypes", () => {
  it("reads F16: normals, a subnormal, the largest finite, ±Inf and NaN", () => {
    // 1, −2, 0.5, 65504 (0x7bff), 2^−24 (0x0001), +Inf, −Inf, NaN
    const bits = [0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x7c00, 0xfc00, 0x7e00];
    const { tensors } = decodeSafetensors(file({ h: { dtype: "F16", shape: [2, 4], data_offsets: [0, 16] } }, u16(bits)));
    const t = tensors["h"]!;
    expect(t.shape).toEqual([2, 4]);
    expect(t.dtype).toBe("F16");
    expect(t.data).toBeInstanceOf(Float32Array);
    expect([...t.data].slice(0, 7)).toEqual([1, -2, 0.5, 65504, 2 ** -24, Infinity, -Infinity]);
    expect(Number.isNaN(t.data[7])).toBe(true);
    expect(halfToNumber(0x8000)).toBe(-0);
    expect(halfToNumber(0x03ff)).toBe(1023 * 2 ** -24); // the largest subnormal
  });

  it("reads BF16 as the upper half of a float32", () => {
    // 1, −2.5, 3.140625, −0
    const { tensors } = decodeSafetensors(file({ b: { dtype: "BF16", shape: [4], data_offsets: [0, 8] } }, u16([0x3f80, 0xc020, 0x4049, 0x8000])));
    expect(tensors["b"]!.dtype).toBe("BF16");
    expect([...tensors["b"]!.data]).toEqual([1, -2.5, 3.140625, -0]);
  });

  it("reads F32 and F64 side by side, in data order other than header order", () => {
    const f64 = Float64Array.from([Math.PI, -1e300]);
    const f32 = Float32Array.from([0.1, 2, -3]);
    const data = new Uint8Array(16 + 12);
    data.set(bytes(f64), 0);
    data.set(bytes(f32), 16);
    const header = { w: { dtype: "F32", shape: [3], data_offsets: [16, 28] as [number, number] }, d: { dtype: "F64", shape: [1, 2], data_offsets: [0, 16] as [number, number] } };
    const { tensors } = decodeSafetensors(file(header, data));
    expect(tensors["d"]!.data).toEqual(f64);
    expect(tensors["w"]!.data).toEqual(f32);
    expect(tensors["w"]!.dtype).toBeUndefined();
  });

  it("round-trips what gradc writes", () => {
    const tensors = { a: { shape: [2], data: Float32Array.from([1, 2]) }, b: { shape: [], data: Float64Array.from([7]) } };
    const back = decodeSafetensors(encodeSafetensors(tensors, { format: "x" }));
    expect(back.metadata).toEqual({ format: "x" });
    expect(back.tensors["a"]!.data).toEqual(tensors.a.data);
    expect(back.tensors["b"]!.shape).toEqual([]);
  });
});

describe("safetensors header edge cases", () => {
  const one = (e: Partial<Entry> = {}) => ({ x: { dtype: "F32", shape: [1], data_offsets: [0, 4] as [number, number], ...e } });
  const four = bytes(Float32Array.from([1.5]));

  it("accepts an unpadded header, metadata, a scalar and an empty tensor", () => {
    const header = { __metadata__: { format: "pt" }, s: { dtype: "F32", shape: [], data_offsets: [0, 4] as [number, number] }, e: { dtype: "F16", shape: [0, 3], data_offsets: [4, 4] as [number, number] } };
    const { tensors, metadata } = decodeSafetensors(file(header, four, { pad: false }));
    expect(metadata).toEqual({ format: "pt" });
    expect([...tensors["s"]!.data]).toEqual([1.5]);
    expect(tensors["e"]!.data.length).toBe(0);
    expect(tensors["e"]!.shape).toEqual([0, 3]);
  });

  it("refuses a header size beyond the file, and a file shorter than 8 bytes", () => {
    const f = file(one(), four);
    new DataView(f.buffer).setBigUint64(0, BigInt(f.length), true);
    expect(() => decodeSafetensors(f, "t.safetensors")).toThrow(/t\.safetensors: header length \d+ exceeds the file/);
    expect(() => decodeSafetensors(new Uint8Array(5))).toThrow(/too short/);
  });

  it("refuses a header that is not a JSON object", () => {
    expect(() => decodeSafetensors(file({}, new Uint8Array(0), { rawHeader: "[1, 2]" }))).toThrow(/does not start with "\{"/);
    expect(() => decodeSafetensors(file({}, new Uint8Array(0), { rawHeader: "{oops" }))).toThrow(/not valid JSON/);
  });

  const F = "t.safetensors";
  const decode = (bytes: Uint8Array) => () => decodeSafetensors(bytes, F);

  it("refuses an unsupported dtype by name, and a bad shape or offsets: file, tensor, field, value, expected", () => {
    const dtypes = "expected one of F16, BF16, F32, F64, I32, U8, BOOL";
    expect(decode(file(one({ dtype: "I64", data_offsets: [0, 8] }), new Uint8Array(8)))).toThrow(`t.safetensors: tensor "x": field dtype is "I64", ${dtypes}`);
    // names of Object.prototype are no dtypes either
    for (const dtype of ["toString", "constructor", "__proto__", "hasOwnProperty", "valueOf"]) {
      expect(decode(file(one({ dtype }), four))).toThrow(`t.safetensors: tensor "x": field dtype is ${JSON.stringify(dtype)}, ${dtypes}`);
    }
    expect(decode(file(one({ dtype: 4 as unknown as string }), four))).toThrow(`t.safetensors: tensor "x": field dtype is 4, ${dtypes}`);
    expect(decode(file({ x: { shape: [1], data_offsets: [0, 4] } } as unknown as Record<string, Entry>, four))).toThrow(`t.safetensors: tensor "x": field dtype is missing, ${dtypes}`);
    expect(decode(file(one({ shape: [-1] }), four))).toThrow('t.safetensors: tensor "x": field shape is [-1], expected a list of whole sizes ≥ 0');
    expect(decode(file(one({ shape: "4" as unknown as number[] }), four))).toThrow('t.safetensors: tensor "x": field shape is "4", expected a list of whole sizes ≥ 0');
    expect(decode(file(one({ data_offsets: [4, 0] }), four))).toThrow('t.safetensors: tensor "x": field data_offsets is [4,0], expected [begin, end] with 0 ≤ begin ≤ end');
    expect(decode(file(one({ data_offsets: [-4, 0] as unknown as [number, number] }), four))).toThrow(/field data_offsets is \[-4,0\], expected/);
    expect(decode(file({ x: null } as unknown as Record<string, Entry>, four))).toThrow('t.safetensors: tensor "x": its header entry is null, expected an object with dtype, shape and data_offsets');
    expect(decode(file({ x: [1] } as unknown as Record<string, Entry>, four))).toThrow(/its header entry is \[1\], expected an object/);
  });

  it("a tensor name or value with terminal escapes is shown escaped", () => {
    const evil = "\u001b]0;pwned\u0007\u009b31m";
    expect(decode(file({ [evil]: { dtype: evil, shape: [1], data_offsets: [0, 4] } }, four))).toThrow(
      't.safetensors: tensor "\\u001b]0;pwned\\u0007\\u009b31m": field dtype is "\\u001b]0;pwned\\u0007\\u009b31m", expected one of',
    );
  });

  it("refuses a byte count that does not match the dtype and shape", () => {
    expect(decode(file(one({ shape: [2] }), four))).toThrow('t.safetensors: tensor "x": field data_offsets is [0, 4] (4 bytes), but F32 [2] needs 8 bytes');
  });

  it("refuses data outside the file, gaps, overlaps and trailing bytes", () => {
    expect(decode(file(one({ data_offsets: [4, 8] }), four))).toThrow('t.safetensors: tensor "x": field data_offsets is [4, 8], beyond the 4 data bytes of the file');
    const two = (a: [number, number], b: [number, number], n: number) =>
      file({ a: { dtype: "F32", shape: [1], data_offsets: a }, b: { dtype: "F32", shape: [1], data_offsets: b } }, new Uint8Array(n));
    expect(decode(two([0, 4], [8, 12], 12))).toThrow('t.safetensors: tensor "b": field data_offsets starts at byte 8, expected 4 (a gap precedes it)');
    expect(decode(two([0, 4], [0, 4], 4))).toThrow(/t\.safetensors: tensor "[ab]": field data_offsets starts at byte 0, expected 4 \(it overlaps the tensor before it\)/);
    expect(decode(file(one(), new Uint8Array(8)))).toThrow(/t\.safetensors: the tensors cover 4 of the 8 data bytes/);
  });

  it("refuses metadata that is not a map of strings", () => {
    expect(decode(file({ __metadata__: { n: 1 } as unknown as Record<string, string> }, new Uint8Array(0)))).toThrow('t.safetensors: field __metadata__ is {"n":1}, expected an object mapping names to strings');
  });
});
