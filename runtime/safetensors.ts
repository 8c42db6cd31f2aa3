// Reads and writes the safetensors format (an 8-byte little-endian header
// length, a JSON header, then raw little-endian data). Writes are atomic.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { processAlive } from "./lock.js";

export type { NamedTensor, TensorData } from "./safetensorsFormat.js";
export { decodeSafetensors, encodeSafetensors, halfToNumber } from "./safetensorsFormat.js";
import type { NamedTensor } from "./safetensorsFormat.js";
import { decodeSafetensors, encodeSafetensors } from "./safetensorsFormat.js";

/**
 * Creates a folder and its missing parents one level at a time, so that a
 * parent that cannot hold folders (e.g. under /proc) is an error naming the
 * path; Node's recursive mkdir can loop forever there.
 */
export function makeDirs(dir: string): void {
  const missing: string[] = [];
  let at = resolve(dir);
  while (!existsSync(at)) {
    missing.push(at);
    const up = dirname(at);
    if (up === at) break;
    at = up;
  }
  if (existsSync(at) && !statSync(at).isDirectory()) throw new Error(`cannot create ${dir}: ${at} is not a folder`);
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw new Error(`cannot create ${d}: ${(e as Error).message}`);
    }
  }
}

/** The suffix of an atomic write's temporary file: `.tmp-<pid>-<time>`. */
export const TEMP_SUFFIX = /\.tmp-(\d+)-\d+$/;

/**
 * Writes a file atomically: a temporary file in the same folder, written in
 * full and fsynced, renamed over the target, and the folder fsynced so the
 * rename itself survives a crash.
 */
export function writeFileAtomic(path: string, bytes: Uint8Array | string): void {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const data = typeof bytes === "string" ? Buffer.from(bytes, "utf8") : bytes;
  const fd = openSync(tmp, "w");
  try {
    for (let at = 0; at < data.length; ) at += writeSync(fd, data, at, data.length - at);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
  syncFolder(dirname(path));
}

/** fsyncs a folder (its entries); a file system that cannot is left as it is. */
export function syncFolder(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {
    // some file systems refuse to fsync a folder: nothing more to do there
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Removes the temporary files that killed writers left in `dir` (those of
 * processes no longer running); returns their names.
 */
export function removeStaleTemps(dir: string): string[] {
  const removed: string[] = [];
  if (!existsSync(dir)) return removed;
  for (const name of readdirSync(dir)) {
    const m = TEMP_SUFFIX.exec(name);
    if (m && Number(m[1]) !== process.pid && !processAlive(Number(m[1]))) {
      rmSync(join(dir, name), { recursive: true, force: true });
      removed.push(name);
    }
  }
  return removed;
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
