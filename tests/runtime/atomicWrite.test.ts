// writeFileAtomic's order of file-system calls, which no crash test on a
// healthy disk can see: the data is fsynced before the rename publishes it,
// and the folder is fsynced after the rename so that the new name survives a
// power cut. A failed write (a full disk) leaves the old file and no
// temporary file behind.
import * as fs from "node:fs";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeEach, describe, expect, it, vi } from "vitest";

/** The calls writeFileAtomic made, in order: [name, path or fd-of-path]. */
const calls: string[][] = [];
const fdPaths = new Map<number, string>();
let failWrites = false;

vi.mock("node:fs", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:fs")>();
  const pathOf = (fd: number): string => fdPaths.get(fd) ?? `fd ${fd}`;
  return {
    ...real,
    openSync: (p: fs.PathLike, flags: fs.OpenMode = "r") => {
      const fd = real.openSync(p, flags);
      fdPaths.set(fd, String(p));
      calls.push(["open", String(p), String(flags)]);
      return fd;
    },
    writeSync: (fd: number, ...rest: unknown[]) => {
      if (failWrites) {
        calls.push(["write failed", pathOf(fd)]);
        throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
      }
      calls.push(["write", pathOf(fd)]);
      return (real.writeSync as (fd: number, ...a: unknown[]) => number)(fd, ...rest);
    },
    fsyncSync: (fd: number) => {
      calls.push(["fsync", pathOf(fd)]);
      real.fsyncSync(fd);
    },
    closeSync: (fd: number) => {
      calls.push(["close", pathOf(fd)]);
      real.closeSync(fd);
    },
    renameSync: (from: fs.PathLike, to: fs.PathLike) => {
      calls.push(["rename", String(from), String(to)]);
      real.renameSync(from, to);
    },
  };
});

const { writeFileAtomic, TEMP_SUFFIX } = await import("../../runtime/safetensors.js");

const root = mkdtempSync(join(tmpdir(), "gradc-atomic-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
beforeEach(() => {
  calls.length = 0;
  failWrites = false;
});

describe("writeFileAtomic", () => {
  it("fsyncs the data before the rename and the folder after it", () => {
    const target = join(root, "ckpt", "step-10.safetensors");
    fs.mkdirSync(dirname(target), { recursive: true });
    writeFileAtomic(target, new Uint8Array([1, 2, 3, 4]));
    expect(Array.from(readFileSync(target))).toEqual([1, 2, 3, 4]);

    const tmp = calls[0]![1]!;
    expect(calls[0]).toEqual(["open", tmp, "w"]);
    expect(dirname(tmp)).toBe(dirname(target));
    expect(tmp).toMatch(TEMP_SUFFIX);
    const at = (...call: string[]): number => calls.findIndex((c) => c.length === call.length && c.every((x, i) => x === call[i]));
    const dataSync = at("fsync", tmp);
    const rename = at("rename", tmp, target);
    const folderOpen = at("open", dirname(target), "r");
    const folderSync = at("fsync", dirname(target));
    expect(at("write", tmp)).toBeGreaterThan(0);
    expect(dataSync).toBeGreaterThan(at("write", tmp));
    expect(at("close", tmp)).toBeGreaterThan(dataSync);
    expect(rename).toBeGreaterThan(at("close", tmp));
    expect(folderOpen).toBeGreaterThan(rename);
    expect(folderSync).toBeGreaterThan(folderOpen);
    expect(at("close", dirname(target))).toBeGreaterThan(folderSync);
  });

  it("a failed write keeps the old file and removes its temporary file", () => {
    const target = join(root, "keep", "loss.csv");
    fs.mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, "step,loss\n1,0.5\n");
    failWrites = true;
    expect(() => writeFileAtomic(target, "step,loss\n1,0.5\n2,0.25\n")).toThrow(/ENOSPC/);
    expect(readFileSync(target, "utf8")).toBe("step,loss\n1,0.5\n");
    expect(readdirSync(dirname(target))).toEqual(["loss.csv"]);
    expect(calls.some((c) => c[0] === "rename")).toBe(false);
  });
});
