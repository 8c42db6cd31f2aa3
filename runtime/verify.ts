// A bundle knows itself: the manifest records the sha256 of every file the
// compiler wrote, and loading checks them, so kernels copied from another
// model, a truncated step.js or edited weights are refused naming the file.
// The checks read through a BundleIO, so a browser makes them too (its
// sha256 is WebCrypto's).
import type { Manifest } from "./manifest.js";
import type { BundleIO } from "./io.js";
import { readFailure } from "./io.js";

/** A bundle file whose content is not what its manifest recorded. */
export class IntegrityError extends Error {
  override readonly name = "IntegrityError";
}

/** The text whose sha256 is a manifest's `digest`: its compact JSON, the `digest` field left out. */
export function manifestDigestText(manifest: Manifest): string {
  const { digest, ...rest } = manifest;
  void digest;
  return JSON.stringify(rest);
}

/** Checks the manifest's own digest, when it records one. */
export async function verifyManifest(io: BundleIO, manifest: Manifest): Promise<void> {
  if (manifest.digest === undefined) return;
  if ((await io.sha256(new TextEncoder().encode(manifestDigestText(manifest)))) !== manifest.digest) {
    throw new IntegrityError(`${io.where("manifest.json")}: its content is not what the compiler wrote (its digest does not match): it was edited or damaged; recompile the model`);
  }
}

/**
 * Checks every file the manifest lists a digest for; throws an IntegrityError
 * naming the first missing or changed file.
 */
export async function verifyBundle(io: BundleIO, manifest: Manifest): Promise<void> {
  for (const [rel, want] of Object.entries(manifest.hashes ?? {})) {
    const file = io.where(rel);
    let bytes: Uint8Array;
    try {
      bytes = await io.readBytes(rel);
    } catch (e) {
      throw new IntegrityError(`${file}: cannot read it (${readFailure(e)}); the manifest lists it as part of the bundle: recompile the model`);
    }
    const got = await io.sha256(bytes);
    if (got !== want) {
      throw new IntegrityError(
        `${file}: its content (${bytes.length} bytes, sha256 ${got.slice(0, 12)}…) is not what the manifest recorded (sha256 ${want.slice(0, 12)}…): the file was changed, truncated or copied from another bundle; recompile the model`,
      );
    }
  }
}
