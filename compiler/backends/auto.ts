// backend "auto": the gpu backend when WebGPU gives an adapter on the machine
// that compiles, else wasm. The choice is made once, at compile time, and the
// bundle holds the kernels of the backend picked (manifest.backend), with
// manifest.backendChoice saying why; it does not change where the bundle is
// loaded later. The probe runs in a child process: asking Dawn is asynchronous
// while compile() is not, and a Node process that made a Dawn device keeps
// polling it (the compiler's own process would not exit).
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { EGL_PLATFORM, dawnAttempts } from "../../runtime/gpuAdapter.js";

/** What the WebGPU probe found: an adapter's description, or what is missing. */
export type GpuProbe = { readonly adapter: string } | { readonly missing: string };

/** Why compile options rule the gpu backend out before any probe (undefined: they do not). */
export interface AutoOptions {
  readonly dtype?: "f32" | "f64";
  readonly precision?: "f32" | "mixed";
  readonly fusion?: boolean;
  readonly wasm?: boolean;
}

/** The backend "auto" picks, and why (the compile report and the manifest say it). */
export interface AutoChoice {
  readonly backend: "gpu" | "wasm";
  readonly reason: string;
}

const probes = new Map<string, GpuProbe>();

/**
 * Asks Dawn (the `webgpu` package), in a child Node process, for an adapter,
 * as the runtime's gpu device does (the same attempts in the same order,
 * EGL_PLATFORM defaulted alike).
 * Remembered per EGL_PLATFORM for the process.
 */
export function probeWebGpu(): GpuProbe {
  const platform = process.env["EGL_PLATFORM"] ?? EGL_PLATFORM;
  const known = probes.get(platform);
  if (known) return known;
  const found = runProbe(platform);
  probes.set(platform, found);
  return found;
}

function runProbe(platform: string): GpuProbe {
  let url: string;
  try {
    url = pathToFileURL(createRequire(import.meta.url).resolve("webgpu")).href;
  } catch {
    return { missing: "the webgpu package (Dawn) is not installed" };
  }
  const script = [
    `const { create } = await import(${JSON.stringify(url)});`,
    "let a = null;",
    `for (const { flags, options } of ${JSON.stringify(dawnAttempts())}) if ((a = await create(flags).requestAdapter(options))) break;`,
    "const i = (a && a.info) || {};",
    "const d = [i.vendor, i.architecture, i.device, i.description].filter((x) => x).join(' ');",
    "process.stdout.write('\\n' + JSON.stringify(a ? { adapter: d || 'an unnamed adapter' } : { missing: 'WebGPU (Dawn) found no adapter' }) + '\\n');",
    // the process would stay alive while Dawn lives
    "process.exit(0);",
  ].join("\n");
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { env: { ...process.env, EGL_PLATFORM: platform }, encoding: "utf8", timeout: 60_000 });
  const last = (r.stdout ?? "").trim().split("\n").at(-1) ?? "";
  try {
    const parsed = JSON.parse(last) as { adapter?: unknown; missing?: unknown };
    if (typeof parsed.adapter === "string") return { adapter: parsed.adapter };
    if (typeof parsed.missing === "string") return { missing: `${parsed.missing} (EGL_PLATFORM=${platform})` };
  } catch {
    // below: the probe itself failed
  }
  const why = r.error ? r.error.message : r.signal ? `killed by ${r.signal}` : `exit ${String(r.status)}`;
  return { missing: `the WebGPU probe failed (${why})` };
}

/** The backend of `backend: "auto"` for these options: gpu when they allow it and an adapter answers, else wasm. */
export function pickBackend(options: AutoOptions, probe: () => GpuProbe = probeWebGpu): AutoChoice {
  if (options.wasm === false) throw new Error(`compile: backend "auto" with wasm: false; name the backend ("ts")`);
  if (options.dtype === "f64") return { backend: "wasm", reason: 'dtype "f64": the gpu backend computes in float32 only' };
  if (options.precision === "mixed") return { backend: "wasm", reason: 'precision "mixed": the gpu backend does not store bfloat16' };
  if (options.fusion === true) return { backend: "wasm", reason: "fusion: true: the gpu backend runs one kernel per graph node" };
  const found = probe();
  return "adapter" in found ? { backend: "gpu", reason: `a WebGPU adapter answered: ${found.adapter}` } : { backend: "wasm", reason: `no WebGPU adapter: ${found.missing}` };
}
