// What the engine's WebAssembly runs beyond the base SIMD set: relaxed SIMD
// (f32x4.relaxed_madd, a fused multiply-add on x86 with FMA). Node 20 has it
// behind a V8 flag that NODE_OPTIONS refuses, so it is turned on here, before
// any module that uses it is compiled.
import v8 from "node:v8";

/** A module whose one function returns f32x4.relaxed_madd(0, 0, 0): it validates where relaxed SIMD is on. */
export function relaxedProbe(): Uint8Array<ArrayBuffer> {
  const zero = [0xfd, 0x0c, ...new Array<number>(16).fill(0)];
  const body = [0x00, ...zero, ...zero, ...zero, 0xfd, 0x85, 0x02, 0x0b];
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // type: () -> v128
    0x03, 0x02, 0x01, 0x00, // one function of that type
    0x0a, body.length + 2, 0x01, body.length, ...body,
  ]);
}

let relaxed: boolean | undefined;

/**
 * Whether relaxed SIMD validates here, after turning on V8's
 * `--experimental-wasm-relaxed-simd` (a no-op where it is already on). Kernels
 * that use `f32x4.relaxed_madd` must be compiled after this returns true; the
 * others use a multiply and an add.
 */
export function relaxedSimd(): boolean {
  if (relaxed === undefined) {
    const probe = relaxedProbe();
    if (!WebAssembly.validate(probe)) {
      try {
        v8.setFlagsFromString("--experimental-wasm-relaxed-simd");
      } catch {
        // not V8, or flags cannot be set: relaxed stays what validation says
      }
    }
    relaxed = WebAssembly.validate(probe);
  }
  return relaxed;
}
