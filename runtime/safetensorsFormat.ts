// The safetensors format (an 8-byte little-endian header length, a JSON
// header, then raw little-endian data) as bytes: no file system, so the
// browser runtime reads and writes it as the Node one does.
import { quoted, shown } from "./names.js";

export type TensorData = Float32Array | Float64Array | Int32Array | Uint8Array;

export interface NamedTensor {
  readonly shape: readonly number[];
  readonly data: TensorData;
  /** The file's dtype when it differs from the data's (F16 and BF16 are read as f32). */
  readonly dtype?: "F16" | "BF16";
}

const DTYPE_OF = (d: TensorData): string =>
  d instanceof Float32Array ? "F32" : d instanceof Float64Array ? "F64" : d instanceof Int32Array ? "I32" : "U8";

/** Serializes tensors (and string metadata) to safetensors bytes. */
export function encodeSafetensors(tensors: Readonly<Record<string, NamedTensor>>, metadata: Readonly<Record<string, string>> = {}): Uint8Array {
  // keyed by tensor names, which may be any string ("__proto__" too)
  const header: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  if (Object.keys(metadata).length) header["__metadata__"] = metadata;
  let offset = 0;
  const names = Object.keys(tensors);
  for (const name of names) {
    const t = tensors[name]!;
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new Error(`safetensors: "${name}" has ${t.data.length} values for shape [${t.shape.join(",")}]`);
    header[name] = { dtype: DTYPE_OF(t.data), shape: [...t.shape], data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  // pad the header with spaces so the data starts 8-byte aligned
  const utf8 = new TextEncoder();
  json += " ".repeat((8 - ((8 + utf8.encode(json).length) % 8)) % 8);
  const head = utf8.encode(json);
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let at = 8 + head.length;
  for (const name of names) {
    const d = tensors[name]!.data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), at);
    at += d.byteLength;
  }
  return out;
}

/** Bytes per element of each dtype this reader accepts (F16 and BF16 are widened to f32 as they are read). */
const DTYPE_BYTES: ReadonlyMap<string, number> = new Map([["F16", 2], ["BF16", 2], ["F32", 4], ["F64", 8], ["I32", 4], ["U8", 1], ["BOOL", 1]]);

/** IEEE half precision → number: sign, 5 exponent bits (bias 15), 10 mantissa bits; subnormals, ±Inf and NaN kept. */
export function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** The element data of one tensor as a typed array (a fresh copy; F16/BF16 widened to Float32Array). */
function readData(dtype: string, bytes: Uint8Array): TensorData {
  const n = bytes.length / DTYPE_BYTES.get(dtype)!;
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  const view = new DataView(copy.buffer);
  switch (dtype) {
    case "F16": {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToNumber(view.getUint16(2 * i, true));
      return out;
    }
    case "BF16": {
      // bfloat16 is the upper half of a float32
      const bits = new Uint32Array(n);
      for (let i = 0; i < n; i++) bits[i] = view.getUint16(2 * i, true) << 16;
      return new Float32Array(bits.buffer);
    }
    case "F32": return new Float32Array(copy.buffer);
    case "F64": return new Float64Array(copy.buffer);
    case "I32": return new Int32Array(copy.buffer);
    default: return copy;
  }
}

/** Header entries as the format defines them: dtype, shape and [begin, end) byte offsets into the data. */
interface HeaderEntry {
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly data_offsets: readonly [number, number];
}

