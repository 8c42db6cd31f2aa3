// A bundle served over HTTP, as runtime/open.ts reads bundles: fetch for the
// files, WebCrypto for their digests. No file system: checkpoints are bytes.
import type { BundleIO } from "../io.js";
import type { Manifest } from "../manifest.js";
import { parseManifest } from "../open.js";

/** A file's bytes, or an Error naming the HTTP status. */
async function fetchBytes(url: string): Promise<Uint8Array> {
  const res = await fetch(url, { cache: "no-store" });
  if (!res.ok) throw new Error(`HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ""}`);
  return new Uint8Array(await res.arrayBuffer());
}

/** The sha256 of bytes, as hex (WebCrypto). */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  let hex = "";
  for (const b of digest) hex += b.toString(16).padStart(2, "0");
  return hex;
}

/** The bundle served at `url` (absolute, or relative to the page). */
export function fetchBundleIO(url: string): BundleIO {
  const dir = new URL(url, globalThis.location?.href).href.replace(/\/+$/, "");
  const at = (rel: string): string => `${dir}/${rel.split("/").map(encodeURIComponent).join("/")}`;
  return {
    dir,
    where: (rel) => `${dir}/${rel}`,
    readManifest: async (): Promise<Manifest> => {
      const file = `${dir}/manifest.json`;
      let bytes: Uint8Array;
      try {
        bytes = await fetchBytes(at("manifest.json"));
      } catch (e) {
        throw new Error(`cannot read ${file}: ${(e as Error).message} (is ${dir} a bundle written by gradc compile?)`);
      }
      return parseManifest(new TextDecoder().decode(bytes), file);
    },
    readBytes: (rel) => fetchBytes(at(rel)),
    sha256: sha256Hex,
    sub: (rel) => fetchBundleIO(at(rel)),
  };
}
