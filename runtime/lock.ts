// A lock file per folder, so a compile and a trainer, or two trainers, never
// work on the same bundle or output folder at once. The file holds the
// owner's pid; a lock whose process is gone is stale and taken over.
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";

/** The lock file's name inside the folder it guards. */
export const LOCK_FILE = ".gradc.lock";

/** What a lock file says about its owner. */
export interface LockOwner {
  readonly pid: number;
  /** What holds it, e.g. `gradc compile` or `train.js`. */
  readonly what: string;
  /** ISO time it was taken. */
  readonly since: string;
}

/** Another live process holds the folder. */
export class LockedError extends Error {
  override readonly name = "LockedError";
}

/**
 * Whether a process id is running on this machine. A zombie (killed, not yet
 * reaped: common in containers whose init reaps nothing) is not running.
 */
export function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
  try {
    // Linux: the state follows the ")" that ends the command name
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true;
  }
}

/** The owner a lock file names, or undefined when it is unreadable or malformed. */
export function readLock(dir: string): LockOwner | undefined {
  try {
    const o = JSON.parse(readFileSync(join(dir, LOCK_FILE), "utf8")) as Partial<LockOwner>;
    if (typeof o.pid === "number" && typeof o.what === "string" && typeof o.since === "string") return o as LockOwner;
  } catch {
    // absent, half-written or not ours: treated as no owner
  }
  return undefined;
}

/** A held lock; `release` removes the file if it is still this process's. */
export interface Lock {
  readonly dir: string;
  release(): void;
}

/**
 * Takes the lock of `dir` (which must exist) for `what`, or throws a
 * LockedError naming the live process that holds it. A lock left by a
 * process that no longer runs is removed first.
 */
export function acquireLock(dir: string, what: string): Lock {
  const file = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(file, "wx");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw new Error(`cannot lock ${dir}: ${(e as Error).message}`);
      const owner = readLock(dir);
      if (owner && owner.pid !== process.pid && processAlive(owner.pid)) {
        throw new LockedError(`${dir} is in use by ${owner.what} (pid ${owner.pid}, since ${owner.since}); wait for it to finish or stop it first`);
      }
      if (owner?.pid === process.pid) {
        throw new LockedError(`${dir} is already in use by this process (${owner.what}); finish that run first`);
      }
      // stale: its process is gone (or the file is unreadable)
      rmSync(file, { force: true });
      continue;
    }
    const owner: LockOwner = { pid: process.pid, what, since: new Date().toISOString() };
    writeSync(fd, JSON.stringify(owner));
    closeSync(fd);
    return {
      dir,
      release: () => {
        if (existsSync(file) && readLock(dir)?.pid === process.pid) rmSync(file, { force: true });
      },
    };
  }
  throw new LockedError(`cannot lock ${dir}: its lock file keeps changing; is another gradc running?`);
}

/** Throws a LockedError when a live process other than this one holds `dir`. */
export function checkUnlocked(dir: string, doing: string): void {
  const owner = readLock(dir);
  if (owner && owner.pid !== process.pid && processAlive(owner.pid)) {
    throw new LockedError(`cannot ${doing}: ${dir} is in use by ${owner.what} (pid ${owner.pid}, since ${owner.since}); wait for it to finish or stop it first`);
  }
}
