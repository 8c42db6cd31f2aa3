// Safetensors files built byte by byte for the reader's tests: an 8-byte
// little-endian header length, the header's JSON text, then the data bytes.

/** A safetensors file with this header text (used as given, unpadded) and these data bytes. */
export function safetensorsBytes(header: string, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const head = Buffer.from(header, "utf8");
  const out = new Uint8Array(8 + head.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  out.set(data, 8 + head.length);
  return out;
}