function checkEntry(name: string, e: unknown, what: string): asserts e is HeaderEntry {
  const bad = (why: string) => new Error(`${what}: tensor ${quoted(name)}: ${why}`);
  if (e === null || typeof e !== "object" || Array.isArray(e)) throw bad(`its header entry is ${shown(e)}, expected an object with dtype, shape and data_offsets`);
  const get = (field: string): unknown => (Object.hasOwn(e, field) ? (e as Record<string, unknown>)[field] : undefined);
  const dtype = get("dtype");
  const shape = get("shape");
  const off = get("data_offsets");
  const dtypes = [...DTYPE_BYTES.keys()].join(", ");
  if (typeof dtype !== "string" || !DTYPE_BYTES.has(dtype)) {
    throw bad(`field dtype is ${dtype === undefined ? "missing" : shown(dtype)}, expected one of ${dtypes}`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw bad(`field shape is ${shape === undefined ? "missing" : shown(shape)}, expected a list of whole sizes ≥ 0`);
  }
  if (!Array.isArray(off) || off.length !== 2 || !off.every((o) => Number.isSafeInteger(o) && o >= 0) || off[0] > off[1]) {
    throw bad(`field data_offsets is ${off === undefined ? "missing" : shown(off)}, expected [begin, end] with 0 ≤ begin ≤ end`);
  }
}

/**
 * Parses safetensors bytes as the format's reference reader does: a u64
 * little-endian header size, a JSON header (space-padded), then the data,
 * which the tensors must cover exactly, in order, without gaps or overlap.
 * Tensors are copied into fresh arrays; F16 and BF16 come back as f32 values
 * with `dtype` naming the file's type.
 */
export function decodeSafetensors(bytes: Uint8Array, what = "safetensors data"): { tensors: Record<string, NamedTensor>; metadata: Record<string, string> } {
  if (bytes.length < 8) throw new Error(`${what}: too short to be a safetensors file (${bytes.length} bytes)`);
  const size = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
  if (size > BigInt(bytes.length - 8)) throw new Error(`${what}: header length ${size} exceeds the file (${bytes.length} bytes)`);
  const n = Number(size);
  const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  if (!text.startsWith("{")) throw new Error(`${what}: the header does not start with "{"`);
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch {
    throw new Error(`${what}: the header is not valid JSON`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) throw new Error(`${what}: the header is not a JSON object`);
  const base = 8 + n;
  const dataBytes = bytes.length - base;
  // user-named tensors: null-prototype objects, so "__proto__" is a name like any other
  const tensors: Record<string, NamedTensor> = Object.create(null) as Record<string, NamedTensor>;
  let metadata: Record<string, string> = Object.create(null) as Record<string, string>;
  const spans: [number, number, string][] = [];
  for (const [name, e] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (e === null || typeof e !== "object" || Array.isArray(e) || !Object.values(e).every((v) => typeof v === "string")) {
        throw new Error(`${what}: field __metadata__ is ${shown(e)}, expected an object mapping names to strings`);
      }
      metadata = e as Record<string, string>;
      continue;
    }
    checkEntry(name, e, what);
    const [b, end] = e.data_offsets;
    if (end > dataBytes) throw new Error(`${what}: tensor ${quoted(name)}: field data_offsets is [${b}, ${end}], beyond the ${dataBytes} data bytes of the file`);
    const count = e.shape.reduce((x, y) => x * y, 1);
    const needs = count * DTYPE_BYTES.get(e.dtype)!;
    if (end - b !== needs) {
      throw new Error(`${what}: tensor ${quoted(name)}: field data_offsets is [${b}, ${end}] (${end - b} bytes), but ${e.dtype} [${e.shape.join(",")}] needs ${needs} bytes`);
    }
    spans.push([b, end, name]);
    const data = readData(e.dtype, bytes.subarray(base + b, base + end));
    tensors[name] = { shape: [...e.shape], data, ...(e.dtype === "F16" || e.dtype === "BF16" ? { dtype: e.dtype } : {}) };
  }
  // the data is the tensors, back to back
  spans.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  let at = 0;
  for (const [b, end, name] of spans) {
    if (b !== at) throw new Error(`${what}: tensor ${quoted(name)}: field data_offsets starts at byte ${b}, expected ${at} (${b < at ? "it overlaps the tensor before it" : "a gap precedes it"})`);
    at = end;
  }
  if (at !== dataBytes) throw new Error(`${what}: the tensors cover ${at} of the ${dataBytes} data bytes`);
  return { tensors, metadata };
}
