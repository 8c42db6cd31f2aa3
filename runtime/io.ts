// Where a bundle's files come from. The loader, the integrity checks and the
// trainer read a bundle only through a BundleIO: the Node runtime's reads the
// file system (runtime/nodeIO.ts), the browser runtime's fetches from the
// server (runtime/browser/io.ts). Nothing else differs between the two.
import type { Manifest } from "./manifest.js";
import type { SafetensorsContent } from "./checkpoint.js";

/** Checkpoint files by path: a file system's (Node). A browser has none and uses bytes. */
export interface CheckpointFiles {
  /** Reads and decodes a safetensors file; `path` is the resolved path errors name. */
  read(path: string): { readonly path: string; readonly file: SafetensorsContent };
  /** Writes a file atomically, creating its folder. */
  write(path: string, bytes: Uint8Array): void;
}

/** A bundle's files, wherever they are. */
export interface BundleIO {
  /** The bundle: a resolved folder path (Node) or an absolute URL without a trailing slash (browser). */
  readonly dir: string;
  /** How errors name a file of the bundle. */
  where(rel: string): string;
  /** The bundle's manifest, parsed and checked (runtime/schema.ts). */
  readManifest(): Promise<Manifest>;
  /** A file's bytes; fails with an Error whose message says why (e.g. ENOENT, HTTP 404). */
  readBytes(rel: string): Promise<Uint8Array>;
  /** The sha256 of bytes, as hex. */
  sha256(bytes: Uint8Array): Promise<string>;
  /** The same access to a bundle in a sub-folder (a next-token predictor's inference bundle). */
  sub(rel: string): BundleIO;
  /** Where `save(path)` and `restore(path)` go; absent in a browser. */
  readonly files?: CheckpointFiles;
}

/** Why a read failed, in a few words: Node's error code, or the message. */
export function readFailure(e: unknown): string {
  return (e as { code?: string }).code ?? (e as Error).message;
}
