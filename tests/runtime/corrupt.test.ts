// Crafted and corrupted checkpoints and weights: every one is a clear error
// naming the file and what is wrong, never a raw TypeError and never a
// silently different restore.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { load } from "../../runtime/load.js";
import { decodeSafetensors, encodeSafetensors } from "../../runtime/safetensors.js";
import { errorMessage } from "../helpers.js";
import { writeFixture } from "./fixture.js";
import { safetensorsBytes } from "./safetensorsBytes.js";

const root = mkdtempSync(join(tmpdir(), "gradc-corrupt-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const decodeError = (bytes: Uint8Array): string => {
  try {
    decodeSafetensors(bytes, "ck.safetensors");
  } catch (e) {
    expect(e).not.toBeInstanceOf(TypeError);
    return (e as Error).message;
  }
  return "(decoded)";
};

describe("safetensors headers", () => {
  it("refuses a null, an array or a string header, naming the file", () => {
    for (const h of ["null", "[1,2]", '"x"']) expect(decodeError(safetensorsBytes(h))).toMatch(/^ck\.safetensors: the header/);
  });

  it("refuses negative, fractional, reversed, too long and overlapping data_offsets, naming the tensor", () => {
    const d = new Uint8Array(16);
    const t = (offsets: string, shape = "[2]") => safetensorsBytes(`{"a":{"dtype":"F32","shape":${shape},"data_offsets":${offsets}}}`, d);
    for (const bad of [t("[-8,0]"), t("[0.5,8.5]"), t("[8,0]"), t("[0,12]"), t("[0,8]", '"2"')]) expect(decodeError(bad)).toMatch(/^ck\.safetensors: tensor "a"/);
    const both = safetensorsBytes('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', d);
    expect(decodeError(both)).toMatch(/^ck\.safetensors: tensor "[ab]"/);
  });

  it("refuses unknown dtypes (even inherited names) and non-string metadata", () => {
    expect(decodeError(safetensorsBytes('{"a":{"dtype":"toString","shape":[],"data_offsets":[0,0]}}'))).toMatch(/^ck\.safetensors: tensor "a": field dtype is "toString", expected one of F16, /);
    expect(decodeError(safetensorsBytes('{"__metadata__":{"step":3}}'))).toMatch(/^ck\.safetensors: field __metadata__ is \{"step":3\}, expected an object mapping names to strings$/);
  });

  it("a tensor named __proto__ is a tensor like any other", () => {
    const bytes = encodeSafetensors(JSON.parse('{"__proto__":{"shape":[1],"data":0}}', (k, v: unknown) => (k === "data" ? new Float32Array([5]) : v)));
    const { tensors } = decodeSafetensors(bytes);
    expect(Object.keys(tensors)).toEqual(["__proto__"]);
    expect(Array.from(tensors["__proto__"]!.data)).toEqual([5]);
  });
});

describe("crafted checkpoints", () => {
  it("refuses a step count of 1e300, -1 or 2.5 by name", async () => {
    const fx = writeFixture(join(root, "steps"));
    const t = await load(fx.dir);
    const file = join(root, "steps.safetensors");
    t.save(file);
    const { tensors, metadata } = decodeSafetensors(readFileSync(file));
    for (const step of ["1e300", "-1", "2.5", "", "0x10"]) {
      writeFileSync(file, encodeSafetensors(tensors, { ...metadata, step }));
      expect(errorMessage(() => t.restore(file))).toContain(`invalid step count ${JSON.stringify(step)} in the metadata`);
    }
    expect(t.stepCount).toBe(0);
  });

  it("every truncation and every bit flip of a checkpoint is refused or restores the same values", async () => {
    const fx = writeFixture(join(root, "flips"), { optimizer: { name: "adam", lr: 0.1 } });
    const t = await load(fx.dir);
    const file = join(root, "flips.safetensors");
    t.save(file);
    const good = readFileSync(file);
    const W = Array.from(t.params.get("W"));
    // truncations at every length: always an error (a shorter file can never hold every tensor)
    for (let len = 0; len < good.length; len += 7) {
      writeFileSync(file, good.subarray(0, len));
      expect(() => t.restore(file)).toThrow(/flips\.safetensors/);
    }
    // bit flips in the header: an error, or a file that still restores exactly the saved values
    const headerLen = Number(good.readBigUInt64LE(0));
    for (let at = 0; at < 8 + headerLen; at += 3) {
      const bad = Buffer.from(good);
      bad[at] = bad[at]! ^ 0x10;
      writeFileSync(file, bad);
      try {
        t.restore(file);
        expect(Array.from(t.params.get("W"))).toEqual(W);
      } catch (e) {
        expect(e).not.toBeInstanceOf(TypeError);
        expect((e as Error).message).toMatch(/flips\.safetensors/);
      }
    }
  });

  it("saving under a path that cannot hold folders is an error naming it, not an endless loop", async () => {
    const t = await load(writeFixture(join(root, "proc")).dir);
    expect(errorMessage(() => t.save("/proc/nope/x.safetensors"))).toMatch(/cannot create \/proc\/nope/);
    const file = join(root, "plain-file");
    writeFileSync(file, "x");
    expect(errorMessage(() => t.save(join(file, "sub", "x.safetensors")))).toMatch(/plain-file is not a folder/);
  });
});
