// A bundle folder on the file system, as runtime/open.ts reads bundles.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { BundleIO, CheckpointFiles } from "./io.js";
import type { Manifest } from "./manifest.js";
import { parseManifest } from "./open.js";
import { sha256 } from "./integrity.js";
import { loadSafetensors, makeDirs, writeFileAtomic } from "./safetensors.js";

/** Reads and validates a bundle's manifest.json. */
export function readManifest(dir: string): Manifest {
  const file = join(dir, "manifest.json");
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    const why = existsSync(dir) ? (e as Error).message : "no such folder";
    throw new Error(`cannot read ${file}: ${why} (is ${dir} a bundle written by gradc compile?)`);
  }
  return parseManifest(text, file);
}

/** Checkpoints as files: paths resolved from the working folder, writes atomic. */
export const NODE_FILES: CheckpointFiles = {
  read: (path) => {
    const file = resolve(path);
    return { path: file, file: loadSafetensors(file) };
  },
  write: (path, bytes) => {
    const file = resolve(path);
    makeDirs(dirname(file));
    writeFileAtomic(file, bytes);
  },
};

/** The bundle in folder `dir` (a resolved path). */
export function nodeBundleIO(dir: string): BundleIO {
  return {
    dir,
    where: (rel) => join(dir, rel),
    readManifest: async () => readManifest(dir),
    readBytes: async (rel) => readFileSync(join(dir, rel)),
    sha256: async (bytes) => sha256(bytes),
    sub: (rel) => nodeBundleIO(join(dir, rel)),
    files: NODE_FILES,
  };
}
