// The sha256 digests the compiler records in a bundle (runtime/verify.ts
// checks them as a bundle loads), computed with Node's crypto.
import { createHash } from "node:crypto";
import type { Manifest } from "./manifest.js";
import { manifestDigestText } from "./verify.js";

export { IntegrityError } from "./verify.js";

/** The sha256 of bytes or text, as hex. */
export function sha256(content: string | Uint8Array): string {
  return createHash("sha256").update(content).digest("hex");
}

/** The sha256 of a manifest's compact JSON, its own `digest` field left out. */
export function manifestDigest(manifest: Manifest): string {
  return sha256(manifestDigestText(manifest));
}
