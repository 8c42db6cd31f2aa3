// Writing a bundle without destroying work: the new bundle is written into a
// sibling folder and swapped in by renames; training results (checkpoints/,
// logs/) move into the new bundle; a lock keeps compile off a folder a trainer
// is using; and what a killed compile left behind is recovered or removed on
// the next run.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { acquireLock, checkUnlocked, LOCK_FILE, processAlive } from "../../runtime/lock.js";
import { checkManifest } from "../../runtime/schema.js";
import { syncFolder } from "../../runtime/safetensors.js";

/** Relative path → contents. */
export type BundleFiles = Map<string, string | Uint8Array>;

/** What a trainer writes into a bundle: kept across recompiles. */
export const TRAINING_RESULTS: readonly string[] = ["checkpoints", "logs"];

/** Throws unless `dir` is absent, empty, or a valid bundle (a manifest that merely says "gradc-bundle" is not enough). */
function checkReplaceable(dir: string): void {
  if (!existsSync(dir)) return;
  if (!statSync(dir).isDirectory()) throw new Error(`compile: ${dir} exists and is not a folder`);
  const entries = readdirSync(dir).filter((e) => e !== LOCK_FILE);
  if (entries.length === 0) return;
  const file = path.join(dir, "manifest.json");
  let why: string;
  try {
    checkManifest(JSON.parse(readFileSync(file, "utf8")), file);
    return;
  } catch (e) {
    why = existsSync(file) ? (e as Error).message : "it has no manifest.json";
  }
  const shown = `${entries.slice(0, 5).join(", ")}${entries.length > 5 ? ", ..." : ""}`;
  throw new Error(`compile: ${dir} is not empty and holds no gradc bundle (${why}); refusing to replace it and its ${entries.length} entries (${shown})`);
}

/** Moves the training results of `from` into `to` (unless `to` has them already); returns the names moved. */
function carryOver(from: string, to: string): string[] {
  const moved: string[] = [];
  for (const name of TRAINING_RESULTS) {
    if (!existsSync(path.join(from, name)) || existsSync(path.join(to, name))) continue;
    renameSync(path.join(from, name), path.join(to, name));
    moved.push(name);
  }
  return moved;
}

const SIBLING = /^(.*)\.(tmp|old)-(\d+)-\d+$/;

/**
 * What a killed compile of `dir` left beside it: a half-written `.tmp-` folder
 * (removed), or the previous bundle moved aside as `.old-` (moved back when
 * the swap did not finish, else its training results carried into `dir`).
 */
export function recoverInterrupted(dir: string): string[] {
  const parent = path.dirname(dir);
  const base = path.basename(dir);
  const done: string[] = [];
  if (!existsSync(parent)) return done;
  for (const name of readdirSync(parent)) {
    const m = SIBLING.exec(name);
    if (!m || m[1] !== base || Number(m[3]) === process.pid || processAlive(Number(m[3]))) continue;
    const full = path.join(parent, name);
    if (m[2] === "old") {
      if (!existsSync(dir)) {
        renameSync(full, dir);
        done.push(`restored ${name}`);
        continue;
      }
      carryOver(full, dir);
    }
    rmSync(full, { recursive: true, force: true });
    done.push(`removed ${name}`);
  }
  return done;
}

/** What writeBundle did besides writing. */
export interface WriteReport {
  /** Training results of the previous bundle kept in the new one (checkpoints, logs). */
  readonly kept: readonly string[];
  /** What an interrupted earlier compile left, and what was done with it. */
  readonly recovered: readonly string[];
}

/**
 * Writes the files into a sibling folder, then swaps it in for `outDir` by
 * two renames; the previous bundle's checkpoints and logs move into the new
 * one. Refuses a folder that is not
 * a bundle, and one a trainer holds.
 */
export function writeBundle(outDir: string, files: BundleFiles, what = "gradc compile"): WriteReport {
  const dir = path.resolve(outDir);
  const recovered = recoverInterrupted(dir);
  checkReplaceable(dir);
  mkdirSync(path.dirname(dir), { recursive: true });
  const lock = existsSync(dir) ? acquireLock(dir, what) : undefined;
  const stamp = `${process.pid}-${Date.now()}`;
  const tmp = `${dir}.tmp-${stamp}`;
  const old = `${dir}.old-${stamp}`;
  try {
    for (const [rel, content] of files) {
      const file = path.join(tmp, rel);
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, content);
    }
    // the new folder is held too, so no trainer starts on it before the results move in
    acquireLock(tmp, what);
    checkUnlocked(dir, "replace the bundle");
    const hadOld = existsSync(dir);
    if (hadOld) renameSync(dir, old);
    renameSync(tmp, dir);
    syncFolder(path.dirname(dir));
    const kept = hadOld ? carryOver(old, dir) : [];
    rmSync(old, { recursive: true, force: true });
    rmSync(path.join(dir, LOCK_FILE), { force: true });
    return { kept, recovered };
  } finally {
    lock?.release();
    rmSync(tmp, { recursive: true, force: true });
  }
}
