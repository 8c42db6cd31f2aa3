// Reads and writes the safetensors format (an 8-byte little-endian header
// length, a JSON header, then raw little-endian data). Writes are atomic.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";

export type TensorData = Float32Array | Float64Array | Int32Array | Uint8Array;

export interface NamedTensor {
  readonly shape: readonly number[];
  readonly data: TensorData;
}

const DTYPE_OF = (d: TensorData): string =>
  d instanceof Float32Array ? "F32" : d instanceof Float64Array ? "F64" : d instanceof Int32Array ? "I32" : "U8";

const CTOR: Record<string, { new (b: ArrayBuffer): TensorData; BYTES_PER_ELEMENT: number }> = {
  F32: Float32Array,
  F64: Float64Array,
  I32: Int32Array,
  U8: Uint8Array,
  BOOL: Uint8Array,
};

/** Serializes tensors (and string metadata) to safetensors bytes. */
export function encodeSafetensors(tensors: Readonly<Record<string, NamedTensor>>, metadata: Readonly<Record<string, string>> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
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
  json += " ".repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const head = Buffer.from(json, "utf8");
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

/** Parses safetensors bytes; tensors are copied into fresh, aligned arrays. */
export function decodeSafetensors(bytes: Uint8Array, what = "safetensors data"): { tensors: Record<string, NamedTensor>; metadata: Record<string, string> } {
  if (bytes.length < 8) throw new Error(`${what}: too short to be a safetensors file`);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true));
  if (n > bytes.length - 8) throw new Error(`${what}: header length ${n} exceeds the file`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString("utf8"));
  } catch {
    throw new Error(`${what}: the header is not valid JSON`);
  }
  const base = 8 + n;
  const tensors: Record<string, NamedTensor> = {};
  let metadata: Record<string, string> = {};
  for (const [name, e] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = e as unknown as Record<string, string>;
      continue;
    }
    const ctor = CTOR[e.dtype];
    if (!ctor) throw new Error(`${what}: tensor "${name}" has unsupported dtype ${e.dtype}`);
    const [b, end] = e.data_offsets;
    if (end > bytes.length - base || b > end) throw new Error(`${what}: tensor "${name}" lies outside the file`);
    // copy into a fresh buffer (a Buffer's slice() would share the file's pooled memory)
    const copy = new Uint8Array(end - b);
    copy.set(bytes.subarray(base + b, base + end));
    const data = new ctor(copy.buffer);
    if (data.length !== e.shape.reduce((x, y) => x * y, 1)) throw new Error(`${what}: tensor "${name}" size does not match its shape`);
    tensors[name] = { shape: e.shape, data };
  }
  return { tensors, metadata };
}

/** Writes a file atomically: a temporary file in the same folder, fsync, rename. */
export function writeFileAtomic(path: string, bytes: Uint8Array | string): void {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const fd = openSync(tmp, "w");
  try {
    writeSync(fd, typeof bytes === "string" ? Buffer.from(bytes, "utf8") : bytes);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
}

export function saveSafetensors(path: string, tensors: Readonly<Record<string, NamedTensor>>, metadata?: Readonly<Record<string, string>>): void {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

export function loadSafetensors(path: string): { tensors: Record<string, NamedTensor>; metadata: Record<string, string> } {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as Error).message}`);
  }
  return decodeSafetensors(bytes, path);
}
