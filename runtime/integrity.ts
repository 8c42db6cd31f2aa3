// A bundle knows itself: the manifest records the sha256 of every file the
// compiler wrote, and load() checks them, so kernels copied from another model,
// a truncated step.js or edited weights are refused naming the file. The same
// digests version the kernel modules' URLs, so a recompiled bundle loaded again
// in one process runs its new kernels, not the ones Node cached.
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Manifest } from "./manifest.js";

/** The sha256 of bytes or text, as hex. */
export function sha256(content: string | Uint8Array): string {
  return createHash("sha256").update(content).digest("hex");
}

/** A bundle file whose content is not what its manifest recorded. */
export class IntegrityError extends Error {
  override readonly name = "IntegrityError";
}

/** The sha256 of a manifest's compact JSON, its own `digest` field left out. */
export function manifestDigest(manifest: Manifest): string {
  const { digest, ...rest } = manifest;
  void digest;
  return sha256(JSON.stringify(rest));
}

/** Checks the manifest's own digest, when it records one. */
export function verifyManifest(dir: string, manifest: Manifest): void {
  if (manifest.digest !== undefined && manifestDigest(manifest) !== manifest.digest) {
    throw new IntegrityError(`${join(dir, "manifest.json")}: its content is not what the compiler wrote (its digest does not match): it was edited or damaged; recompile the model`);
  }
}

/**
 * Checks every file the manifest lists a digest for; throws an IntegrityError
 * naming the first missing or changed file.
 */
export function verifyBundle(dir: string, manifest: Manifest): void {
  for (const [rel, want] of Object.entries(manifest.hashes ?? {})) {
    const file = join(dir, rel);
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(file);
    } catch (e) {
      throw new IntegrityError(`${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); the manifest lists it as part of the bundle: recompile the model`);
    }
    const got = sha256(bytes);
    if (got !== want) {
      throw new IntegrityError(
        `${file}: its content (${bytes.length} bytes, sha256 ${got.slice(0, 12)}…) is not what the manifest recorded (sha256 ${want.slice(0, 12)}…): the file was changed, truncated or copied from another bundle; recompile the model`,
      );
    }
  }
}

/**
 * The URL to import a bundle module from: versioned by its recorded digest
 * (or, for a bundle without digests, its size and modification time), since
 * Node caches modules by URL for the life of the process.
 */
export function moduleUrl(dir: string, rel: string, manifest: Manifest): string {
  const file = join(dir, rel);
  const digest = manifest.hashes?.[rel];
  const version = digest ?? (() => {
    const st = statSync(file);
    return `${st.size}-${st.mtimeMs}`;
  })();
  return `${pathToFileURL(file).href}?v=${version}`;
}
